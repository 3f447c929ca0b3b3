"""provider bank details kept apart, each change approved by a second person; the IBAN an
e-invoice asks payment to, on its review item

Providers' IBANs already in the database get no bank-details row: they are not in force
until they are entered again (`avain provider update ID --iban IBAN`) and a second person
approves them (`avain provider approve-bank ID`), since nothing shows who set them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:10:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_bank',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=9), nullable=False),
    sa.Column('iban', sqlmodel.sql.sqltypes.AutoString(length=34), nullable=False),
    sa.Column('bic', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('approved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('mac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('provider_bank', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_bank_provider_id'), ['provider_id'], unique=False)
    with op.batch_alter_table('invoice_review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('iban', sqlmodel.sql.sqltypes.AutoString(length=34), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoice_review', schema=None) as batch_op:
        batch_op.drop_column('iban')
    with op.batch_alter_table('provider_bank', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_bank_provider_id'))
    op.drop_table('provider_bank')
