"""A card submission claims its payment attempt.

payment_attempts.card_submitted_at: set (conditionally, committed) by the pay page's card POST before it
calls Stripe, so parallel submissions of one order make one charge and the others are told the payment is
in progress instead of "failed". Cleared when a card is refused, so the buyer can try another at once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 04:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payment_attempts") as batch:
        batch.add_column(sa.Column("card_submitted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("payment_attempts") as batch:
        batch.drop_column("card_submitted_at")
