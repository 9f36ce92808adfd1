"""The index as a TUF repository on disk: metadata written with the Metadata API, signed with
securesystemslib signers, laid out to be served by any static server.

Layout of ``DIR`` (consistent snapshots: every file a client fetches after the timestamp is
immutable, so a mirror or CDN can serve it while it changes)::

    metadata/N.root.json  root.json   every root version (clients walk them to rotate keys)
    metadata/timestamp.json           the only file rewritten in place, always last
    metadata/N.snapshot.json          the versions of targets and of every bin
    metadata/N.targets.json           delegates every document to the hashed bins
    metadata/N.bin-XX.json            one bin: the documents whose path hashes into it
    targets/DIRS/SHA256.NAME          the documents (see cortex_trust.sources.IndexLayout)

Roles (TUF, PEP 458): ``root`` (offline key, a year), ``targets`` (offline key, a month; it
only delegates), the bins (one online key, a week), ``snapshot`` (online, a week) and
``timestamp`` (online, a day; it also says when it was signed, in
:data:`~cortex_trust.sources.IndexLayout.SIGNED_AT`). Thresholds are 1: one key per role.

Guarantees:

* a change re-signs only the bins whose documents changed, then the snapshot and the timestamp;
  unchanged documents are not rewritten (same path, same hash);
* every metadata file is verified against its delegator before it is written, files are
  written atomically, and the timestamp is written last: a reader sees the old index or the new
  one, never a part of each;
* one writer at a time (an exclusive lock on ``DIR/.lock``); the state is the tree itself.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cortex_trust.errors import InputError
from cortex_trust.sources import IndexLayout

from ._keys import KeyRing

if TYPE_CHECKING:
    from securesystemslib.signer import Signer
    from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

__all__ = ["DEFAULT_BINS", "Expiries", "IndexRepository", "IndexStats"]

#: Hashed bins by default: a few thousand documents per bin at a million versions.
DEFAULT_BINS = 256
_BIN_PREFIX = "bin"


@dataclass(frozen=True)
class Expiries:
    """How long each role's metadata is valid after it is signed."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=30)
    bins: timedelta = timedelta(days=7)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)


@dataclass
class IndexStats:
    """What one change did: documents written, metadata files signed and their bytes."""

    documents: int = 0
    bins_signed: int = 0
    metadata_signed: list[str] = field(default_factory=list)
    bytes_signed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"documents": self.documents, "bins_signed": self.bins_signed,
                "metadata_signed": list(self.metadata_signed), "bytes_signed": self.bytes_signed}


