"""invoices in parts, due dates, the bank's answers, provider BIC

Several invoices may post one commitment, so invoice.commitment_id is no longer unique
(an index instead); invoices and queued e-invoices keep their due date; an invoice keeps
the bank's reason when its payment was rejected; bank_file records each pain.002/camt.054
read, so a file read twice changes nothing; a provider may have a BIC beside its IBAN.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:05:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The unique constraint of 0002 has no name of its own: PostgreSQL named it, SQLite did not
# (batch mode rebuilds the table, and finds it under the name this convention gives it).
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_commitment_unique() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('invoice', recreate='always', naming_convention=_SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint('uq_invoice_commitment_id', type_='unique')
    else:
        op.drop_constraint('invoice_commitment_id_key', 'invoice', type_='unique')


def upgrade() -> None:
    op.create_table('bank_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('applied_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('applied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest'),
    sa.UniqueConstraint('kind', 'message_id', name='uq_bank_file_message')
    )
    _drop_commitment_unique()
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('bank_reason_code', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True))
        batch_op.add_column(sa.Column('bank_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_invoice_commitment_id'), ['commitment_id'], unique=False)
    with op.batch_alter_table('invoice_review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_date', sa.Date(), nullable=True))
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bic', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.drop_column('bic')
    with op.batch_alter_table('invoice_review', schema=None) as batch_op:
        batch_op.drop_column('due_date')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_commitment_id'))
        batch_op.drop_column('bank_reason')
        batch_op.drop_column('bank_reason_code')
        batch_op.drop_column('due_date')
        # the name upgrade() drops it by on each engine
        sqlite = op.get_bind().dialect.name == "sqlite"
        batch_op.create_unique_constraint('uq_invoice_commitment_id' if sqlite else 'invoice_commitment_id_key',
                                          ['commitment_id'])
    op.drop_table('bank_file')
