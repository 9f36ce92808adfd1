"""Decision receipts: every decision the registry makes, as the signed receipt it issued.

``decision_receipt`` holds one row per decision about a version (publish, each re-evaluation,
re-tiering): when it was made and the receipt's DSSE envelope. Rows are only ever added.

Revision ID: decision_receipts
Revises: governance
Create Date: 2026-12-03 19:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'decision_receipts'
down_revision = 'governance'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'decision_receipt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('decided_at', sa.String(length=32), nullable=False),
        sa.Column('envelope_json', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_decision_receipt_version_id', 'decision_receipt', ['version_id'])


def downgrade() -> None:
    op.drop_index('ix_decision_receipt_version_id', table_name='decision_receipt')
    op.drop_table('decision_receipt')
