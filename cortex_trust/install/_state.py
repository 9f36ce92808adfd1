"""Local state: every file cortex keeps under the user's data directory, with one policy.

* :class:`InstallStore`: the installation records (digest, decision, policy revision, time,
  overrides, the version's state at its registry, the signer pinned at first install and every
  accepted change of it) in ``installed.json``. Plugins are known by
  their full name (``namespace/name``, ``github:owner/repo``); a short name is never resolved to
  one of them (two namespaces may both have it), only suggested (:meth:`InstallStore.require`).
* :class:`InputStore`: the install-time policy input of each installed plugin (replayed at run
  time) and the registry whose revocation feed speaks for it, in ``inputs/``.
* :class:`CheckpointStore`: the last transparency-log checkpoint verified from each registry, in
  ``checkpoints/``.
* :class:`RevocationCache`: what is known about each registry's revocation feed (cursor, entries,
  ``fresh_as_of``), in ``revocations.json``.

One policy for every store: files are written atomically and owner-only, and read only while
private (a link, a file or directory another user owns or can write is refused, see
:mod:`cortex_trust._io`). A missing file is "nothing recorded yet"; a file that is there but is
not what was written (not JSON, the wrong shape, a record that does not validate, a checkpoint
that does not verify) is corrupt and raises :class:`~cortex_trust.errors.InputError` naming the
file and the fix, never read as "nothing recorded".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._io import read_private_doc, read_private_json, write_private_json
from .._suggest import closest
from ..errors import InputError
from ..ids import DIGEST_PATTERN
from ..policy import PolicyInput, SignerRef

if TYPE_CHECKING:
    from ..sources import Checkpoint, NoteVerifier
    from ._federation import RegistryTarget

__all__ = [
    "CheckpointStore",
    "FeedState",
    "InputStore",
    "InstallRecord",
    "InstallStore",
    "RevocationCache",
    "RevokedVersion",
    "SignerChange",
    "SignerPin",
]

_PERMISSIONS_ADVICE = "check the permissions of the data directory"
#: The install state as written: every record carries its ``signer`` key (a pin, or ``null``
#: for a record carried over from a state written before signers were pinned).
_INSTALLED_SCHEMA = "cortex.installed/v2"


def _invalid_at(e: ValidationError) -> str:
    """Where and why a stored record failed validation (the first error)."""
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(record)"
    return f"invalid at {where}: {err['msg']}"


class SignerPin(BaseModel):
    """The signer an installation trusts (trust on first use): the identity, issuer and Sigstore
    root of the version it was pinned at, or none of them for an unsigned version.

    Every field is required, so a pin that lost one is corrupt, never read as another signer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str | None = Field(max_length=4096)
    issuer: str | None = Field(max_length=4096)
    trusted_root: str | None = Field(max_length=256)
    #: The version whose signer this is, and when it was pinned.
    version: str = Field(max_length=256)
    pinned_at: str = Field(max_length=64)

    @model_validator(mode="after")
    def _signed_or_not(self) -> SignerPin:
        if (self.identity is None) != (self.issuer is None) or (self.identity is None and self.trusted_root):
            raise ValueError("a signer has an identity and an issuer (and its root), or none of them")
        return self

    @property
    def ref(self) -> SignerRef | None:
        """The signer as continuity compares them; ``None``: unsigned."""
        if self.identity is None:
            return None
        return SignerRef(identity=self.identity, issuer=self.issuer, trusted_root=self.trusted_root)

    def describe(self) -> str:
        """``IDENTITY (ISSUER), root ROOT``, or ``unsigned``."""
        if self.identity is None:
            return "unsigned"
        return f"{self.identity} ({self.issuer}), root {self.trusted_root}"


