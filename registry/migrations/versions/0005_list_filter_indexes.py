"""Index the list filters together with the page order.

``GET /api/v1/plugins?tier=...`` and ``?namespace=...`` page by ``key``. With single-column
indexes the database fetched every plugin of the tier (or namespace) and sorted them for each
page: a page cost grew with the catalogue. ``(tier, key)`` and ``(namespace, key)`` give the
rows of a filter already in page order, so a page reads ``limit`` rows at any size;
``(namespace, tier, key)`` does the same for both filters at once. They also serve every lookup
the single-column indexes served, which are dropped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:40:00
"""
from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plugin', schema=None) as batch_op:
        batch_op.create_index('ix_plugin_namespace_key', ['namespace', 'key'], unique=False)
        batch_op.create_index('ix_plugin_tier_key', ['tier', 'key'], unique=False)
        batch_op.create_index('ix_plugin_namespace_tier_key', ['namespace', 'tier', 'key'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_plugin_namespace'))
        batch_op.drop_index(batch_op.f('ix_plugin_tier'))


def downgrade() -> None:
    with op.batch_alter_table('plugin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugin_tier'), ['tier'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugin_namespace'), ['namespace'], unique=False)
        batch_op.drop_index('ix_plugin_namespace_tier_key')
        batch_op.drop_index('ix_plugin_tier_key')
        batch_op.drop_index('ix_plugin_namespace_key')
