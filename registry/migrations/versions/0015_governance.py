"""Governance: promotion pull requests, disputes, processed webhook deliveries.

``promotion`` holds one row per version (its promotion pull request on the registry repository
and what GitHub last reported about it), ``dispute`` one row per GitHub issue disputing a plugin
or a version, ``webhook_delivery`` the ids of processed GitHub deliveries (a replay is ignored).

Revision ID: governance
Revises: web_catalogue_sorts
Create Date: 2026-11-28 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'governance'
down_revision = 'web_catalogue_sorts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'promotion',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=71), nullable=False),
        sa.Column('repository', sa.String(length=140), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=300), nullable=False),
        sa.Column('branch', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('merged', sa.Boolean(), nullable=False),
        sa.Column('merge_commit', sa.String(length=40), nullable=True),
        sa.Column('merged_at', sa.String(length=32), nullable=True),
        sa.Column('head_sha', sa.String(length=40), nullable=True),
        sa.Column('head_digest', sa.String(length=71), nullable=True),
        sa.Column('reviews_json', sa.Text(), nullable=False),
        sa.Column('requested_by', sa.String(length=128), nullable=False),
        sa.Column('opened_at', sa.String(length=32), nullable=False),
        sa.Column('checked_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version_id'),
    )
    op.create_index('ix_promotion_number', 'promotion', ['number'])
    op.create_table(
        'dispute',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plugin_id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=True),
        sa.Column('repository', sa.String(length=140), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=300), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('labels_json', sa.Text(), nullable=False),
        sa.Column('opened_at', sa.String(length=32), nullable=False),
        sa.Column('closed_at', sa.String(length=32), nullable=True),
        sa.Column('recorded_by', sa.String(length=128), nullable=False),
        sa.Column('checked_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['plugin_id'], ['plugin.id']),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repository', 'number', name='uq_dispute_issue'),
    )
    op.create_index('ix_dispute_plugin_id', 'dispute', ['plugin_id'])
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.String(length=64), nullable=False),
        sa.Column('event', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('delivery_id'),
    )


def downgrade() -> None:
    op.drop_table('webhook_delivery')
    op.drop_index('ix_dispute_plugin_id', table_name='dispute')
    op.drop_table('dispute')
    op.drop_index('ix_promotion_number', table_name='promotion')
    op.drop_table('promotion')
