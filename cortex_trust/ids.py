"""Identifiers: the one home of the digest and slug syntax.

Every module that checks a digest or a slug uses these definitions; none writes its own regular
expression. Two forms of each pattern:

* the bare fragment (:data:`DIGEST`, :data:`SLUG`) to compose into larger patterns;
* the anchored ``^...$`` form (:data:`DIGEST_PATTERN`, :data:`SLUG_PATTERN`) for pydantic fields
  and JSON Schema only, where ``$`` means end of text (Rust and ECMA-262 regular expressions).

Python code checks with :func:`is_digest` / :func:`is_slug` (``fullmatch``): Python's ``$``
also matches before a trailing newline, so ``re.match`` with a ``$`` pattern would accept
``"name\\n"``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DIGEST",
    "DIGEST_PATTERN",
    "PLUGIN_NAME_PATTERN",
    "SLUG",
    "SLUG_PATTERN",
    "is_digest",
    "is_slug",
]

#: A content digest as cortex accepts it: sha256 and 64 lower-case hex digits.
DIGEST: Final = r"sha256:[0-9a-f]{64}"
#: :data:`DIGEST` anchored, for pydantic and JSON Schema.
DIGEST_PATTERN: Final = rf"^{DIGEST}$"
#: A slug (namespace, token holder, registry name, organization, container name part): lower-case
#: letters, digits and inner '-', at most 64 characters.
SLUG: Final = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
#: :data:`SLUG` anchored, for pydantic and JSON Schema.
SLUG_PATTERN: Final = rf"^{SLUG}$"
#: A plugin name (the manifest's rule): stricter than a slug, no empty part between '-'.
PLUGIN_NAME_PATTERN: Final = r"^[a-z0-9]+(-[a-z0-9]+)*$"

_DIGEST_RE: Final = re.compile(DIGEST)
_SLUG_RE: Final = re.compile(SLUG)


def is_digest(value: object) -> bool:
    """Whether ``value`` is a string that is exactly a ``sha256:<64 lower-case hex>`` digest."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def is_slug(value: object) -> bool:
    """Whether ``value`` is a string that is exactly a slug (:data:`SLUG`)."""
    return isinstance(value, str) and _SLUG_RE.fullmatch(value) is not None
