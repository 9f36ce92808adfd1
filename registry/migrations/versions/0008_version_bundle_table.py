"""The Sigstore bundle of a version moves to its own table.

A bundle (~10 KB) is written once, at publish, and only read when an installer downloads it;
kept in ``plugin_version`` it made every rewrite of a version row (re-tiering the catalogue
rewrites every one) copy it again on SQLite, which rewrites whole rows: about half of the row.
``version_bundle`` holds it keyed by the version id; the column is dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 03:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'version_bundle',
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('bundle_json', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('version_id'),
    )
    op.execute('INSERT INTO version_bundle (version_id, bundle_json) '
               'SELECT id, bundle_json FROM plugin_version')
    # A plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): a batch "move and copy" of the table
    # would drop plugin_version while evidence and bundle rows still reference it.
    op.execute('ALTER TABLE plugin_version DROP COLUMN bundle_json')


def downgrade() -> None:
    op.execute("ALTER TABLE plugin_version ADD COLUMN bundle_json TEXT NOT NULL DEFAULT ''")
    op.execute('UPDATE plugin_version SET bundle_json = (SELECT b.bundle_json FROM version_bundle b '
               'WHERE b.version_id = plugin_version.id)')
    op.drop_table('version_bundle')
