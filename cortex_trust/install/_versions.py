"""The pure rules an install or update applies to what a registry lists. No I/O.

* :func:`select_version`: the highest *active* version satisfying a request; a yanked version only
  when pinned exactly; a revoked version never.
* :func:`widened_permissions`: what a new version asks for beyond the installed one (network,
  filesystem, leaving the sandbox, new capabilities): an update that widens asks again,
  whatever the tier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..manifest import SemVerError, parse_semver, satisfies, semver_key

__all__ = ["VersionCandidate", "select_version", "widened_permissions"]


@dataclass(frozen=True)
class VersionCandidate:
    """A version as a registry lists it."""

    version: str
    state: str  # active | yanked | revoked
    digest: str


def select_version(candidates: Iterable[VersionCandidate], request: str | None) -> VersionCandidate:
    """Pick the version to install for ``request`` (``None``/``latest``, ``1.2.3``, ``^1.2``...).

    Raises :class:`InputError` naming why nothing matched (revoked, yanked, no such version).
    """
    cands = [c for c in candidates if _is_semver(c.version)]
    exact = None
    if request and request != "latest":
        try:
            exact = parse_semver(request)
        except SemVerError:
            exact = None
    if exact is not None:
        for c in cands:
            if parse_semver(c.version) == exact:
                if c.state == "revoked":
                    raise InputError(f"version {c.version} is revoked and can never be installed",
                                     advice="install another version; `cortex plugin info` lists them")
                if c.state not in ("active", "yanked"):
                    # Fail closed: a state we do not know ("Revoked", "deleted") is not installable.
                    raise InputError(f"version {c.version} is in the unknown state {c.state!r}",
                                     advice="ask the registry's operator; only active and yanked "
                                            "versions can be installed")
                return c  # an exact pin may take a yanked version (the caller warns)
        raise InputError(f"there is no version {request}", advice="list versions with `cortex plugin info NAME`")
    spec = None if request in (None, "latest") else request
    active = [c for c in cands if c.state == "active"]
    try:
        matching = [c for c in active if (spec is None and not parse_semver(c.version).prerelease)
                    or (spec is not None and satisfies(c.version, spec))]
    except SemVerError as e:
        raise InputError(f"{request!r} is not a version or version range: {e}",
                         advice="use 1.2.3, ^1.2, ~1.2.3 or >=1.0,<2") from None
    if not matching:
        try:
            states = sorted({c.state for c in cands
                             if spec is None or satisfies(c.version, spec)} - {"active"})
        except SemVerError as e:  # a bad range with no active version to try it on
            raise InputError(f"{request!r} is not a version or version range: {e}",
                             advice="use 1.2.3, ^1.2, ~1.2.3 or >=1.0,<2") from None
        why = f" (matching versions are {', '.join(states)})" if states else ""
        raise InputError(f"no active version satisfies {request or 'latest'}{why}",
                         advice="pin another version or ask the publisher")
    return max(matching, key=lambda c: semver_key(c.version))


def _is_semver(v: str) -> bool:
    try:
        parse_semver(v)
    except SemVerError:
        return False
    return True


def _trust(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    t = (doc or {}).get("trust")
    return t if isinstance(t, Mapping) else {}


def _caps(doc: Mapping[str, Any] | None) -> set[tuple[str, str, str]]:
    caps = (doc or {}).get("capabilities") or []
    return {(str(c.get("name")), str(c.get("method")), str(c.get("endpoint"))) for c in caps if isinstance(c, Mapping)}


def widened_permissions(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What ``new`` (a manifest document) asks for that ``old`` did not. Empty: nothing wider."""
    widened = []
    o, n = _trust(old), _trust(new)
    if n.get("network") is True and o.get("network") is not True:
        widened.append("network access")
    if n.get("filesystem") is True and o.get("filesystem") is not True:
        widened.append("filesystem access")
    if n.get("sandbox") is False and o.get("sandbox") is not False:
        widened.append("running without a sandbox")
    for name, method, endpoint in sorted(_caps(new) - _caps(old)):
        widened.append(f"capability {name} ({method} {endpoint})")
    return widened
