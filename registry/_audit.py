"""The hash-chained, append-only audit log.

Each entry's ``hash`` is SHA-256 over the canonical JSON of the entry (id, actor, action, target,
before, after, at) together with ``prev_hash``, the previous entry's hash (``GENESIS`` for the
first). The ``audit_head`` row holds the hash of the last entry, so deleting the newest entry
is detected as well as editing or deleting any other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["GENESIS", "AuditProblem", "canonical", "entry_hash", "verify_chain"]

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, UTF-8 kept (used for hashing)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(*, id: int, actor: str, action: str, target: str, before_json: str | None,
               after_json: str | None, at: str, prev_hash: str) -> str:
    """The hash of one entry, chained to ``prev_hash``."""
    body = canonical({"id": id, "actor": actor, "action": action, "target": target,
                      "before": before_json, "after": after_json, "at": at,
                      "prev_hash": prev_hash})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    """One break in the chain: which entry id, and what is wrong."""

    entry_id: int
    problem: str


def verify_chain(entries: Iterable[Any], *, head_hash: str, head_seq: int) -> list[AuditProblem]:
    """Check the chain in id order; return every problem found (empty: intact).

    ``entries`` are rows with the :class:`~registry._models.AuditEntry` fields, in id order.
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
                       prev_hash=e.prev_hash)
        if h != e.hash:
            problems.append(AuditProblem(e.id, "entry content does not match its hash (edited)"))
        prev = e.hash
        expected_id = e.id + 1
        last_id = e.id
    if last_id != head_seq or prev != head_hash:
        problems.append(AuditProblem(last_id, f"the chain ends at entry {last_id} but the head "
                                              f"records entry {head_seq} (entries deleted)"))
    return problems
