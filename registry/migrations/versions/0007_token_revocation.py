"""Token revocation and last use: when, why and by whom a token was revoked, and when it last
authenticated (``cortex registry token list`` / ``token revoke``).

The existing ``revoked`` flag stays the one the authentication path checks; these columns only
explain it. All are nullable: existing tokens were never revoked and never recorded a use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 01:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('revoked_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('revoked_reason')
        batch_op.drop_column('revoked_at')
