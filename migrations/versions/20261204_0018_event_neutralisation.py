"""Event neutralisation as the MEE large-event guideline asks: credit labels on batches, the purpose of a
retirement on orders, and the neutrality dossier (plans, reminders).

Batches get the labels the bureau sets at issuance (scheme, methodology code and version, eligible for a
large-event claim; the monitoring period is the batch's vintage_start … vintage_end). Existing batches
become scheme ``other``, not eligible: only the bureau may say a batch counts. Orders get ``purpose``;
existing orders for an event become ``event``, the others ``voluntary``.

Standing alone: the values are copied here, not imported from the application.

Revision ID: 0018
Revises: 0012
Create Date: 2026-12-04 04:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0012'
branch_labels = None
depends_on = None

CREDIT_SCHEMES = ("zhejiang_forestry", "lishui_inclusive", "ccer", "other")
RETIREMENT_PURPOSES = ("event", "zero_carbon_org", "ecological_compensation", "voluntary", "other")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    with op.batch_alter_table('credit_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheme', sa.String(length=32), server_default='other', nullable=False))
        batch_op.add_column(sa.Column('methodology_code', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('methodology_version', sa.String(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('event_eligible', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(op.f('ck_credit_batches_scheme'), _in('scheme', CREDIT_SCHEMES))
        batch_op.create_index(batch_op.f('ix_credit_batches_scheme'), ['scheme'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_batches_event_eligible'), ['event_eligible'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=32), server_default='voluntary', nullable=False))
        batch_op.create_check_constraint(op.f('ck_orders_purpose'), _in('purpose', RETIREMENT_PURPOSES))
    op.execute("UPDATE orders SET purpose = 'event' WHERE event_id IS NOT NULL")


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_purpose'), type_='check')
        batch_op.drop_column('purpose')

    with op.batch_alter_table('credit_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_batches_event_eligible'))
        batch_op.drop_index(batch_op.f('ix_credit_batches_scheme'))
        batch_op.drop_constraint(op.f('ck_credit_batches_scheme'), type_='check')
        batch_op.drop_column('event_eligible')
        batch_op.drop_column('methodology_version')
        batch_op.drop_column('methodology_code')
        batch_op.drop_column('scheme')
