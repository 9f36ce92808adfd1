"""Identifiers: the one home of the digest and slug syntax and of the image-reference grammar.

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

import functools
import re
from dataclasses import dataclass
from typing import Final

from .errors import InputError

__all__ = [
    "DIGEST",
    "DIGEST_PATTERN",
    "IMAGE_PATTERN",
    "MAX_IMAGE",
    "PLUGIN_NAME_PATTERN",
    "SLUG",
    "SLUG_PATTERN",
    "ImageRef",
    "ImageRefError",
    "is_digest",
    "is_image_path",
    "is_image_tag",
    "is_slug",
    "parse_image_ref",
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


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on first use: importing this module compiles no pattern."""
    return re.compile(pattern)


def is_digest(value: object) -> bool:
    """Whether ``value`` is a string that is exactly a ``sha256:<64 lower-case hex>`` digest."""
    return isinstance(value, str) and _compiled(DIGEST).fullmatch(value) is not None


def is_slug(value: object) -> bool:
    """Whether ``value`` is a string that is exactly a slug (:data:`SLUG`)."""
    return isinstance(value, str) and _compiled(SLUG).fullmatch(value) is not None


# --- image references -------------------------------------------------------------------------
# The distribution reference grammar (github.com/distribution/reference, regexp.go), with the
# digest narrowed to what cortex accepts: sha256 and 64 lowercase hex digits. Published in the
# manifest JSON Schema (ECMA-262 compatible).

#: The longest image reference accepted.
MAX_IMAGE: Final = 512
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
#: ``[host[:port]/]path[:tag][@sha256:<64 hex>]``, anchored (for JSON Schema and pydantic).
IMAGE_PATTERN: Final = (
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{DIGEST})?$"
)
_PATH_COMPONENT_FULL = rf"^{_PATH_COMPONENT}$"
_DOMAIN_FULL = rf"^{_DOMAIN}$"
_TAG_FULL = rf"^{_TAG}$"
_HEX64 = r"[0-9a-f]{64}"
_IMAGE_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"


def is_image_path(value: object) -> bool:
    """Whether ``value`` is exactly a repository path of the grammar (``team/plugin``)."""
    return isinstance(value, str) and _compiled(_IMAGE_PATH).fullmatch(value) is not None


def is_image_tag(value: object) -> bool:
    """Whether ``value`` is exactly an image tag of the grammar (``1.0.0``)."""
    return isinstance(value, str) and _compiled(_TAG_FULL).fullmatch(value) is not None


@dataclass(frozen=True)
class ImageRef:
    """An OCI image reference split into its parts (``domain`` is None when omitted)."""

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def host(self) -> str | None:
        """The registry host (with port) as written, or ``None`` when the reference names none
        (a container engine would then pull from Docker Hub)."""
        return self.domain

    @property
    def repository(self) -> str:
        """``domain/path`` (or just ``path``): the reference without tag and digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def pinned(self) -> str:
        """``domain/path@digest`` (the tag dropped: the digest is what is run).

        Raises :class:`InputError` if the reference carries no digest.
        """
        if self.digest is None:
            raise InputError(f"{self} is not pinned by digest",
                             advice="use registry/repository@sha256:<digest>")
        return f"{self.repository}@{self.digest}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


class ImageRefError(InputError, ValueError):
    """An image reference outside the grammar. ``problem`` names the part that is wrong and
    ``fix`` (also ``advice``) says how to write it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem, advice=fix)
        self.problem, self.fix = problem, fix


def parse_image_ref(ref: str, *, what: str = "the image", require_host: bool = False,
                    require_digest: bool = False) -> ImageRef:
    """Split an OCI reference (distribution reference grammar) into its parts.

    Accepts ``[host[:port]/]path[:tag][@sha256:<64 lowercase hex>]`` only; the host is the first
    component when it has a ``.``, a ``:``, an upper-case letter or is ``localhost`` (the rule
    container engines apply). ``what`` names the reference in messages (``runtime.image``).
    With ``require_host`` a reference without a host is refused (so that ``acme/x`` never means
    Docker Hub silently); with ``require_digest`` one without a digest (a tag can be moved).

    Raises :class:`ImageRefError` (an :class:`InputError`) naming the part that is wrong.
    """
    bad = ImageRefError
    example = "e.g. registry.example.org/team/plugin:1.0.0@sha256:<64 hex digits>"
    if not isinstance(ref, str) or not ref:
        raise bad(f"{what} is empty", f"write an image reference, {example}")
    if len(ref) > MAX_IMAGE:
        raise bad(f"{what} is longer than {MAX_IMAGE} characters", "shorten it")
    if any(c.isspace() for c in ref):
        raise bad(f"{what} contains whitespace", "remove it")
    if "://" in ref:
        raise bad(f"{what} has a URL scheme", f"drop it: {ref.split('://', 1)[1]}")
    name_tag, _, digest = ref.partition("@")
    if "@" in digest:
        raise bad(f"{what} has more than one '@'", f"write a single digest, {example}")
    if digest or ref.endswith("@"):
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256":
            raise bad(f"digest algorithm {algo!r} is not supported", "use an @sha256: digest")
        if hexpart.lower() != hexpart:
            raise bad("the digest must be lower-case hex", f"write @sha256:{hexpart.lower()}")
        if not _compiled(_HEX64).fullmatch(hexpart):
            raise bad(f"the sha256 digest must be 64 hex digits, not {len(hexpart)} characters",
                      "copy the full digest (e.g. from `docker buildx imagetools inspect`)")
    last_slash = name_tag.rfind("/")
    colon = name_tag.rfind(":")
    tag: str | None = None
    name = name_tag
    if colon > last_slash:
        name, tag = name_tag[:colon], name_tag[colon + 1:]
        if not _compiled(_TAG_FULL).fullmatch(tag):
            raise bad(f"image tag {tag!r} is not valid (letters, digits, _ . -, at most 128, "
                      "not starting with . or -)", "fix the tag, e.g. :1.0.0")
    if len(name) > 255:
        raise bad("the image name is longer than 255 characters", "shorten it")
    parts = name.split("/")
    domain: str | None = None
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"
                           or first != first.lower()):
        domain = first
        parts = parts[1:]
        if not _compiled(_DOMAIN_FULL).fullmatch(domain):
            raise bad(f"registry host {domain!r} is not a valid host[:port]",
                      "write e.g. registry.example.org or 127.0.0.1:5000")
    if not parts or parts == [""]:
        raise bad(f"{what} has no repository", f"name the repository, {example}")
    for comp in parts:
        if comp != comp.lower() and _compiled(_PATH_COMPONENT_FULL).fullmatch(comp.lower()):
            raise bad(f"repository component {comp!r} must be lower case",
                      f"write {comp.lower()}")
        if not _compiled(_PATH_COMPONENT_FULL).fullmatch(comp):
            raise bad(f"repository component {comp!r} is not valid (lowercase letters, digits, "
                      "separated by '.', '_', '__' or '-')", f"fix the repository, {example}")
    if not _compiled(IMAGE_PATTERN).fullmatch(ref):  # pragma: no cover - the checks above cover the grammar
        raise bad(f"{what} {ref!r} is not a valid OCI reference", example)
    parsed = ImageRef(domain, "/".join(parts), tag, digest or None)
    if require_host and domain is None:
        raise bad(f"image {ref!r} names no registry host",
                  "write registry.example/owner/name[:tag][@sha256:<64 hex>]")
    if require_digest and parsed.digest is None:
        raise bad(f"image {ref!r} is not pinned by digest; a tag can be moved",
                  "pin it: registry/owner/name@sha256:<digest from the registry record>")
    return parsed