def _bit_length(bins: int) -> int:
    if bins < 2 or bins > 2**16 or bins & (bins - 1):
        raise InputError(f"{bins} bins: the number of bins must be a power of two from 2 to 65536",
                         advice="e.g. --bins 256 (about a thousand documents per bin is a good size)")
    return bins.bit_length() - 1


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _stamp(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(microsecond=0)


class IndexRepository:
    """The index in ``directory``, signed with the keys of ``keyring``; ``clock`` gives the
    reference time of each operation (read once per operation)."""

    def __init__(self, directory: Path, keyring: KeyRing, *, expiries: Expiries | None = None) -> None:
        self.dir = directory
        self.metadata = directory / "metadata"
        self.targets_dir = directory / "targets"
        self.keys = keyring
        self.expiries = expiries or Expiries()
        self._bins: dict[str, Metadata[Targets]] = {}

    # ------------------------------------------------------------------------- reading

    def exists(self) -> bool:
        """Whether an index was created here."""
        return (self.metadata / "timestamp.json").exists()

    def _load(self, name: str) -> Metadata[Any]:
        from tuf.api.metadata import Metadata

        return Metadata.from_bytes((self.metadata / name).read_bytes())

    def root(self) -> Metadata[Root]:
        """The newest root."""
        versions = [int(p.name.split(".", 1)[0]) for p in self.metadata.glob("*.root.json")]
        if not versions:
            raise InputError(f"{self.dir} holds no index", advice="create it with "
                             "`cortex registry index build --out DIR`")
        md: Metadata[Root] = self._load(f"{max(versions)}.root.json")
        return md

    def timestamp(self) -> Metadata[Timestamp]:
        """The current timestamp."""
        md: Metadata[Timestamp] = self._load("timestamp.json")
        return md

    def snapshot(self) -> Metadata[Snapshot]:
        """The snapshot the timestamp names."""
        md: Metadata[Snapshot] = self._load(f"{self.timestamp().signed.snapshot_meta.version}"
                                            ".snapshot.json")
        return md

    def top_targets(self) -> Metadata[Targets]:
        """The top-level targets (the delegation to the bins)."""
        md: Metadata[Targets] = self._load(f"{self.snapshot().signed.meta['targets.json'].version}"
                                           ".targets.json")
        return md

    def bin_names(self) -> list[str]:
        """Every bin's role name."""
        succinct = self._succinct()
        return list(succinct.get_roles())

    def _succinct(self) -> Any:
        delegations = self.top_targets().signed.delegations
        if delegations is None or delegations.succinct_roles is None:
            raise InputError(f"{self.dir} is not an index this registry wrote (no hashed bins)",
                             advice="build it again in an empty directory")
        return delegations.succinct_roles

    def _bin(self, role: str, snapshot: Metadata[Snapshot]) -> Metadata[Targets]:
        if role not in self._bins:
            self._bins[role] = self._load(f"{snapshot.signed.meta[f'{role}.json'].version}.{role}.json")
        return self._bins[role]

    def document(self, path: str) -> bytes | None:
        """The current bytes of the document at ``path`` (``None``: not in the index)."""
        snapshot = self.snapshot()
        info = self._bin(self._succinct().get_role_for_target(path), snapshot).signed.targets.get(path)
        if info is None:
            return None
        return self._target_file(path, info.hashes["sha256"]).read_bytes()

    def paths(self) -> Iterator[str]:
        """Every document path in the index."""
        snapshot = self.snapshot()
        for role in self.bin_names():
            yield from self._bin(role, snapshot).signed.targets

    def _target_file(self, path: str, digest: str) -> Path:
        dirname, _, base = path.rpartition("/")
        return self.targets_dir / dirname / f"{digest}.{base}"

    # ------------------------------------------------------------------------- signing

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._bins.clear()  # another writer may have changed them
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sign(self, md: Metadata[Any], name: str, signers: Iterable[Signer], *,
              delegator: Metadata[Any] | None, stats: IndexStats, versioned: bool = True) -> None:
        """Sign ``md`` with ``signers``, check it against ``delegator`` and write it."""
        from tuf.api.metadata import Root

        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        if isinstance(md.signed, Root):
            previous = delegator.signed if delegator is not None else None
            if not md.signed.get_root_verification_result(previous, md.signed_bytes,
                                                          md.signatures).verified:
                raise InputError(f"the new root {md.signed.version} does not verify",
                                 advice="sign it with the current and the new root keys")
        else:
            assert delegator is not None
            delegator.verify_delegate(name, md)
        data = md.to_bytes()
        target = self.metadata / (f"{md.signed.version}.{name}.json" if versioned else f"{name}.json")
        _write_atomic(target, data)
        stats.metadata_signed.append(target.name)
        stats.bytes_signed += len(data)

    def create(self, *, bins: int, now: datetime) -> IndexStats:
        """A new, empty index: keys generated for the roles that have none (the root and
        targets keys must then be moved offline), root 1, targets delegating to ``bins``
        hashed bins, every bin, snapshot and timestamp. Raises :class:`InputError` when an
        index is already here."""
        from tuf.api.metadata import Metadata, Root

        bit_length = _bit_length(bins)
        with self._locked():
            if self.exists() or any(self.metadata.glob("*.root.json")):
                raise InputError(f"{self.dir} already holds an index",
                                 advice="update it with `cortex registry index build` (it keeps "
                                        "its keys) or choose an empty directory")
            now = _stamp(now)
            for role in ("root", "targets", "snapshot", "timestamp", "bins"):
                if not self.keys.has(role):
                    self.keys.generate(role)
            root = Root(expires=now + self.expiries.root, consistent_snapshot=True)
            for role in ("root", "targets", "snapshot", "timestamp"):
                root.add_key(self.keys.signer(role).public_key, role)
            stats = IndexStats()
            root_md = Metadata(root)
            self._sign(root_md, "root", [self.keys.signer("root")], delegator=None, stats=stats)
            _write_atomic(self.metadata / "root.json", root_md.to_bytes())
            self._delegate(root_md, bit_length=bit_length, now=now, documents={}, stats=stats,
                           previous={})
            return stats

    def _delegate(self, root_md: Metadata[Root], *, bit_length: int, now: datetime,
                  documents: Mapping[str, Any], stats: IndexStats,
                  previous: Mapping[str, int], targets_version: int = 1) -> None:
        """Write targets (delegating to the bins), every bin with ``documents`` (path ->
        TargetFile), snapshot and timestamp."""
        from tuf.api.metadata import Delegations, Metadata, SuccinctRoles, Targets

        bins_key = self.keys.signer("bins").public_key
        succinct = SuccinctRoles(keyids=[bins_key.keyid], threshold=1, bit_length=bit_length,
                                 name_prefix=_BIN_PREFIX)
        top = Targets(version=targets_version, expires=now + self.expiries.targets,
                      delegations=Delegations(keys={bins_key.keyid: bins_key}, roles=None,
                                              succinct_roles=succinct))
        top_md = Metadata(top)
        self._sign(top_md, "targets", [self.keys.signer("targets")], delegator=root_md, stats=stats)
        by_bin: dict[str, dict[str, Any]] = {role: {} for role in succinct.get_roles()}
        for path, info in documents.items():
            by_bin[succinct.get_role_for_target(path)][path] = info
        versions = {"targets.json": targets_version}
        for role, targets in by_bin.items():
            md = Metadata(Targets(version=previous.get(f"{role}.json", 0) + 1,
                                  expires=now + self.expiries.bins, targets=targets))
            self._sign(md, role, [self.keys.signer("bins")], delegator=top_md, stats=stats)
            versions[f"{role}.json"] = md.signed.version
            stats.bins_signed += 1
        self._snapshot_and_timestamp(root_md, versions, now=now, stats=stats)

    def _snapshot_and_timestamp(self, root_md: Metadata[Root], versions: Mapping[str, int], *,
                                now: datetime, stats: IndexStats) -> None:
        from tuf.api.metadata import Metadata, MetaFile, Snapshot

        if self.exists():
            snapshot = self.snapshot()
            # A role once listed stays listed (clients refuse a snapshot that drops one).
            meta = dict(snapshot.signed.meta)
            version = snapshot.signed.version + 1
            ts_version = self.timestamp().signed.version + 1
        else:
            meta, version, ts_version = {}, 1, 1
        meta.update({name: MetaFile(version=v) for name, v in versions.items()})
        snap_md = Metadata(Snapshot(version=version, expires=now + self.expiries.snapshot, meta=meta))
        self._sign(snap_md, "snapshot", [self.keys.signer("snapshot")], delegator=root_md, stats=stats)
        self._timestamp(root_md, snap_md.signed.version, version=ts_version, now=now, stats=stats)

    def _timestamp(self, root_md: Metadata[Root], snapshot_version: int, *, version: int,
                   now: datetime, stats: IndexStats) -> None:
        from tuf.api.metadata import Metadata, MetaFile, Timestamp

        ts = Timestamp(version=version, expires=now + self.expiries.timestamp,
                       snapshot_meta=MetaFile(version=snapshot_version),
                       unrecognized_fields={IndexLayout.SIGNED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        self._sign(Metadata(ts), "timestamp", [self.keys.signer("timestamp")], delegator=root_md,
                   stats=stats, versioned=False)

    def update(self, changes: Mapping[str, bytes | None], *, now: datetime) -> IndexStats:
        """Apply ``changes`` (document path -> new bytes, or ``None`` to remove it): only the
        bins whose documents changed are re-signed, then snapshot and timestamp. Nothing is
        signed when nothing changed. Needs the online keys only."""
        from tuf.api.metadata import TargetFile

        stats = IndexStats()
        with self._locked():
            now = _stamp(now)
            root_md, snapshot = self.root(), self.snapshot()
            succinct = self._succinct()
            touched: dict[str, Metadata[Targets]] = {}
            for path, data in changes.items():
                role = succinct.get_role_for_target(path)
                md = touched.get(role) or self._bin(role, snapshot)
                current = md.signed.targets.get(path)
                if data is None:
                    if current is None:
                        continue
                    del md.signed.targets[path]
                else:
                    info = TargetFile.from_data(path, data, ["sha256"])
                    if current is not None and current == info:
                        continue
                    target = self._target_file(path, info.hashes["sha256"])
                    if not target.exists():
                        _write_atomic(target, data)
                    md.signed.targets[path] = info
                    stats.documents += 1
                touched[role] = md
            if not touched:
                return stats
            self._sign_bins(root_md, touched, now=now, stats=stats)
            return stats

    def _sign_bins(self, root_md: Metadata[Root], touched: Mapping[str, Metadata[Targets]], *,
                   now: datetime, stats: IndexStats) -> None:
        top_md = self.top_targets()
        versions = {}
        for role, md in touched.items():
            md.signed.version += 1
            md.signed.expires = now + self.expiries.bins
            self._sign(md, role, [self.keys.signer("bins")], delegator=top_md, stats=stats)
            versions[f"{role}.json"] = md.signed.version
            stats.bins_signed += 1
        self._snapshot_and_timestamp(root_md, versions, now=now, stats=stats)

    def replace_all(self, documents: Iterable[tuple[str, bytes]], *, now: datetime,
                    bins: int | None = None) -> IndexStats:
        """Make the index hold exactly ``documents``: changed and new ones are written, the
        others removed, and only the bins that differ are re-signed. ``bins`` other than the
        current number re-delegates every document (this needs the targets key)."""
        from tuf.api.metadata import TargetFile

        infos: dict[str, TargetFile] = {}
        with self._locked():
            for path, data in documents:
                info = TargetFile.from_data(path, data, ["sha256"])
                target = self._target_file(path, info.hashes["sha256"])
                if not target.exists():
                    _write_atomic(target, data)
                infos[path] = info
        stats = IndexStats(documents=len(infos))
        with self._locked():
            now = _stamp(now)
            root_md, snapshot = self.root(), self.snapshot()
            succinct = self._succinct()
            if bins is not None and bins != succinct.number_of_bins:
                previous = {name: meta.version for name, meta in snapshot.signed.meta.items()}
                self._delegate(root_md, bit_length=_bit_length(bins), now=now, documents=infos,
                               stats=stats, previous=previous,
                               targets_version=previous["targets.json"] + 1)
                return stats
            wanted: dict[str, dict[str, TargetFile]] = {role: {} for role in succinct.get_roles()}
            for path, info in infos.items():
                wanted[succinct.get_role_for_target(path)][path] = info
            touched = {}
            for role, targets in wanted.items():
                md = self._bin(role, snapshot)
                if md.signed.targets != targets:
                    md.signed.targets = targets
                    touched[role] = md
            if touched:
                self._sign_bins(root_md, touched, now=now, stats=stats)
            return stats

    def refresh(self, *, now: datetime) -> IndexStats:
        """Re-sign the timestamp (a new version, valid for its full period from ``now``), and
        the bins and snapshot when less than half of their period is left. Needs the online
        keys only. The targets metadata and the root are renewed by :meth:`renew_offline`."""
        stats = IndexStats()
        with self._locked():
            now = _stamp(now)
            root_md, snapshot = self.root(), self.snapshot()
            touched = {role: md for role in self.bin_names()
                       if (md := self._bin(role, snapshot)).signed.expires - now < self.expiries.bins / 2}
            if touched:
                self._sign_bins(root_md, touched, now=now, stats=stats)
            elif snapshot.signed.expires - now < self.expiries.snapshot / 2:
                self._snapshot_and_timestamp(root_md, {}, now=now, stats=stats)
            else:
                self._timestamp(root_md, snapshot.signed.version,
                                version=self.timestamp().signed.version + 1, now=now, stats=stats)
            return stats

    def expiring_offline(self, *, now: datetime) -> list[str]:
        """The offline roles (root, targets) with less than half of their period left."""
        out = []
        if self.root().signed.expires - now < self.expiries.root / 2:
            out.append("root")
        if self.top_targets().signed.expires - now < self.expiries.targets / 2:
            out.append("targets")
        return out

    def rotate(self, role: str, *, now: datetime) -> IndexStats:
        """Replace ``role``'s key by a new one (written to its key file) and re-sign what it
        signs. A new root version names the new key; it is signed by the current root key and,
        for ``root``, by the new one too, so that clients follow the rotation. ``bins`` is
        delegated by targets: rotating it re-signs targets and every bin."""
        from tuf.api.metadata import Metadata

        stats = IndexStats()
        with self._locked():
            now = _stamp(now)
            root_md = self.root()
            old_root_signer = self.keys.signer("root")
            if role == "bins":
                self.keys.signer("targets")  # needed below: fail before any key is replaced
                snapshot = self.snapshot()
                documents = {}
                for name in self.bin_names():
                    documents.update(self._bin(name, snapshot).signed.targets)
                previous = {name: meta.version for name, meta in snapshot.signed.meta.items()}
                self.keys.generate("bins")
                self._delegate(root_md, bit_length=self._succinct().bit_length, now=now,
                               documents=documents, stats=stats, previous=previous,
                               targets_version=previous["targets.json"] + 1)
                return stats
            if role not in ("root", "targets", "snapshot", "timestamp"):
                raise InputError(f"{role!r} is not a role of the index",
                                 advice="rotate root, targets, snapshot, timestamp or bins")
            if role == "targets":
                self.keys.signer("bins")
            old_key = self.keys.signer(role).public_key
            new = self.keys.generate(role)
            root = Metadata.from_bytes(root_md.to_bytes()).signed
            root.revoke_key(old_key.keyid, role)
            root.add_key(new.public_key, role)
            root.version += 1
            root.expires = now + self.expiries.root
            new_root = Metadata(root)
            signers = [old_root_signer, new] if role == "root" else [old_root_signer]
            self._sign(new_root, "root", signers, delegator=root_md, stats=stats)
            _write_atomic(self.metadata / "root.json", new_root.to_bytes())
            snapshot = self.snapshot()
            if role == "targets":
                top = self.top_targets()
                top.signed.version += 1
                top.signed.expires = now + self.expiries.targets
                self._sign(top, "targets", [new], delegator=new_root, stats=stats)
                self._snapshot_and_timestamp(new_root, {"targets.json": top.signed.version},
                                             now=now, stats=stats)
            elif role == "snapshot":
                self._snapshot_and_timestamp(new_root, {}, now=now, stats=stats)
            else:
                self._timestamp(new_root, snapshot.signed.version,
                                version=self.timestamp().signed.version + 1, now=now, stats=stats)
            return stats

    def renew_offline(self, *, now: datetime) -> IndexStats:
        """Re-sign the top-level targets (targets key) and a new root version (root key), each
        for its full period; then snapshot and timestamp."""
        from tuf.api.metadata import Metadata

        stats = IndexStats()
        with self._locked():
            now = _stamp(now)
            root_md = self.root()
            root = Metadata.from_bytes(root_md.to_bytes())
            root.signed.version += 1
            root.signed.expires = now + self.expiries.root
            self._sign(root, "root", [self.keys.signer("root")], delegator=root_md, stats=stats)
            _write_atomic(self.metadata / "root.json", root.to_bytes())
            top = self.top_targets()
            top.signed.version += 1
            top.signed.expires = now + self.expiries.targets
            self._sign(top, "targets", [self.keys.signer("targets")], delegator=root, stats=stats)
            self._snapshot_and_timestamp(root, {"targets.json": top.signed.version}, now=now,
                                         stats=stats)
            return stats

