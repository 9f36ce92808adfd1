"""The catalogue's plugin and version pages, stored as rendered fragments beside their documents.

``plugin_version.page_html`` holds a version's own part of its pages (everything its document
decides), ``plugin.page_html`` the part every page of the plugin shares (its description and its
versions with their states); ``retier_result.page_html`` the version part a re-tier run staged.
Every write that renders the read documents renders these in the same transaction. The columns
are nullable and left empty here: a page whose fragments are still empty (rows written before
this revision) is rendered on its first read and stored then, only while they are still empty,
so a write in between always wins.

Revision ID: stored_pages
Revises: job_queue
Create Date: 2026-12-03 23:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'stored_pages'
down_revision = 'job_queue'
branch_labels = None
depends_on = None

_TABLES = ('plugin', 'plugin_version', 'retier_result')


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column('page_html', sa.Text(), nullable=True))


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_column(table, 'page_html')
