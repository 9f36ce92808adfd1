"""Trusted publishing: CI workflows that publish with their OIDC identity token, no stored secret.

``trusted_publisher`` names, per namespace, the issuer, repository, workflow file and (optional)
environment whose tokens may be exchanged for a short-lived publish credential;
``namespace_setting`` can make a namespace accept only such credentials; ``oidc_jti`` remembers
each exchanged token's ``jti`` until it expires (replay). ``api_token.publisher_id`` marks the
credentials issued that way. The new tables start empty and every earlier row keeps its meaning,
so no log baseline is needed.

Revision ID: trusted_publishing
Revises: 0012
Create Date: 2026-12-03 16:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'trusted_publishing'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'trusted_publisher',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('publisher_id', sa.String(length=32), nullable=False),
        sa.Column('namespace', sa.String(length=64), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('workflow', sa.String(length=255), nullable=False),
        sa.Column('environment', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.String(length=32), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('publisher_id'),
        sa.UniqueConstraint('namespace', 'issuer', 'repository', 'workflow', 'environment',
                            name='uq_trusted_publisher'),
    )
    op.create_index('ix_trusted_publisher_namespace', 'trusted_publisher', ['namespace'])
    op.create_table(
        'namespace_setting',
        sa.Column('namespace', sa.String(length=64), nullable=False),
        sa.Column('trusted_publishing_only', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('namespace'),
    )
    op.create_table(
        'oidc_jti',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('jti', sa.String(length=255), nullable=False),
        sa.Column('expires_at', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'jti', name='uq_oidc_jti'),
    )
    op.create_index('ix_oidc_jti_expires_at', 'oidc_jti', ['expires_at'])
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publisher_id', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_api_token_publisher_id', ['publisher_id'])


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index('ix_api_token_publisher_id')
        batch_op.drop_column('publisher_id')
    op.drop_index('ix_oidc_jti_expires_at', table_name='oidc_jti')
    op.drop_table('oidc_jti')
    op.drop_table('namespace_setting')
    op.drop_index('ix_trusted_publisher_namespace', table_name='trusted_publisher')
    op.drop_table('trusted_publisher')
