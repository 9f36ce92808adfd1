"""Scan evidence says who produced it (``origin``), and every version has a scan job.

The policy weighs a scan by its origin (``registry``, ``attested``, ``pipeline``,
``self-reported``): a publisher's uploaded report no longer counts as the registry's scan.
Existing scan evidence gets the origin it had in fact: rows the registry's scan worker wrote
(actor ``scanner``) are ``registry``; rows written at publish from an uploaded report are
``self-reported``. Every publish now queues a scan job, so versions published while the
registry did not scan (the old default) get one too, unless revoked: a registry process that
scans takes them, and until then those versions are unscanned. Re-tier the catalogue after
upgrading (``cortex registry retier``): decisions change with the policy, not with this data.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 12:00:00
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_BATCH = 1000


def _rewrite_scan_facts(change: Callable[[dict[str, object], str], bool]) -> None:
    """Apply ``change(doc, actor)`` (returns whether it changed ``doc``) to every scan row."""
    bind = op.get_bind()
    evidence = sa.table('evidence', sa.column('id', sa.Integer), sa.column('kind', sa.String),
                        sa.column('actor', sa.String), sa.column('facts_json', sa.Text))
    last = 0
    while True:
        rows = bind.execute(sa.select(evidence.c.id, evidence.c.actor, evidence.c.facts_json)
                            .where(evidence.c.kind == 'scan', evidence.c.id > last)
                            .order_by(evidence.c.id).limit(_BATCH)).all()
        if not rows:
            return
        for row_id, actor, facts in rows:
            doc = json.loads(facts)
            if isinstance(doc, dict) and change(doc, actor):
                bind.execute(sa.update(evidence).where(evidence.c.id == row_id)
                             .values(facts_json=json.dumps(doc, separators=(',', ':'))))
        last = rows[-1][0]


def upgrade() -> None:
    def add_origin(doc: dict[str, object], actor: str) -> bool:
        if doc.get('origin') is not None:
            return False
        doc['origin'] = 'registry' if actor == 'scanner' else 'self-reported'
        return True

    _rewrite_scan_facts(add_origin)
    now = datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    op.get_bind().execute(sa.text(
        "INSERT INTO scan_job (version_id, image, digest, state, attempts, created_at, updated_at) "
        "SELECT v.id, v.image, v.digest, 'queued', 0, :now, :now FROM plugin_version v "
        "WHERE v.state <> 'revoked' AND NOT EXISTS "
        "(SELECT 1 FROM scan_job j WHERE j.version_id = v.id)"), {"now": now})


def downgrade() -> None:
    # Older code refuses unknown fields: the origin and attester go (the jobs may stay).
    def strip(doc: dict[str, object], actor: str) -> bool:
        had = 'origin' in doc or 'attester' in doc
        doc.pop('origin', None)
        doc.pop('attester', None)
        return had

    _rewrite_scan_facts(strip)
    bind = op.get_bind()
    version = sa.table('plugin_version', sa.column('id', sa.Integer),
                       sa.column('input_json', sa.Text))
    for row_id, text in bind.execute(sa.select(version.c.id, version.c.input_json)).all():
        doc = json.loads(text)
        scan = doc.get('evidence', {}).get('scan', {})
        if 'origin' in scan or 'attester' in scan:
            scan.pop('origin', None)
            scan.pop('attester', None)
            bind.execute(sa.update(version).where(version.c.id == row_id)
                         .values(input_json=json.dumps(doc, separators=(',', ':'))))
