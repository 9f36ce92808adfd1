"""Reviews per reviewer; usage per installation and day.

``review`` holds one row per (version, reviewer): a reviewer's newer review replaces only their
own, and the policy sees every reviewer's review. Reviews were ``evidence`` rows of kind
``review`` of which the newest won; each reviewer's newest one becomes their row, and the
evidence rows go.

``usage_day`` holds one row per (version, installation, UTC day) with the installation token's
namespace as its organization, so continued use and distinct organizations can be counted.
``usage_report`` kept only an installation's first and last report: each becomes the rows of
those (at most two) days, its organization the namespace of the token it names ("" for a token
that no longer exists, which no policy counts), and the table goes.

The downgrade goes back to the newest review winning (one evidence row per review, in time
order) and to one row per installation (first and last report).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 12:00:00
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_review = sa.table('review', sa.column('version_id', sa.Integer()),
                   sa.column('reviewer', sa.String()), sa.column('verdict', sa.String()),
                   sa.column('note', sa.String()), sa.column('digest', sa.String()),
                   sa.column('actor', sa.String()), sa.column('reviewed_at', sa.String()))
_usage_day = sa.table('usage_day', sa.column('version_id', sa.Integer()),
                      sa.column('installation_id', sa.String()),
                      sa.column('organization', sa.String()), sa.column('day', sa.String()),
                      sa.column('digest', sa.String()), sa.column('reported_at', sa.String()))
_evidence = sa.table('evidence', sa.column('version_id', sa.Integer()),
                     sa.column('kind', sa.String()), sa.column('digest', sa.String()),
                     sa.column('facts_json', sa.Text()), sa.column('actor', sa.String()),
                     sa.column('created_at', sa.String()))
_usage_report = sa.table('usage_report', sa.column('version_id', sa.Integer()),
                         sa.column('installation_id', sa.String()),
                         sa.column('digest', sa.String()), sa.column('first_seen', sa.String()),
                         sa.column('last_seen', sa.String()))


def upgrade() -> None:
    op.create_table(
        'review',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('reviewer', sa.String(length=160), nullable=False),
        sa.Column('verdict', sa.String(length=32), nullable=False),
        sa.Column('note', sa.String(length=2000), nullable=True),
        sa.Column('digest', sa.String(length=71), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('reviewed_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version_id', 'reviewer', name='uq_review_reviewer'),
    )
    op.create_index('ix_review_version_id', 'review', ['version_id'], unique=False)
    op.create_table(
        'usage_day',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('installation_id', sa.String(length=64), nullable=False),
        sa.Column('organization', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('digest', sa.String(length=71), nullable=False),
        sa.Column('reported_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version_id', 'installation_id', 'day', name='uq_usage_day'),
    )
    op.create_index('ix_usage_day_version_id', 'usage_day', ['version_id'], unique=False)

    conn = op.get_bind()
    # Each reviewer's newest review (rows in insertion order: a later one replaces an earlier).
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for version_id, digest, facts_json, actor, created_at in conn.execute(sa.text(
            "SELECT version_id, digest, facts_json, actor, created_at FROM evidence "
            "WHERE kind = 'review' ORDER BY id")):
        facts = json.loads(facts_json)
        if facts.get('present') is not True or facts.get('status') is None:
            continue
        reviewer = facts.get('reviewer') or actor.rsplit(':', 1)[-1]
        newest[(version_id, reviewer)] = {
            'version_id': version_id, 'reviewer': reviewer[:160], 'verdict': facts['status'],
            'note': None, 'digest': digest, 'actor': actor,
            'reviewed_at': facts.get('reviewed_at') or created_at}
    if newest:
        conn.execute(_review.insert(), list(newest.values()))
    op.execute("DELETE FROM evidence WHERE kind = 'review'")

    days: dict[tuple[int, str, str], dict[str, Any]] = {}
    for version_id, installation, digest, first_seen, last_seen, namespace in conn.execute(
            sa.text("SELECT u.version_id, u.installation_id, u.digest, u.first_seen, "
                    "u.last_seen, t.namespace FROM usage_report u LEFT JOIN api_token t "
                    "ON t.token_id = u.installation_id ORDER BY u.id")):
        for at in (first_seen, last_seen):
            days.setdefault((version_id, installation, at[:10]), {
                'version_id': version_id, 'installation_id': installation,
                'organization': namespace or '', 'day': at[:10], 'digest': digest,
                'reported_at': at})
    if days:
        conn.execute(_usage_day.insert(), list(days.values()))
    op.drop_index('ix_usage_report_version_id', table_name='usage_report')
    op.drop_table('usage_report')


def downgrade() -> None:
    op.create_table(
        'usage_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('installation_id', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=71), nullable=False),
        sa.Column('first_seen', sa.String(length=32), nullable=False),
        sa.Column('last_seen', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version_id', 'installation_id', name='uq_usage'),
    )
    op.create_index('ix_usage_report_version_id', 'usage_report', ['version_id'], unique=False)
    conn = op.get_bind()
    rows = [{'version_id': v, 'installation_id': i, 'digest': d, 'first_seen': f,
             'last_seen': last}
            for v, i, d, f, last in conn.execute(sa.text(
                "SELECT version_id, installation_id, MIN(digest), MIN(reported_at), "
                "MAX(reported_at) FROM usage_day GROUP BY version_id, installation_id "
                "ORDER BY MIN(id)"))]
    if rows:
        conn.execute(_usage_report.insert(), rows)
    # The newest review wins again: one evidence row per review, oldest first.
    evidence = [{'version_id': v, 'kind': 'review', 'digest': d, 'actor': a, 'created_at': at,
                 'facts_json': json.dumps({'present': True, 'status': verdict, 'reviewer': r,
                                           'reviewed_at': at, 'digest': d, 'source': None},
                                          separators=(',', ':'))}
                for v, r, verdict, d, a, at in conn.execute(sa.text(
                    "SELECT version_id, reviewer, verdict, digest, actor, reviewed_at "
                    "FROM review ORDER BY reviewed_at, id"))]
    if evidence:
        conn.execute(_evidence.insert(), evidence)
    op.drop_index('ix_usage_day_version_id', table_name='usage_day')
    op.drop_table('usage_day')
    op.drop_index('ix_review_version_id', table_name='review')
    op.drop_table('review')
