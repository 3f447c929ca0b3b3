"""message seal version

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:10:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Messages written until now are sealed to their id, client, role and time only (1);
    # new ones also to their author, side, event and reference (2). `avain message
    # rotate-key` re-seals the old ones.
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('seal')
