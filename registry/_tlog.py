"""The audit log as a transparency log: leaves, stored subtrees, checkpoints, proofs, effects.

Guarantees:

* Every audit entry is one leaf of an RFC 9162 Merkle tree (leaf index = entry id - 1, leaf =
  the entry's canonical body, :func:`registry._audit.entry_body`). The tree's perfect subtrees
  are stored in ``log_node`` as each entry is appended, inside the write's transaction, so the
  tree always has exactly the entries' size and any inclusion or consistency proof costs
  O(log n) look-ups (one query).
* Checkpoints (C2SP ``tlog-checkpoint`` notes) are signed with a key that is never stored in
  the database (:class:`~cortex_trust.sources.NoteSigner`, given by configuration). Without
  a key the log still grows and proves, but serves no signed checkpoint.
* :class:`EffectsRecorder` records what a write left in the tracked state tables
  (:data:`registry._audit.TRACKED_TABLES`): every tracked row the ORM flushed in the
  transaction, projected by :func:`projection`. Writes that bypass the ORM (re-tiering's
  bulk UPDATE) pass their effects explicitly. Projections are part of the log's format: a
  changed projection makes every earlier entry disagree with the tables, so changing one takes
  a migration that appends new ``log.baseline`` entries (as migration 0012 did).
* :func:`verify_log` recomputes everything from the entries alone: the chain, the tree and its
  stored nodes, consistency with a checkpoint seen earlier (signature checked first), and the
  state tables against a replay of the effects.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, event, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cortex_trust.sources import (
    Checkpoint,
    NoteSigner,
    ProofError,
    append_leaf,
    consistency_proof,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    root_from_frontier,
    verify_consistency,
)

from ._audit import (
    GENESIS,
    TRACKED_TABLES,
    AuditProblem,
    ReplayedState,
    canonical,
    compare_state,
    entry_body,
    replay,
    sha256_text,
    verify_chain,
)
from ._models import AuditEntry, AuditHead, LogNode, Plugin, PluginVersion, RevocationRow

__all__ = [
    "MAX_ENTRIES_PAGE",
    "AuditReport",
    "EffectsRecorder",
    "TransparencyLog",
    "append_entry",
    "current_projections",
    "frontier_keys",
    "projection",
    "rendered_hash",
    "rows_projection",
    "token_secret_commitment",
    "verify_log",
    "version_values",
]

#: The most entries one ``GET /api/v1/log/entries`` returns.
MAX_ENTRIES_PAGE = 100


def _tracked(obj: Any) -> bool:
    return getattr(type(obj), "__tablename__", None) in TRACKED_TABLES


# ----------------------------------------------------------------------------------- effects


def token_secret_commitment(token_hash: str) -> str:
    """What the log records of a token's secret: a hash of its stored hash, so replacing a
    token's secret (an attacker's own token under an admin's id) is seen, while the log never
    holds the stored value itself."""
    return hashlib.sha256(b"cortex-token-commitment:" + token_hash.encode()).hexdigest()


def version_values(*, id: int | None, digest: str, image: str, state: str, tier: str,
                   action: str, decision_json: str, summary_json: str,
                   document_json: str) -> dict[str, Any]:
    """A version row's projection: identity, image, state, decision, and a hash of what the
    read routes serve (decision and both pre-rendered documents)."""
    return {"id": id, "digest": digest, "image": image, "state": state, "tier": tier,
            "action": action, "rendered": rendered_hash(decision_json=decision_json,
                                                        summary_json=summary_json,
                                                        document_json=document_json)}


def rendered_hash(*, decision_json: str, summary_json: str, document_json: str) -> str:
    """The hash of what the read routes serve for a version (``rendered`` in its projection)."""
    return sha256_text(decision_json + "\0" + summary_json + "\0" + document_json)


Getter = Callable[[str], Any]


def _optional(get: Getter, column: str) -> Any:
    """``get(column)``, or ``None`` where the schema has no such column yet (a migration
    projecting the rows of an older schema)."""
    try:
        return get(column)
    except KeyError:  # SQLAlchemy's NoSuchColumnError is a KeyError
        return None


def _row_projection(table: str, get: Getter, *, plugin_key: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(key, values)`` of one tracked row, read through ``get(column)``. Explicit fields per
    table: a column added later changes no projection (and no earlier entry)."""
    if table == "api_token":
        return str(get("token_id")), {
            "namespace": get("namespace"), "role": get("role"), "holder": get("holder"),
            "expires_at": get("expires_at"), "revoked": bool(get("revoked")),
            "revoked_at": get("revoked_at"), "secret": token_secret_commitment(get("token_hash")),
            # Only credentials issued to a trusted publisher carry the key: every earlier
            # token's projection stays what the log recorded.
            **({"publisher_id": issued_to} if (issued_to := _optional(get, "publisher_id")) else {})}
    if table == "plugin_version":
        return f"{plugin_key}@{get('version')}", version_values(
            id=get("id"), digest=get("digest"), image=get("image"), state=get("state"),
            tier=get("tier"), action=get("action"), decision_json=get("decision_json"),
            summary_json=get("summary_json"), document_json=get("document_json"))
    if table == "trusted_publisher":
        return str(get("publisher_id")), {
            "namespace": get("namespace"), "issuer": get("issuer"), "repository": get("repository"),
            "workflow": get("workflow"), "environment": get("environment"),
            "created_at": get("created_at"), "created_by": get("created_by")}
    if table == "namespace_setting":
        return str(get("namespace")), {"trusted_publishing_only": bool(get("trusted_publishing_only"))}
    key = str(get("id"))
    if table == "evidence":
        return key, {"version_id": get("version_id"), "kind": get("kind"), "digest": get("digest"),
                     "facts": sha256_text(get("facts_json")), "actor": get("actor"),
                     "created_at": get("created_at")}
    if table == "revocation":
        return key, {"version_id": get("version_id"), "kind": get("kind"),
                     "version": f"{get('namespace')}/{get('name')}@{get('version')}",
                     "digest": get("digest"), "reason": get("reason"), "identity": get("identity"),
                     "issuer": get("issuer"), "actor": get("actor"), "created_at": get("created_at")}
    if table == "revoked_identity":
        return key, {"identity": get("identity"), "issuer": get("issuer"), "reason": get("reason"),
                     "actor": get("actor"), "created_at": get("created_at")}
    if table == "review":
        return key, {"version_id": get("version_id"), "reviewer": get("reviewer"),
                     "verdict": get("verdict"), "note": get("note"), "digest": get("digest"),
                     "actor": get("actor"), "reviewed_at": get("reviewed_at")}
    if table == "usage_day":
        return key, {"version_id": get("version_id"), "installation_id": get("installation_id"),
                     "organization": get("organization"), "day": get("day"),
                     "digest": get("digest"), "reported_at": get("reported_at")}
    raise ValueError(f"{table} is not a tracked table")


