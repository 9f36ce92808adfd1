"""Remember revoked signer identities, and index revoked digests.

Revoking an identity used to revoke only the versions it had already signed; a version it
signed afterwards was published as active. ``revoked_identity`` lets publish refuse it.
``ix_revocation_digest`` keeps the check that a revoked digest is never published again cheap.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 23:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revoked_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=1024), nullable=False),
    sa.Column('issuer', sa.String(length=1024), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('revoked_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_identity_identity'), ['identity'],
                              unique=False)
    with op.batch_alter_table('revocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_digest'), ['digest'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('revocation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_digest'))
    with op.batch_alter_table('revoked_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_identity_identity'))
    op.drop_table('revoked_identity')
