"""The audit log: hash-chained entries that are the leaves of a transparency log.

Each entry's *body* is the canonical JSON of (id, actor, action, target, before, after, at,
prev_hash, and ``effects`` when recorded). ``hash`` is SHA-256 of the body and ``prev_hash`` the
previous entry's hash (``GENESIS`` for the first), so the entries form a chain whose end the
``audit_head`` row pins. The body's UTF-8 bytes are also the entry's leaf in an RFC 9162
Merkle tree (leaf index = id - 1, see :mod:`registry._tlog`): a signed checkpoint of that tree,
kept by anyone outside the database, pins every entry up to its size, so a truncated, emptied or
rewritten log no longer passes for intact even when the chain and the head were recomputed.

``effects`` is what the write transaction left in the state tables that matter, recorded by the
store, not by the caller: for each tracked table (:data:`TRACKED_TABLES`), the projection of
every row the transaction inserted or changed (``null`` for a deleted row), keyed by the row's
key. :func:`replay` folds the effects of every entry in order into the state the log vouches
for; :func:`compare_state` lists every difference with the tables as they are (a token turned
admin, a version's tier edited, a revocation deleted, a row inserted without an entry).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cortex_trust._json import canonical_json as canonical
from cortex_trust._text import clip

__all__ = [
    "GENESIS",
    "TRACKED_TABLES",
    "AuditProblem",
    "ReplayedState",
    "canonical",
    "compare_state",
    "entry_body",
    "entry_hash",
    "replay",
    "sha256_text",
    "verify_chain",
]

GENESIS = "0" * 64

#: The state tables whose rows the log vouches for, and what each row's key is.
TRACKED_TABLES = ("api_token", "plugin_version", "evidence", "revocation", "revoked_identity",
                  "review", "usage_day", "trusted_publisher", "namespace_setting")


def sha256_text(text: str) -> str:
    """SHA-256 (hex) of ``text`` as UTF-8: how large columns appear in effects."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_body(*, id: int, actor: str, action: str, target: str, before_json: str | None,
               after_json: str | None, at: str, prev_hash: str,
               effects_json: str | None = None) -> bytes:
    """The canonical bytes of one entry: what its hash covers and its Merkle leaf.

    ``effects`` is part of the body only when recorded (entries written before effects
    existed keep their original hash)."""
    body: dict[str, Any] = {"id": id, "actor": actor, "action": action, "target": target,
                            "before": before_json, "after": after_json, "at": at,
                            "prev_hash": prev_hash}
    if effects_json is not None:
        body["effects"] = effects_json
    return canonical(body).encode("utf-8")


def entry_hash(*, id: int, actor: str, action: str, target: str, before_json: str | None,
               after_json: str | None, at: str, prev_hash: str,
               effects_json: str | None = None) -> str:
    """The hash of one entry, chained to ``prev_hash``."""
    return hashlib.sha256(entry_body(
        id=id, actor=actor, action=action, target=target, before_json=before_json,
        after_json=after_json, at=at, prev_hash=prev_hash, effects_json=effects_json)).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    """One problem found: which entry id (0 when it is about a state row), and what is wrong."""

    entry_id: int
    problem: str


def verify_chain(entries: Iterable[Any], *, head_hash: str, head_seq: int) -> list[AuditProblem]:
    """Check the chain in id order; return every problem found (empty: intact).

    ``entries`` are rows with the :class:`~registry._models.AuditEntry` fields, in id order.
    The chain alone cannot tell a log cut short (or rebuilt) together with its head from an
    intact one: that takes a checkpoint seen earlier (:mod:`registry._tlog`).
    """
    problems: list[AuditProblem] = []
    prev = GENESIS
    expected_id = 1
    last_id = 0
    for e in entries:
        if e.id != expected_id:
            problems.append(AuditProblem(e.id, f"expected entry {expected_id}: entries missing"))
        if e.prev_hash != prev:
            problems.append(AuditProblem(e.id, "prev_hash does not match the previous entry"))
        h = entry_hash(id=e.id, actor=e.actor, action=e.action, target=e.target,
                       before_json=e.before_json, after_json=e.after_json, at=e.at,
                       prev_hash=e.prev_hash, effects_json=getattr(e, "effects_json", None))
        if h != e.hash:
            problems.append(AuditProblem(e.id, "entry content does not match its hash (edited)"))
        prev = e.hash
        expected_id = e.id + 1
        last_id = e.id
    if last_id != head_seq or prev != head_hash:
        problems.append(AuditProblem(last_id, f"the chain ends at entry {last_id} but the head "
                                              f"records entry {head_seq} (entries deleted)"))
    return problems


# -------------------------------------------------------------------------------------- replay


@dataclass
class ReplayedState:
    """What the log vouches for: per tracked table, each row's key → its projection (``None``
    for a row the log says was deleted). ``unreadable`` lists entries whose effects were not
    valid JSON objects (reported as problems)."""

    tables: dict[str, dict[str, Any]] = field(default_factory=lambda: {t: {} for t in TRACKED_TABLES})
    entries_with_effects: int = 0
    unreadable: list[int] = field(default_factory=list)


def replay(entries: Iterable[Any], state: ReplayedState | None = None) -> ReplayedState:
    """Fold the ``effects`` of ``entries`` (in id order) into a :class:`ReplayedState`; later
    entries win. Entries without effects (written before effects existed) change nothing: the
    migration that introduced them recorded every row as it stood then (``log.baseline``)."""
    state = state or ReplayedState()
    for e in entries:
        raw = getattr(e, "effects_json", None)
        if raw is None:
            continue
        try:
            effects = json.loads(raw)
        except ValueError:
            effects = None
        if not isinstance(effects, dict):
            state.unreadable.append(e.id)
            continue
        if not all(isinstance(rows, dict) and all(v is None or isinstance(v, dict)
                                                  for v in rows.values())
                   for rows in effects.values()):
            state.unreadable.append(e.id)
            continue
        state.entries_with_effects += 1
        for table, rows in effects.items():
            current = state.tables.get(table)
            if current is None:
                continue
            for key, values in rows.items():
                # A row's fields merge over what earlier entries said (a write that changes
                # some fields may record only those); null deletes it.
                before = current.get(key)
                current[key] = values if values is None or before is None else {**before, **values}
    return state


def compare_state(state: ReplayedState, current: Mapping[str, Mapping[str, Any]]) -> list[AuditProblem]:
    """Every difference between the replayed state and ``current`` (per tracked table, each
    row's key → its projection as stored now). Empty: the tables are what the log says."""
    problems = [AuditProblem(i, "the entry's effects are not an object of tables of rows "
                                "(edited)") for i in state.unreadable]
    for table in TRACKED_TABLES:
        logged = state.tables.get(table, {})
        now = current.get(table, {})
        for key in sorted(set(logged) | set(now)):
            want, have = logged.get(key), now.get(key)
            if want == have:
                continue
            what = f"{table} {key}"
            if want is None:
                problems.append(AuditProblem(0, f"{what} is in the database but no audit entry "
                                                "wrote it (inserted or restored outside the "
                                                "registry)"))
            elif have is None:
                problems.append(AuditProblem(0, f"{what} was written by the log but is missing "
                                                "from the database (deleted outside the "
                                                "registry)"))
            else:
                fields = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
                shown = ", ".join(f"{k}: logged {_short(want.get(k))}, stored {_short(have.get(k))}"
                                  for k in fields)
                problems.append(AuditProblem(0, f"{what} differs from the log ({shown})"))
    return problems


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return clip(text, 80)
