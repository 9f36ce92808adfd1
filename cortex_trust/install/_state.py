"""Local record of installed plugins, and the pure rules an install or update applies.

* :func:`select_version`: the highest *active* version satisfying a request; a yanked version only
  when pinned exactly; a revoked version never (issue 5, "Install").
* :func:`widened_permissions`: what a new version asks for beyond the installed one (network,
  filesystem, leaving the sandbox, new capabilities): an update that widens asks again,
  whatever the tier.
* :class:`InstallStore`: the installation records (digest, decision, policy revision, time,
  overrides, the version's state at its registry) in one JSON file under the user's data
  directory, written atomically, owner-only. Plugins are known by their full name
  (``namespace/name``, ``github:owner/repo``); a short name is never resolved to one of them
  (two namespaces may both have it), only suggested (:meth:`InstallStore.require`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._suggest import closest
from ..errors import InputError
from ..ids import DIGEST_PATTERN
from ..manifest import SemVerError, parse_semver, satisfies, semver_key

__all__ = [
    "InstallRecord",
    "InstallStore",
    "VersionCandidate",
    "select_version",
    "widened_permissions",
]


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


class InstallRecord(BaseModel):
    """One installed plugin: exactly what was decided on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # full name: namespace/name or github:owner/repo
    version: str
    image: str  # repository@sha256:...
    digest: str = Field(pattern=DIGEST_PATTERN)
    registry: str | None
    manifest: dict[str, Any]
    decision: dict[str, Any]
    policy_revision: str
    installed_at: str
    overrides: tuple[str, ...] = ()
    source: str = "registry"
    #: The version's state at its registry when last asked (install, and every ``run``,
    #: ``call`` and ``sync`` that reached it): a yanked version stays installed and runs.
    registry_state: Literal["active", "yanked"] = "active"
    #: The publisher's reason, when ``registry_state`` is ``yanked``.
    yank_reason: str | None = None


class InstallStore:
    """Installed plugins in ``<data_dir>/installed.json`` (owner-only, atomic writes; read only
    while private: a link, a file or directory another user owns or can write is refused, see
    :mod:`cortex_trust._io`)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "installed.json"

    def _read(self) -> dict[str, dict[str, Any]]:
        from .._io import read_private_json

        return read_private_json(self.path, key="plugins", what="the install state",
                                 advice=f"move {self.path} away and reinstall the plugins")

    def all(self) -> list[InstallRecord]:
        """Every installed plugin, by name. Raises :class:`InputError` for a corrupt record."""
        return [self._record(k, v) for k, v in sorted(self._read().items())]

    def get(self, name: str) -> InstallRecord | None:
        """The record for ``name``, or ``None`` when not installed. Raises
        :class:`InputError` for a corrupt record."""
        v = self._read().get(name)
        return self._record(name, v) if v is not None else None

    def require(self, name: str) -> InstallRecord:
        """The record for ``name``. Raises :class:`InputError` when it is not installed, whose
        advice names the installed plugins ``name`` may mean (same short name, or a close
        spelling), by their full names: the caller chooses, nothing is guessed."""
        plugins = self._read()
        value = plugins.get(name)
        if value is not None:
            return self._record(name, value)
        meant = _meant(name, plugins)
        if not meant:
            advice = "see `cortex plugin list`"
        elif len(meant) == 1:
            advice = f"did you mean `{meant[0]}`? Installed plugins go by their full name"
        else:
            advice = ("did you mean one of " + ", ".join(f"`{m}`" for m in meant)
                      + "? Installed plugins go by their full name")
        raise InputError(f"{name} is not installed", advice=advice)

    def _record(self, name: str, value: Any) -> InstallRecord:
        try:
            return InstallRecord.model_validate(value)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(record)"
            raise InputError(f"the install state {self.path} is corrupt: the record of {name!r} "
                             f"is invalid at {where}: {err['msg']}",
                             advice=f"move {self.path} away and reinstall the plugins") from None

    def put(self, record: InstallRecord) -> None:
        """Record (or replace) an installation."""
        plugins = self._read()
        plugins[record.name] = record.model_dump(mode="json")
        self._write(plugins)

    def remove(self, name: str) -> bool:
        """Forget ``name``; returns whether it was installed."""
        plugins = self._read()
        if plugins.pop(name, None) is None:
            return False
        self._write(plugins)
        return True

    def _write(self, plugins: Mapping[str, Any]) -> None:
        from .._io import write_private_json

        write_private_json(self.path, {"schema": "cortex.installed/v1", "plugins": plugins},
                           what="the install state", advice="check the permissions of the data directory")




def _short_names(full: str, value: Any) -> set[str]:
    """The names a person may call installed ``full`` by: the part after the namespace or
    owner, and the manifest's plugin name."""
    names = {full.rsplit("/", 1)[-1].lower()}
    manifest = value.get("manifest") if isinstance(value, Mapping) else None
    if isinstance(manifest, Mapping) and isinstance(manifest.get("name"), str):
        names.add(manifest["name"].lower())
    return names


def _meant(name: str, plugins: Mapping[str, Any]) -> list[str]:
    """Installed full names that ``name`` may mean: those whose short name is ``name``, else
    the one closest in spelling (full or short name)."""
    wanted = name.strip().lower()
    same = sorted(full for full, value in plugins.items() if wanted in _short_names(full, value))
    if same:
        return same
    spellings: dict[str, set[str]] = {}
    for full, value in plugins.items():
        for spelling in (full.lower(), *_short_names(full, value)):
            spellings.setdefault(spelling, set()).add(full)
    guess = closest(wanted, sorted(spellings))
    return sorted(spellings[guess]) if guess is not None else []
