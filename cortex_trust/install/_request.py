"""The install request grammar: ``namespace/name[@version-or-range]`` or ``github:owner/repo[@ref]``.

The grammar is strict (lowercase ASCII slugs, a bounded version spec), so nothing in a request
can address another path or host. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import InputError
from ..ids import SLUG

if TYPE_CHECKING:
    from ..sources import GitHubRef

__all__ = ["PluginRequest", "parse_request"]

_REQUEST = re.compile(rf"^({SLUG})/({SLUG})(?:@([0-9A-Za-z.^~<>=, *+-]{{1,64}}))?\Z")


@dataclass(frozen=True)
class PluginRequest:
    """What the user asked to install: ``namespace/name[@version-or-range]`` or a GitHub ref."""

    text: str
    kind: Literal["registry", "github"]
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    github: GitHubRef | None = None

    @property
    def full_name(self) -> str:
        """``namespace/name`` or ``github:owner/repo`` (the key of the install record)."""
        if self.github is not None:
            return f"github:{self.github.owner}/{self.github.repo}"
        return f"{self.namespace}/{self.name}"


def parse_request(text: str) -> PluginRequest:
    """Parse ``acme/tool``, ``acme/tool@1.2.3``, ``acme/tool@^1.2`` or ``github:org/repo[@ref]``.

    Raises :class:`InputError` with the expected form.
    """
    if not isinstance(text, str) or len(text) > 300:
        raise InputError("a plugin name is at most 300 characters",
                         advice="use NAMESPACE/NAME[@VERSION] or github:OWNER/REPO[@REF]")
    if text.startswith("github:"):
        from ..sources import parse_github_ref

        return PluginRequest(text=text, kind="github", github=parse_github_ref(text))
    m = _REQUEST.match(text)
    if m is None:
        raise InputError(f"{text[:100]!r} is not a plugin name",
                         advice="use NAMESPACE/NAME[@VERSION or @^RANGE] in lowercase, e.g. "
                                "acme/my-plugin@^1.2, or github:OWNER/REPO[@REF]")
    return PluginRequest(text=text, kind="registry", namespace=m.group(1), name=m.group(2),
                         version=m.group(3))