class SignerChange(BaseModel):
    """An accepted change of the pinned signer: from ``previous`` to ``current`` (pinned at
    ``changed_at``), and how the person accepted it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    previous: SignerPin
    current: SignerPin
    changed_at: str = Field(max_length=64)
    consent: Literal["--allow-signer-change", "prompt"]


class InstallRecord(BaseModel):
    """One installed plugin: exactly what was decided on, and the signer it is pinned to."""

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
    #: The signer pinned at first install (moved only by an accepted change); ``None`` only for
    #: a record carried over from a state written before signers were pinned: its next install
    #: or update compares with the signer of its recorded input (when that input is about its
    #: digest) and pins it, or pins whatever signs when there is none.
    signer: SignerPin | None = None
    #: Every accepted change of the pinned signer, oldest first.
    signer_changes: tuple[SignerChange, ...] = Field(default=(), max_length=1000)


class InstallStore:
    """Installed plugins in ``<data_dir>/installed.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "installed.json"

    def _read(self) -> dict[str, dict[str, Any]]:
        advice = f"move {self.path} away and reinstall the plugins"
        doc = read_private_doc(self.path, what="the install state", advice=advice)
        if doc is None:
            return {}
        plugins = doc.get("plugins")
        if not isinstance(plugins, dict):
            raise InputError(f"the install state {self.path} is corrupt: no `plugins` object", advice=advice)
        pinned = doc.get("schema") == _INSTALLED_SCHEMA
        for name, value in plugins.items():
            if not isinstance(value, dict) or "signer" in value:
                continue
            if pinned:
                # Written with pins: a record without its `signer` key lost it, and would be
                # pinned again to whatever signs next.
                raise InputError(f"the install state {self.path} is corrupt: the record of {name!r} "
                                 "has no `signer` (the signer pinned at its first install)", advice=advice)
            value["signer"] = None  # written before pins: not pinned yet, said so when written again
        return plugins

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
            raise InputError(f"the install state {self.path} is corrupt: the record of {name!r} "
                             f"is {_invalid_at(e)}",
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
        write_private_json(self.path, {"schema": _INSTALLED_SCHEMA, "plugins": plugins},
                           what="the install state", advice=_PERMISSIONS_ADVICE)


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


class InputStore:
    """The install-time policy input of each installed plugin, ``<data_dir>/inputs/<name>.json``,
    with the registry (name and primary URL) whose revocation feed speaks for it."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.dir = data_dir / "inputs"

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^a-z0-9-]", "_", name.lower())[:150]
        return self.dir / f"{safe}.json"

    def _corrupt(self, name: str, why: str) -> InputError:
        path = self._path(name)
        return InputError(f"the recorded policy input {path} is corrupt: {why}",
                          advice=f"move {path} away and reinstall: cortex plugin install {name}")

    def put(self, name: str, policy_input: PolicyInput, *, feed: RegistryTarget) -> None:
        """Record ``policy_input`` and the registry whose revocation feed speaks for ``name``."""
        write_private_json(self._path(name), {"name": name, "input": policy_input.to_dict(),
                                              "feed": [feed.name, feed.urls[0]]},
                           what="the recorded policy input", advice=_PERMISSIONS_ADVICE,
                           root=self.root)

    def _doc(self, name: str) -> dict[str, Any] | None:
        """The recorded document of ``name``, ``None`` when there is none."""
        path = self._path(name)
        doc = read_private_doc(path, what="the recorded policy input", root=self.root,
                               advice=f"move {path} away and reinstall: cortex plugin install {name}")
        if doc is not None and doc.get("name") != name:
            raise self._corrupt(name, f"it is about {str(doc.get('name'))[:150]!r}, not {name!r}")
        return doc

    def get(self, name: str) -> PolicyInput | None:
        """The recorded input of ``name``, or ``None`` when none was recorded."""
        doc = self._doc(name)
        if doc is None:
            return None
        try:
            return PolicyInput.model_validate(doc.get("input"))
        except ValidationError as e:
            raise self._corrupt(name, f"the input is {_invalid_at(e)}") from None

    def feed(self, name: str) -> tuple[str, str] | None:
        """The (registry name, primary URL) recorded at install, ``None`` when none was."""
        doc = self._doc(name)
        if doc is None or "feed" not in doc:
            return None
        feed = doc["feed"]
        if (not isinstance(feed, list) or len(feed) != 2
                or not all(isinstance(x, str) for x in feed)):
            raise self._corrupt(name, "`feed` is not [registry name, URL]")
        return feed[0], feed[1]

    def remove(self, name: str) -> None:
        """Forget the input of ``name`` (nothing to do when there is none)."""
        self._path(name).unlink(missing_ok=True)


class CheckpointStore:
    """The last checkpoint this machine verified from each registry (per URL and log key).

    A stored note is verified again when read, so an edited file is corrupt, never trusted."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "checkpoints"

    def _path(self, target: RegistryTarget, verifier: NoteVerifier) -> Path:
        ident = hashlib.sha256(f"{target.urls[0]}\n{verifier.text}".encode()).hexdigest()[:16]
        safe = re.sub(r"[^a-z0-9-]", "_", target.name.lower())[:64]
        return self.dir / f"{safe}-{ident}.json"

    def get(self, target: RegistryTarget, verifier: NoteVerifier) -> Checkpoint | None:
        """The stored checkpoint, or ``None``."""
        from ..sources import TransparencyError, open_checkpoint

        path = self._path(target, verifier)
        advice = f"move {path} away only if you trust the registry's current log"
        doc = read_private_doc(path, what="the saved log checkpoint", advice=advice)
        if doc is None:
            return None
        try:
            return open_checkpoint(str(doc.get("note", "")), verifier)
        except TransparencyError as e:
            raise InputError(f"the saved log checkpoint {path} does not verify: {e.message}",
                             advice=advice) from None

    def put(self, target: RegistryTarget, verifier: NoteVerifier, note: bytes) -> None:
        """Remember ``note`` (a checkpoint already verified with ``verifier``)."""
        write_private_json(self._path(target, verifier),
                           {"registry": target.name, "url": target.urls[0],
                            "log_key": verifier.text, "note": note.decode("utf-8")},
                           what="the saved log checkpoint", advice=_PERMISSIONS_ADVICE)


class RevokedVersion(BaseModel):
    """One revoked version as the feed announced it; ``kind`` as the feed said it (``None``:
    a registry from before kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str | None = Field(default=None, max_length=32)
    namespace: str
    name: str
    version: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    reason: str
    revoked_at: str


class FeedState(BaseModel):
    """What is known about one registry's feed: where to continue and as of when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str
    url: str
    cursor: int = 0
    #: Reference time of the last *complete* sync; ``None``: never synced.
    fresh_as_of: str | None = None
    revoked: tuple[RevokedVersion, ...] = ()
    #: Whether ``revoked`` was recorded with each entry's ``kind``; a state recorded without
    #: is read as never synced (see :meth:`RevocationCache.get`).
    kinds: bool = False


class RevocationCache:
    """Feed states per registry name, in ``<data_dir>/revocations.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "revocations.json"

    def _read(self) -> dict[str, Any]:
        return read_private_json(self.path, key="registries", what="the revocation cache",
                                 advice=f"remove {self.path}; the next run syncs the feeds again")

    def get(self, registry: str, *, url: str) -> FeedState | None:
        """The state of ``registry``'s feed, or ``None`` if never synced from ``url``."""
        raw = self._read().get(registry)
        if raw is None:
            return None
        try:
            state = FeedState.model_validate(raw)
        except ValidationError:
            raise InputError(f"the revocation cache {self.path} is corrupt at {registry!r}",
                             advice=f"remove {self.path}; the next run syncs the feeds again"
                             ) from None
        # Another server behind the same name: its cursors mean nothing here. A state recorded
        # before entries carried kinds: read the feed again, this time with them.
        return state if state.url == url and state.kinds else None

    def put(self, state: FeedState) -> None:
        """Store ``state`` (replacing the registry's previous one)."""
        states = self._read()
        states[state.registry] = state.model_dump(mode="json")
        write_private_json(self.path, {"schema": "cortex.revocations/v1", "registries": states},
                           what="the revocation cache", advice=_PERMISSIONS_ADVICE)
