"""Widen the actor columns to 128 characters.

An actor is ``role:namespace:token_id``: with a namespace of up to 64 characters that is up to
94 characters, which PostgreSQL refused in the 64-character columns (every write by such a
namespace failed). SQLite never enforced the length.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:35:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_COLUMNS = (("audit_log", "actor"), ("evidence", "actor"), ("revocation", "actor"),
            ("plugin_version", "published_by"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=64),
                                  type_=sa.String(length=128), existing_nullable=False)


def downgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=128),
                                  type_=sa.String(length=64), existing_nullable=False)
