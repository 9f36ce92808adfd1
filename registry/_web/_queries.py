"""The few reads only the pages need, as fixed SQL over the read path (:mod:`registry._reads`).

Each statement is one autocommit statement that walks a primary key or a unique index in page
order, bounded by ``LIMIT``; no value ever enters the SQL text. Everything else the pages show
comes from the stored read documents (:mod:`registry._store._reads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._store import Store
from .._store._tx import db_unavailable

__all__ = ["AUDIT_PAGE", "audit_entries", "audit_head", "inactive_versions", "latest_documents",
           "revocations_newest_first"]

#: Entries per page of ``/audit``.
AUDIT_PAGE = 50


def _rows(store: Store, sql: str, params: Sequence[Any]) -> list[Any]:
    reader = store.reader
    text = sql if reader.placeholder == "?" else sql.replace("?", "%s")
    with db_unavailable():
        return reader.rows(text, params)


def latest_documents(store: Store, keys: Sequence[str]) -> dict[str, str]:
    """``key -> document_json`` of the latest version of each plugin in ``keys`` (one
    statement: unique-key look-ups of the plugins and of ``(plugin, version)``)."""
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    sql = ('SELECT p."key", v.document_json FROM plugin p JOIN plugin_version v '  # noqa: S608
           f'ON v.plugin_id = p.id AND v.version = p.latest_version WHERE p."key" IN ({marks})')
    return {str(k): str(d) for k, d in _rows(store, sql, list(keys))}


def inactive_versions(store: Store, key: str) -> tuple[tuple[str, ...], ...]:
    """``(version, state, reason, since)`` of every yanked or revoked version of the plugin
    ``key``: what the version list shows beside each state."""
    sql = ("SELECT v.version, v.state, v.yanked_reason, v.yanked_at, v.revoked_reason, v.revoked_at "
           'FROM plugin p JOIN plugin_version v ON v.plugin_id = p.id WHERE p."key" = ? AND v.state <> ?')
    return tuple((str(r[0]), str(r[1]), str(r[2] if r[1] == "yanked" else r[4] or ""),
                  str(r[3] if r[1] == "yanked" else r[5] or ""))
                 for r in _rows(store, sql, (key, "active")))


def revocations_newest_first(store: Store, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Revocation entries with ids below ``before`` (all when None), newest first."""
    sql = ("SELECT id, kind, namespace, name, version, digest, reason, identity, issuer, created_at "
           "FROM revocation WHERE id < ? ORDER BY id DESC LIMIT ?")
    rows = _rows(store, sql, (before if before is not None else 2**31 - 1, limit))
    return [{"cursor": r[0], "kind": r[1], "namespace": r[2], "name": r[3], "version": r[4],
             "digest": r[5], "reason": r[6], "identity": r[7], "issuer": r[8], "revoked_at": r[9]}
            for r in rows]


def audit_head(store: Store) -> tuple[int, str]:
    """The audit log's head: the last entry's id and hash (``(0, "")`` for an empty log)."""
    rows = _rows(store, "SELECT seq, hash FROM audit_head ORDER BY id LIMIT 1", ())
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")


def audit_entries(store: Store, *, plugin: str | None, before: int | None,
                  limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
    """Public audit entries below ``before``, newest first: id, time, action, target, hash and
    the role that acted. Token entries (operator data) are never listed; ``plugin``
    (``namespace/name``) keeps the entries about its versions."""
    # Patterns are parameters: a literal % would be a placeholder to psycopg.
    params: list[Any] = [before if before is not None else 2**63 - 1, "token.%"]
    where = "id < ? AND action NOT LIKE ?"
    if plugin is not None:
        # ``plugin`` is a validated ``slug/slug`` (no LIKE wildcards in it).
        where += " AND target LIKE ?"
        params.append(plugin + "@%")
    params.append(limit)
    sql = f"SELECT id, at, action, target, hash, actor FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
    return [{"id": r[0], "at": r[1], "action": r[2], "target": r[3], "hash": r[4],
             "role": str(r[5]).split(":", 1)[0]} for r in _rows(store, sql, params)]
