"""The governance pieces of the policy input, read from stored rows for a batch of versions.

A version's promotion piece comes from its :class:`~registry._models.Promotion` row, only when
that row is about the version's digest; its disputes piece lists the open disputes of the
version and of its whole plugin. Both are JSON documents validated with the rest of the input
(:func:`registry._reevaluate.stored_input`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as columns
from sqlmodel import col

from .._models import Dispute, PluginVersion, Promotion

__all__ = ["dispute_record", "governance_facts", "promotion_piece"]


def _compact(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def promotion_piece(row: Any, *, source: str) -> dict[str, Any]:
    """``evidence.promotion`` (as a JSON-ready dict) from a stored promotion (a
    :class:`Promotion` or a SQL row of its columns)."""
    return {"present": True, "url": row.url, "number": row.number, "repository": row.repository,
            "state": row.state, "merged": row.merged, "merge_commit": row.merge_commit,
            "merged_at": row.merged_at, "head_sha": row.head_sha, "head_digest": row.head_digest,
            "reviews": json.loads(row.reviews_json), "opened_at": row.opened_at,
            "digest": row.digest, "source": source}


def dispute_record(row: Any, version: str | None) -> dict[str, Any]:
    """One ``evidence.disputes.disputes[]`` record (also an item of the disputes list)."""
    return {"url": row.url, "number": row.number, "state": row.state,
            "labels": json.loads(row.labels_json), "opened_at": row.opened_at,
            "closed_at": row.closed_at, "version": version}


class _Row(dict[str, Any]):
    """A SQL row's values by column name, read as attributes."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def governance_facts(s: Any, where: Callable[[Any], Any], digests: dict[int, str], *,
                     source: str) -> dict[int, dict[str, str]]:
    """Version id -> ``{"promotion": JSON, "disputes": JSON}`` for the versions ``where(column)``
    selects (by a version-id column), in two queries. A promotion about another digest than the
    version's is left out; only open disputes are listed."""
    # Columns, not entities: ``s`` may be a plain connection (re-tiering).
    pt = Promotion.__table__  # type: ignore[attr-defined]
    dt = Dispute.__table__  # type: ignore[attr-defined]
    out: dict[int, dict[str, str]] = {}
    for row in s.execute(columns(pt).where(where(pt.c.version_id))).all():
        if digests.get(row.version_id) == row.digest:
            out.setdefault(row.version_id, {})["promotion"] = _compact(promotion_piece(row, source=source))
    vid_col = col(PluginVersion.id)
    open_by_version: dict[int, list[dict[str, Any]]] = {}
    for vid, version, *values in s.execute(
            columns(vid_col, col(PluginVersion.version), *dt.c)
            .join(dt, dt.c.plugin_id == col(PluginVersion.plugin_id))
            .where(where(vid_col), dt.c.state == "open",
                   or_(dt.c.version_id.is_(None), dt.c.version_id == vid_col))
            .order_by(vid_col, dt.c.number)).all():
        row = _Row(zip(dt.c.keys(), values, strict=True))
        if vid in digests:
            disputed = version if row.version_id is not None else None
            open_by_version.setdefault(vid, []).append(dispute_record(row, disputed))
    for vid, records in open_by_version.items():
        out.setdefault(vid, {})["disputes"] = _compact(
            {"present": True, "disputes": records[:100], "source": source})
    return out
