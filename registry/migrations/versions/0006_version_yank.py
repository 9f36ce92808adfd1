"""Yanking a version: why, when and by whom.

``plugin_version.state`` already allowed ``yanked``; these columns record the yank that put a
version there (``POST .../versions/{version}/yank``) and are cleared by an unyank (the audit log
keeps every yank and unyank). All nullable: no existing version was ever yanked.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plugin_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('yanked_reason', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('yanked_at', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('yanked_by', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('plugin_version', schema=None) as batch_op:
        batch_op.drop_column('yanked_by')
        batch_op.drop_column('yanked_at')
        batch_op.drop_column('yanked_reason')
