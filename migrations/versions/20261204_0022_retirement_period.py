"""The period a retirement covers, on orders: ``period_start`` and ``period_end`` (days, inclusive; both or
neither, the end not before the start). Existing orders for an event take the event's days, as new ones do
by default; the others have no period.

Standing alone: nothing is imported from the application.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 18:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

PERIOD_CHECK = ("(period_start IS NULL AND period_end IS NULL) OR "
                "(period_start IS NOT NULL AND period_end IS NOT NULL AND period_end >= period_start)")


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_start', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('period_end', sa.Date(), nullable=True))
    op.execute("UPDATE orders SET period_start = (SELECT starts_on FROM events WHERE events.id = orders.event_id), "
               "period_end = (SELECT ends_on FROM events WHERE events.id = orders.event_id) "
               "WHERE event_id IS NOT NULL")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_orders_period'), PERIOD_CHECK)


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_period'), type_='check')
        batch_op.drop_column('period_end')
        batch_op.drop_column('period_start')
