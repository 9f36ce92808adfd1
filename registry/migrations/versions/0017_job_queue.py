"""The job queue: re-tier runs decided by batch jobs, and procrastinate's schema on PostgreSQL.

``retier_run`` holds one row per re-tier run (its policy, state and progress), ``retier_result``
the decisions its batches staged (applied to ``plugin_version`` in one write at the end). On
PostgreSQL, procrastinate's own schema (pinned to procrastinate 3.10.0) is created in a schema of
its own, ``procrastinate``, so that it never mixes with the registry's tables; its job workers
connect with ``search_path=procrastinate``. An upgrade of procrastinate that changes its schema
comes with a migration of its own here.

Revision ID: job_queue
Revises: governance
Create Date: 2026-12-03 19:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'job_queue'
down_revision = 'decision_receipts'
branch_labels = None
depends_on = None

#: The PostgreSQL schema that holds procrastinate's tables, types and functions.
SCHEMA = "procrastinate"


def upgrade() -> None:
    op.create_table(
        'retier_run',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('policy_json', sa.Text(), nullable=False),
        sa.Column('policy_revision', sa.String(length=128), nullable=False),
        sa.Column('registry_name', sa.String(length=128), nullable=False),
        sa.Column('decided_at', sa.String(length=32), nullable=False),
        sa.Column('start_seq', sa.Integer(), nullable=False),
        sa.Column('max_version_id', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('batches', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('result_json', sa.Text(), nullable=True),
        sa.Column('error', sa.String(length=2000), nullable=True),
        sa.Column('created_at', sa.String(length=32), nullable=False),
        sa.Column('updated_at', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'retier_result',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('version_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('tier', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('policy_revision', sa.String(length=128), nullable=False),
        sa.Column('failed', sa.Boolean(), nullable=False),
        sa.Column('decision_json', sa.Text(), nullable=False),
        sa.Column('summary_json', sa.Text(), nullable=False),
        sa.Column('document_json', sa.Text(), nullable=False),
        sa.Column('receipt', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['retier_run.id']),
        sa.PrimaryKeyConstraint('run_id', 'version_id'),
    )
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        # procrastinate's SQL names its objects without a schema: create them in ours, then put
        # the migration's search path back.
        op.execute(f"SELECT set_config('search_path', '{SCHEMA}', true)")
        # On psycopg itself, without parameters: the SQL runs as written (its ``%`` and ``:``
        # too), in the migration's transaction.
        driver = op.get_bind().connection.driver_connection
        assert driver is not None
        driver.execute(SchemaManager.get_schema())
        op.execute("SELECT set_config('search_path', 'public', true)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    op.drop_table('retier_result')
    op.drop_table('retier_run')