def projection(session: Session, obj: Any) -> tuple[str, str, dict[str, Any]] | None:
    """``(table, key, values)`` of a tracked ORM row, or ``None`` for an untracked object."""
    table = getattr(type(obj), "__tablename__", None)
    if table not in TRACKED_TABLES:
        return None
    plugin_key = None
    if isinstance(obj, PluginVersion):
        with session.no_autoflush:
            plugin = session.get(Plugin, obj.plugin_id)
        plugin_key = plugin.key if plugin is not None else "?"
    key, values = _row_projection(str(table), lambda name: getattr(obj, name),
                                  plugin_key=plugin_key)
    return str(table), key, values


def rows_projection(table: str, rows: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Projections of raw rows of ``table`` (``plugin_version`` rows carry ``plugin_key``),
    keyed like the log records them. Used where the ORM models may not match the schema
    (migrations) and to read the tables as they are (:func:`current_projections`)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key, values = _row_projection(table, row.__getitem__,
                                      plugin_key=row.get("plugin_key"))
        out[key] = values
    return out


class EffectsRecorder:
    """Collects the tracked rows a session inserts, changes or deletes (ORM flushes).

    Attach it to a write transaction's session before any change; call :meth:`effects` once,
    last (it flushes first, so nothing pending escapes it).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._touched: dict[int, Any] = {}
        self.new: list[Any] = []
        self._deleted: dict[tuple[str, str], None] = {}
        event.listen(session, "before_flush", self._before_flush)

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        for obj in session.new:
            if _tracked(obj) and id(obj) not in self._touched:
                self._touched[id(obj)] = obj
                self.new.append(obj)
        for obj in session.dirty:
            if _tracked(obj):
                self._touched.setdefault(id(obj), obj)
        for obj in session.deleted:
            if _tracked(obj):
                self._touched.pop(id(obj), None)
                projected = projection(session, obj)
                if projected is not None:
                    self._deleted[(projected[0], projected[1])] = None

    def effects(self) -> dict[str, dict[str, Any]]:
        """Flush, then the projection of every tracked row touched (``None``: deleted)."""
        self.session.flush()
        out: dict[str, dict[str, Any]] = {}
        for (table, key) in self._deleted:
            out.setdefault(table, {})[key] = None
        for obj in self._touched.values():
            projected = projection(self.session, obj)
            if projected is not None:
                out.setdefault(projected[0], {})[projected[1]] = projected[2]
        return out

    def close(self) -> None:
        """Stop listening (the session may outlive the transaction)."""
        if event.contains(self.session, "before_flush", self._before_flush):
            event.remove(self.session, "before_flush", self._before_flush)


# ------------------------------------------------------------------------------------ the tree


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up a tree of ``size`` leaves, left
    to right (its compact range)."""
    keys = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def _nodes(session: Session, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    found: dict[tuple[int, int], bytes] = {}
    wanted = sorted(set(keys))
    for i in range(0, len(wanted), 200):
        chunk = wanted[i:i + 200]
        rows = session.exec(select(LogNode).where(or_(*(
            and_(col(LogNode.level) == level, col(LogNode.idx) == idx) for level, idx in chunk)))).all()
        for row in rows:
            found[(row.level, row.idx)] = bytes.fromhex(row.hash)
    missing = [k for k in wanted if k not in found]
    if missing:
        raise RuntimeError(f"the audit log's tree is missing node {missing[0]}: run "
                           "`cortex registry audit verify`")
    return found


def append_entry(session: Session, head: AuditHead, *, actor: str, action: str, target: str,
                 before_json: str | None, after_json: str | None, at: str,
                 effects: dict[str, Any] | None) -> AuditEntry:
    """Append one entry and its leaf to the log (in ``session``'s transaction; ``head`` must be
    locked). Returns the entry; its leaf index is ``entry.id - 1``."""
    seq = head.seq + 1
    prev = head.hash if head.seq else GENESIS
    effects_json = canonical(effects) if effects is not None else None
    body = entry_body(id=seq, actor=actor, action=action, target=target, before_json=before_json,
                      after_json=after_json, at=at, prev_hash=prev, effects_json=effects_json)
    entry = AuditEntry(id=seq, actor=actor, action=action, target=target,
                       before_json=before_json, after_json=after_json, at=at, prev_hash=prev,
                       hash=hashlib.sha256(body).hexdigest(), effects_json=effects_json)
    size = seq - 1
    keys = frontier_keys(size)
    found = _nodes(session, keys) if keys else {}
    _, created = append_leaf([found[k] for k in keys], size, leaf_hash(body))
    session.add(entry)
    for level, idx, value in created:
        session.add(LogNode(level=level, idx=idx, hash=value.hex()))
    head.seq = seq
    head.hash = entry.hash
    session.add(head)
    return entry


def _b64(values: Iterable[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


class TransparencyLog:
    """Read side of the log: tree head, signed checkpoints, proofs, leaves.

    Raises ValueError for sizes or indexes outside the current tree (the routes answer 422)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine)

    def tree_head(self) -> tuple[int, bytes]:
        """The current size and root hash (from the stored subtrees)."""
        with self._session() as s:
            size = s.exec(select(AuditHead.seq).where(AuditHead.id == 1)).one()
            keys = frontier_keys(size)
            found = _nodes(s, keys) if keys else {}
        return size, root_from_frontier([found[k] for k in keys])

    def checkpoint(self, signer: NoteSigner) -> str:
        """The current tree head as a signed checkpoint note (origin = the key's name)."""
        size, root = self.tree_head()
        return Checkpoint(origin=signer.name, size=size, root=root).sign(signer)

    def size(self) -> int:
        """The number of entries the log holds now."""
        with self._session() as s:
            return self._size(s)

    def _size(self, s: Session) -> int:
        return int(s.exec(select(AuditHead.seq).where(AuditHead.id == 1)).one())

    def _subtrees(self, fits: Callable[[int], bool], problem: Callable[[int], str],
                  keys: Callable[[], Sequence[tuple[int, int]]]) -> dict[tuple[int, int], bytes]:
        """The stored subtrees ``keys()`` names, read in the session that found ``fits(current
        size)`` true; raises ValueError(``problem(current size)``) otherwise."""
        with self._session() as s:
            current = self._size(s)
            if not fits(current):
                raise ValueError(problem(current))
            return _nodes(s, keys())

    def inclusion(self, index: int, size: int) -> dict[str, Any]:
        """``{"index", "size", "hashes"}``: the inclusion proof of leaf ``index`` in the tree of
        ``size`` leaves (``0 <= index < size <= current size``), hashes in base64."""
        nodes = self._subtrees(lambda current: 0 <= index < size <= current,
                               lambda current: f"leaf {index} of a tree of {size} leaves is not "
                                               f"in this log (it has {current} entries)",
                               lambda: inclusion_proof_nodes(index, size))
        proof = inclusion_proof(index, size, lambda level, i: nodes[(level, i)])
        return {"index": index, "size": size, "hashes": _b64(proof)}

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """``{"first", "second", "hashes"}``: the consistency proof between two sizes
        (``0 <= first <= second <= current size``)."""
        nodes = self._subtrees(lambda current: 0 <= first <= second <= current,
                               lambda current: f"no consistency proof from size {first} to size "
                                               f"{second} (the log has {current} entries)",
                               lambda: consistency_proof_nodes(first, second))
        return {"first": first, "second": second,
                "hashes": _b64(consistency_proof(first, second, lambda level, i: nodes[(level, i)]))}

    def leaves(self, start: int, end: int) -> dict[str, Any]:
        """``{"entries": [{"index", "leaf"}]}`` for leaves ``[start, end)`` (at most
        :data:`MAX_ENTRIES_PAGE`; fewer at the end of the log)."""
        if not 0 <= start < end or end - start > MAX_ENTRIES_PAGE:
            raise ValueError(f"ask for 1 to {MAX_ENTRIES_PAGE} entries: 0 <= start < end")
        with self._session() as s:
            rows = s.exec(select(AuditEntry).where(col(AuditEntry.id) > start,
                                                   col(AuditEntry.id) <= end)
                          .order_by(col(AuditEntry.id))).all()
        return {"entries": [{"index": e.id - 1, "leaf": _leaf_text(e)} for e in rows]}

    def version_leaves(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        """The leaves that recorded a version's publish and its revocations:
        ``{"publish": {"index", "leaf"} | null, "revocations": [...]}``; ``None`` when the
        version does not exist."""
        with self._session() as s:
            row = s.exec(select(PluginVersion.id, PluginVersion.log_index).join(
                Plugin, col(Plugin.id) == col(PluginVersion.plugin_id)).where(
                Plugin.key == f"{namespace}/{name}", PluginVersion.version == version)).first()
            if row is None:
                return None
            vid, publish_index = row
            revocations = s.exec(select(RevocationRow.log_index).where(
                RevocationRow.version_id == vid).order_by(col(RevocationRow.id))).all()
            indexes = sorted({i for i in (publish_index, *revocations) if i is not None})
            entries = {e.id - 1: e for e in s.exec(select(AuditEntry).where(
                col(AuditEntry.id).in_([i + 1 for i in indexes]))).all()} if indexes else {}

        def leaf(index: int | None) -> dict[str, Any] | None:
            e = entries.get(index) if index is not None else None
            return {"index": index, "leaf": _leaf_text(e)} if e is not None else None

        return {"publish": leaf(publish_index),
                "revocations": [x for x in (leaf(i) for i in revocations) if x is not None]}


def _leaf_text(e: AuditEntry) -> str:
    return entry_body(id=e.id, actor=e.actor, action=e.action, target=e.target,
                      before_json=e.before_json, after_json=e.after_json, at=e.at,
                      prev_hash=e.prev_hash, effects_json=e.effects_json).decode("utf-8")


# --------------------------------------------------------------------------------- verification


def current_projections(session: Session) -> dict[str, dict[str, Any]]:
    """Every tracked row as it is stored now, projected like the log records it."""
    from sqlalchemy import text

    conn = session.connection()
    out: dict[str, dict[str, Any]] = {}
    for table in TRACKED_TABLES:
        # Only constant table names from TRACKED_TABLES enter the SQL text.
        sql = ('SELECT v.*, p."key" AS plugin_key FROM plugin_version v '
               "JOIN plugin p ON p.id = v.plugin_id") if table == "plugin_version" \
            else f"SELECT * FROM {table}"  # noqa: S608
        out[table] = rows_projection(table, (r._mapping for r in conn.execute(text(sql))))
    return out


@dataclass
class AuditReport:
    """What :func:`verify_log` found. ``problems`` empty: intact (as far as it can tell)."""

    size: int
    root: bytes
    problems: list[AuditProblem] = field(default_factory=list)
    #: The size of the checkpoint the log was checked against, if one was given.
    checkpoint_size: int | None = None
    notes: list[str] = field(default_factory=list)


def _entries(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.exec(select(AuditEntry).where(col(AuditEntry.id) > last)
                            .order_by(col(AuditEntry.id)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify_log(engine: Engine, *, checkpoint: Checkpoint | None = None) -> AuditReport:
    """Check the log and the state tables from the entries alone.

    ``checkpoint`` is a checkpoint seen earlier whose signature the caller already verified
    (:func:`cortex_trust.sources.open_checkpoint`): the log must extend it (same first
    ``checkpoint.size`` leaves), which a truncated, emptied or rewritten log cannot, whatever
    was recomputed in the database.
    """
    with Session(engine) as s:
        head = s.exec(select(AuditHead).where(AuditHead.id == 1)).one()
        entries = list(_entries(s))
        problems = verify_chain(entries, head_hash=head.hash, head_seq=head.seq)
        # The tree, recomputed from the entries: every perfect subtree, and the root at each
        # size a check needs.
        frontier: list[bytes] = []
        computed: dict[tuple[int, int], bytes] = {}
        roots = {0: root_from_frontier([])}
        want_size = checkpoint.size if checkpoint is not None else None
        for size, e in enumerate(entries):
            frontier, created = append_leaf(frontier, size, leaf_hash(_leaf_text(e).encode()))
            for level, idx, value in created:
                computed[(level, idx)] = value
            if want_size == size + 1:
                roots[size + 1] = root_from_frontier(frontier)
        size = len(entries)
        root = root_from_frontier(frontier)
        stored = {(n.level, n.idx): n.hash for n in s.exec(select(LogNode)).all()}
        bad = sorted(k for k in set(stored) | set(computed)
                     if stored.get(k) != (computed[k].hex() if k in computed else None))
        if bad:
            nodes = "1 stored tree node does" if len(bad) == 1 else f"{len(bad)} stored tree nodes do"
            problems.append(AuditProblem(0, f"{nodes} not match the entries (first: level "
                                            f"{bad[0][0]}, index {bad[0][1]})"))
        report = AuditReport(size=size, root=root, problems=problems)
        if checkpoint is not None:
            report.checkpoint_size = checkpoint.size
            if checkpoint.size > size:
                problems.append(AuditProblem(size, (
                    f"the log has {size} entries but a checkpoint of {checkpoint.size} entries "
                    "was seen earlier: entries were removed (truncated or rebuilt log)")))
            elif roots.get(checkpoint.size) != checkpoint.root:
                problems.append(AuditProblem(checkpoint.size, (
                    f"the first {checkpoint.size} entries do not match the checkpoint seen "
                    "earlier: the history was rewritten")))
            else:
                # The same answer through a proof, as a client would get it.
                proof = consistency_proof(checkpoint.size, size,
                                          lambda level, i: computed[(level, i)])
                try:
                    verify_consistency(first=checkpoint.size, second=size,
                                       first_root=checkpoint.root, second_root=root, proof=proof)
                except ProofError as e:  # pragma: no cover - would be a bug in the tree code
                    problems.append(AuditProblem(size, f"consistency proof failed: {e.message}"))
        state: ReplayedState = replay(entries)
        problems.extend(compare_state(state, current_projections(s)))
        if state.entries_with_effects < size:
            early = size - state.entries_with_effects
            report.notes.append(("1 entry predates" if early == 1 else f"{early} entries predate")
                                + " recorded effects; the state they left was recorded as it stood "
                                "when the log became a transparency log (log.baseline entries)")
    return report

