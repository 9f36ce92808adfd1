"""Initial schema of the registry: namespaces, plugins, versions, evidence, usage, tokens,
revocations and the hash-chained audit log (with its head row seeded at the genesis hash).

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 22:05:08.018402
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('expires_at', sa.String(length=32), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_id')
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_token_hash'), ['token_hash'], unique=True)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('before_json', sa.Text(), nullable=True),
    sa.Column('after_json', sa.Text(), nullable=True),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hash'),
    sa.UniqueConstraint('prev_hash')
    )
    op.create_table('namespace',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('namespace', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_namespace_name'), ['name'], unique=True)

    op.create_table('plugin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('namespace', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=129), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('capabilities_json', sa.Text(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('latest_version', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.Column('summary_json', sa.Text(), nullable=False),
    sa.Column('document_json', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('plugin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugin_key'), ['key'], unique=True)
        batch_op.create_index(batch_op.f('ix_plugin_namespace'), ['namespace'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugin_tier'), ['tier'], unique=False)

    op.create_table('plugin_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plugin_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('image', sa.String(length=512), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('input_json', sa.Text(), nullable=False),
    sa.Column('bundle_json', sa.Text(), nullable=False),
    sa.Column('decision_json', sa.Text(), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('policy_revision', sa.String(length=128), nullable=False),
    sa.Column('signer_identity', sa.String(length=1024), nullable=True),
    sa.Column('signer_issuer', sa.String(length=1024), nullable=True),
    sa.Column('published_at', sa.String(length=32), nullable=False),
    sa.Column('published_by', sa.String(length=64), nullable=False),
    sa.Column('revoked_reason', sa.String(length=2000), nullable=True),
    sa.Column('revoked_at', sa.String(length=32), nullable=True),
    sa.Column('summary_json', sa.Text(), nullable=False),
    sa.Column('document_json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['plugin_id'], ['plugin.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plugin_id', 'version', name='uq_plugin_version')
    )
    with op.batch_alter_table('plugin_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugin_version_digest'), ['digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugin_version_plugin_id'), ['plugin_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plugin_version_signer_identity'), ['signer_identity'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('facts_json', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_version_id'), ['version_id'], unique=False)

    op.create_table('revocation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('namespace', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=128), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('identity', sa.String(length=1024), nullable=True),
    sa.Column('issuer', sa.String(length=1024), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version_id')
    )
    op.create_table('usage_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('first_seen', sa.String(length=32), nullable=False),
    sa.Column('last_seen', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version_id', 'installation_id', name='uq_usage')
    )
    with op.batch_alter_table('usage_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_report_version_id'), ['version_id'], unique=False)
    op.create_table('scan_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('image', sa.String(length=512), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.String(length=32), nullable=True),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['plugin_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version_id')
    )
    with op.batch_alter_table('scan_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_job_state'), ['state'], unique=False)

    audit_head = sa.table('audit_head', sa.column('id', sa.Integer()),
                          sa.column('seq', sa.Integer()), sa.column('hash', sa.String()))
    op.bulk_insert(audit_head, [{'id': 1, 'seq': 0, 'hash': '0' * 64}])


def downgrade() -> None:
    with op.batch_alter_table('scan_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_job_state'))
    op.drop_table('scan_job')
    with op.batch_alter_table('usage_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_report_version_id'))

    op.drop_table('usage_report')
    op.drop_table('revocation')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_version_id'))

    op.drop_table('evidence')
    with op.batch_alter_table('plugin_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plugin_version_signer_identity'))
        batch_op.drop_index(batch_op.f('ix_plugin_version_plugin_id'))
        batch_op.drop_index(batch_op.f('ix_plugin_version_digest'))

    op.drop_table('plugin_version')
    with op.batch_alter_table('plugin', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plugin_tier'))
        batch_op.drop_index(batch_op.f('ix_plugin_namespace'))
        batch_op.drop_index(batch_op.f('ix_plugin_key'))

    op.drop_table('plugin')
    with op.batch_alter_table('namespace', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_namespace_name'))

    op.drop_table('namespace')
    op.drop_table('audit_log')
    op.drop_table('audit_head')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_token_hash'))

    op.drop_table('api_token')
