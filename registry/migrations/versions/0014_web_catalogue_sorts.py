"""The catalogue's sorts and filters as plugin columns, each walked through its index.

The web catalogue sorts plugins by name, by the most recent publish and by use, and filters them
by the state of their latest version and by what it asks for (network, host files). Those are
facts of versions and usage rows, so a page would have to read and sort every plugin. The plugin
row now keeps them (written by every write that changes the plugin's versions):
``latest_published_at``, ``usage_count`` (installations that reported production use of any of
its versions), ``latest_state``, ``asks_network`` and ``asks_filesystem``; each is indexed with
``key`` after it, and each filter also with each sort column and ``key`` after it, so a page of
a sort, a filter or a filter in a sort reads its rows in page order (the sorts, largest first,
walk their index backwards). Existing plugins are filled in from their versions
here.

Revision ID: web_catalogue_sorts
Revises: trusted_publishing
Create Date: 2026-12-03 16:40:00
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = 'web_catalogue_sorts'
down_revision = 'trusted_publishing'
branch_labels = None
depends_on = None


#: The new indexes: each filter or sort column, then ``key`` (the page order).
_INDEXES = {'ix_plugin_published_key': 'latest_published_at', 'ix_plugin_usage_key': 'usage_count',
            'ix_plugin_state_key': 'latest_state', 'ix_plugin_network_key': 'asks_network',
            'ix_plugin_filesystem_key': 'asks_filesystem'}
#: Each filter in each order of the sorts: ``(filter column, sort column, key)``.
_FILTERED = {f'ix_plugin_{f}_{s}': (column, order)
             for f, column in (('tier', 'tier'), ('namespace', 'namespace'), ('state', 'latest_state'),
                               ('network', 'asks_network'), ('filesystem', 'asks_filesystem'))
             for s, order in (('published', 'latest_published_at'), ('usage', 'usage_count'))}


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD/DROP COLUMN on both databases (a batch would copy the plugin
    # table, which the versions' foreign keys refer to).
    op.add_column('plugin', sa.Column('latest_published_at', sa.String(length=32), nullable=False,
                                      server_default=''))
    op.add_column('plugin', sa.Column('usage_count', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('plugin', sa.Column('latest_state', sa.String(length=16), nullable=True))
    op.add_column('plugin', sa.Column('asks_network', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('plugin', sa.Column('asks_filesystem', sa.Boolean(), nullable=False, server_default=sa.false()))
    _fill(op.get_bind())
    for name, column in _INDEXES.items():
        op.create_index(name, 'plugin', [column, 'key'], unique=False)
    for name, (column, order) in _FILTERED.items():
        op.create_index(name, 'plugin', [column, order, 'key'], unique=False)


def _fill(conn: Any) -> None:
    published = dict(conn.execute(sa.text(
        "SELECT plugin_id, MAX(published_at) FROM plugin_version GROUP BY plugin_id")).all())
    used = dict(conn.execute(sa.text(
        "SELECT v.plugin_id, COUNT(DISTINCT u.installation_id) FROM usage_day u "
        "JOIN plugin_version v ON v.id = u.version_id GROUP BY v.plugin_id")).all())
    latest = {pid: (state, doc) for pid, state, doc in conn.execute(sa.text(
        "SELECT p.id, v.state, v.document_json FROM plugin p JOIN plugin_version v "
        "ON v.plugin_id = p.id AND v.version = p.latest_version")).all()}
    rows = []
    for (pid,) in conn.execute(sa.text("SELECT id FROM plugin")).all():
        state, doc = latest.get(pid, (None, "{}"))
        trust = (json.loads(doc).get("manifest") or {}).get("trust") or {}
        rows.append({"b_id": pid, "published": published.get(pid) or "", "used": int(used.get(pid) or 0),
                     "state": state, "network": bool(trust.get("network")),
                     "filesystem": bool(trust.get("filesystem"))})
    if rows:
        conn.execute(sa.text("UPDATE plugin SET latest_published_at = :published, usage_count = :used, "
                             "latest_state = :state, asks_network = :network, asks_filesystem = :filesystem "
                             "WHERE id = :b_id"), rows)


def downgrade() -> None:
    for name in _FILTERED:
        op.drop_index(name, table_name='plugin')
    for name, column in reversed(_INDEXES.items()):
        op.drop_index(name, table_name='plugin')
        op.drop_column('plugin', column)
