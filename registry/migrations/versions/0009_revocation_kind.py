"""Revocations say how far they reach: ``version``, ``digest`` or ``identity``.

A publisher's revocation names one version of its own namespace (``version``); revoking an
image everywhere (``digest``) or everything a signer signed (``identity``) is an admin act. The
feed carries the kind, clients match by it, and only the wide kinds keep a digest from being
published again.

Existing rows: rows written by an identity revocation (same identity, issuer and time as a
``revoked_identity`` row) become ``identity``; other rows an admin wrote keep the reach they had
(``digest``); rows a publisher wrote become ``version``, so a revocation by a namespace that
did not own the image no longer blocks that image's owner. A version may now carry several
rows (its publisher's, then an admin's digest-wide one): ``version_id`` is indexed, no longer
unique.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: Names the unnamed constraints of SQLite's reflected table so batch mode can drop them.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('revocation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='version'))
    op.execute("UPDATE revocation SET kind = 'identity' WHERE EXISTS (SELECT 1 FROM "
               "revoked_identity ri WHERE ri.identity = revocation.identity AND ri.issuer = "
               "revocation.issuer AND ri.created_at = revocation.created_at)")
    op.execute("UPDATE revocation SET kind = 'digest' WHERE kind = 'version' "
               "AND actor LIKE 'admin:%'")
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('revocation', schema=None, naming_convention=_NAMING,
                                  recreate='always') as batch_op:
            batch_op.drop_constraint('uq_revocation_version_id', type_='unique')
            batch_op.create_index('ix_revocation_version_id', ['version_id'], unique=False)
    else:
        op.drop_constraint('revocation_version_id_key', 'revocation', type_='unique')
        op.create_index('ix_revocation_version_id', 'revocation', ['version_id'], unique=False)


def downgrade() -> None:
    # One row per version again: the first one stays (before this revision every row reached
    # the whole digest, so the later rows of a version add nothing then).
    op.execute("DELETE FROM revocation WHERE id NOT IN (SELECT MIN(id) FROM revocation "
               "GROUP BY version_id)")
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('revocation', schema=None, recreate='always') as batch_op:
            batch_op.drop_index('ix_revocation_version_id')
            batch_op.create_unique_constraint('uq_revocation_version_id', ['version_id'])
            batch_op.drop_column('kind')
    else:
        op.drop_index('ix_revocation_version_id', table_name='revocation')
        op.create_unique_constraint('revocation_version_id_key', 'revocation', ['version_id'])
        op.drop_column('revocation', 'kind')
