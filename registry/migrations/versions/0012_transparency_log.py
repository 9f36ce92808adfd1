"""The audit log becomes a transparency log: a Merkle tree over its entries, and effects.

``log_node`` stores the perfect subtrees of the RFC 9162 Merkle tree whose leaves are the audit
entries (leaf index = entry id - 1); it is filled here for every existing entry. Entries gain
``effects_json``: what each write left in the tracked state tables (see registry._audit), so
``cortex registry audit verify`` can replay the log against the tables. Versions and revocations
gain ``log_index``: the leaf that recorded them, which clients ask inclusion proofs for.

Entries written before this revision recorded no effects. So that the replay covers the rows
they wrote, this migration appends ``log.baseline`` entries recording every tracked row as it
stands now (one entry per token, one per version with its evidence, reviews, usage and
revocations, one for the rest); a version's and its revocations' ``log_index`` is then its
baseline entry. Nothing is appended to an empty registry. Whatever was wrong before this
revision (rows edited behind the old log's back) is taken as it stands: the transparency log
vouches for what happens from here on.

The hashing is the format's (RFC 9162 leaves over the canonical entry body), imported from the
code that defines it: it must never change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 16:00:00
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_TRACKED = ("api_token", "plugin_version", "evidence", "revocation", "revoked_identity",
            "review", "usage_day")
_BY_VERSION = ("evidence", "revocation", "review", "usage_day")


def upgrade() -> None:
    op.create_table(
        'log_node',
        sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('level', 'idx'),
    )
    op.add_column('audit_log', sa.Column('effects_json', sa.Text(), nullable=True))
    op.add_column('plugin_version', sa.Column('log_index', sa.Integer(), nullable=True))
    op.add_column('revocation', sa.Column('log_index', sa.Integer(), nullable=True))
    _build(op.get_bind())


def _build(conn: Any) -> None:
    import hashlib

    from cortex_trust.sources import append_leaf, leaf_hash
    from registry._audit import GENESIS, canonical, entry_body
    from registry._tlog import rows_projection

    frontier: list[bytes] = []
    nodes: list[dict[str, Any]] = []
    size = 0

    def add_leaf(body: bytes) -> None:
        nonlocal frontier, size
        frontier, created = append_leaf(frontier, size, leaf_hash(body))
        nodes.extend({"level": lv, "idx": i, "hash": h.hex()} for lv, i, h in created)
        size += 1

    for e in conn.execute(sa.text(
            "SELECT id, actor, action, target, before_json, after_json, at, prev_hash "
            "FROM audit_log ORDER BY id")).mappings():
        add_leaf(entry_body(id=e["id"], actor=e["actor"], action=e["action"],
                            target=e["target"], before_json=e["before_json"],
                            after_json=e["after_json"], at=e["at"], prev_hash=e["prev_hash"]))

    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for table in _TRACKED:
        sql = ('SELECT v.*, p."key" AS plugin_key FROM plugin_version v JOIN plugin p '
               "ON p.id = v.plugin_id ORDER BY v.id") if table == "plugin_version" \
            else f"SELECT * FROM {table} ORDER BY id"  # noqa: S608 - constant table names
        tables[table] = rows_projection(table, conn.execute(sa.text(sql)).mappings())

    groups: list[tuple[str, dict[str, Any], int | None]] = []
    for key, values in tables["api_token"].items():
        groups.append((f"token:{key}", {"api_token": {key: values}}, None))
    placed: set[tuple[str, str]] = set()
    for key, values in tables["plugin_version"].items():
        effects: dict[str, Any] = {"plugin_version": {key: values}}
        for table in _BY_VERSION:
            rows = {k: v for k, v in tables[table].items() if v["version_id"] == values["id"]}
            if rows:
                effects[table] = rows
                placed.update((table, k) for k in rows)
        groups.append((key, effects, values["id"]))
    rest: dict[str, Any] = {}
    for table in (*_BY_VERSION, "revoked_identity"):
        rows = {k: v for k, v in tables[table].items() if (table, k) not in placed}
        if rows:
            rest[table] = rows
    if rest:
        groups.append(("*", rest, None))

    seq, prev = conn.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    prev = prev if seq else GENESIS
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries: list[dict[str, Any]] = []
    version_index: list[dict[str, Any]] = []
    for target, effects, version_id in groups:
        seq += 1
        effects_json = canonical(effects)
        body = entry_body(id=seq, actor="migration", action="log.baseline", target=target[:512],
                          before_json=None, after_json=None, at=at, prev_hash=prev,
                          effects_json=effects_json)
        h = hashlib.sha256(body).hexdigest()
        entries.append({"id": seq, "actor": "migration", "action": "log.baseline",
                        "target": target[:512], "before_json": None, "after_json": None,
                        "at": at, "prev_hash": prev, "hash": h, "effects_json": effects_json})
        if version_id is not None:
            version_index.append({"v": version_id, "i": size})
        add_leaf(body)
        prev = h

    audit_log = sa.table('audit_log', *(sa.column(c) for c in (
        'id', 'actor', 'action', 'target', 'before_json', 'after_json', 'at', 'prev_hash',
        'hash', 'effects_json')))
    log_node = sa.table('log_node', sa.column('level'), sa.column('idx'), sa.column('hash'))
    if entries:
        conn.execute(audit_log.insert(), entries)
        conn.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                     {"seq": seq, "hash": prev})
    if nodes:
        conn.execute(log_node.insert(), nodes)
    if version_index:
        conn.execute(sa.text("UPDATE plugin_version SET log_index = :i WHERE id = :v"),
                     version_index)
        conn.execute(sa.text("UPDATE revocation SET log_index = :i WHERE version_id = :v"),
                     version_index)


def downgrade() -> None:
    # Entries appended from this revision on carry effects in their hash: an older registry
    # cannot check them (downgrading a transparency log rewrites history; restore a backup).
    op.drop_column('revocation', 'log_index')
    op.drop_column('plugin_version', 'log_index')
    op.drop_column('audit_log', 'effects_json')
    op.drop_table('log_node')
