"""transfer business date

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:20:00

Every transfer gets the date it happened in business terms beside the time it was
recorded. Existing rows are filled from the best source there is: the first day of the
month for allocations, lapses and carry-overs; the proposal's service date for
commitments; else the day the transfer was recorded.
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_date', sa.Date(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    recorded = "CAST(created_at AS DATE)" if postgres else "date(created_at)"
    month_start = "CAST(period || '-01' AS DATE)" if postgres else "period || '-01'"
    op.execute(f"UPDATE transfer SET business_date = {recorded}")
    month_end = (f"CAST({month_start} + INTERVAL '1 month' - INTERVAL '1 day' AS DATE)" if postgres
                 else f"date({month_start}, '+1 month', '-1 day')")
    op.execute(f"UPDATE transfer SET business_date = {month_start} "
               "WHERE kind IN ('allocation', 'carry-over') AND id NOT LIKE 'carry-out:%' AND period IS NOT NULL")
    # what leaves a month when it closes (a lapse, a carry-out) leaves on its last day
    op.execute(f"UPDATE transfer SET business_date = {month_end} "
               "WHERE (kind = 'lapse' OR id LIKE 'carry-out:%') AND period IS NOT NULL")
    op.execute("UPDATE transfer SET business_date = (SELECT p.service_date FROM commitment c "
               "JOIN proposal p ON p.id = c.proposal_id WHERE c.transfer_id = transfer.id) "
               "WHERE kind = 'commitment' AND EXISTS (SELECT 1 FROM commitment c "
               "WHERE c.transfer_id = transfer.id)")
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.alter_column('business_date', existing_type=sa.Date(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.drop_column('business_date')
