"""client language

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:50:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every client enrolled before languages were recorded is taken as Finnish-speaking;
    # `avain client language CODE sv` corrects it.
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False,
                                      server_default='fi'))


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('language')
