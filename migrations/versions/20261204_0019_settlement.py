"""Settlement: the money journal, fee rules, payee accounts, payout batches and payouts, distribution rules,
member households, distributions and their lines, fapiao requests; and the registry's pledges (units frozen for green
loans: the ledger's ``pledged`` account of a batch, opened with its first pledge, needs no DDL).

The journal (money_entries) is append-only: on PostgreSQL the trigger function of 0002 (tanhui_append_only,
which names the table since 0012) refuses UPDATE and DELETE on it, as on ledger_entries. SQLite has no
such trigger.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 03:42:36

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('households',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('shares', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('shares > 0', name=op.f('ck_households_shares_positive')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_households_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_households')),
    sa.UniqueConstraint('organisation_id', 'name', name='uq_households_organisation_name')
    )
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_households_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('payee_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('account_name', sa.String(length=200), nullable=False),
    sa.Column('bank_name', sa.String(length=200), nullable=False),
    sa.Column('account_number', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_payee_accounts_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payee_accounts')),
    sa.UniqueConstraint('organisation_id', name=op.f('uq_payee_accounts_organisation_id'))
    )
    op.create_table('distribution_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('collective_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('households_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('collective_percent + households_percent = 100', name=op.f('ck_distribution_rules_sums_to_100')),
    sa.CheckConstraint('collective_percent >= 0 AND households_percent >= 0', name=op.f('ck_distribution_rules_not_negative')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_distribution_rules_created_by_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_distribution_rules_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_distribution_rules'))
    )
    with op.batch_alter_table('distribution_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distribution_rules_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('fee_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('floor_fen', sa.BigInteger(), nullable=False),
    sa.Column('ceiling_fen', sa.BigInteger(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ceiling_fen IS NULL OR ceiling_fen >= floor_fen', name=op.f('ck_fee_rules_ceiling_over_floor')),
    sa.CheckConstraint('floor_fen >= 0', name=op.f('ck_fee_rules_floor_not_negative')),
    sa.CheckConstraint('percent >= 0 AND percent <= 100', name=op.f('ck_fee_rules_percent_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_fee_rules_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_rules'))
    )
    op.create_table('payout_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_payout_batches_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches'))
    )
    op.create_table('payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('seller_organisation_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('account_name', sa.String(length=200), nullable=False),
    sa.Column('bank_name', sa.String(length=200), nullable=False),
    sa.Column('account_number', sa.String(length=40), nullable=False),
    sa.Column('bank_reference', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.String(length=300), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status <> 'paid' OR bank_reference IS NOT NULL", name=op.f('ck_payouts_paid_has_reference')),
    sa.CheckConstraint("status IN ('pending', 'paid', 'failed')", name=op.f('ck_payouts_status')),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_payouts_amount_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payouts_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_payouts_decided_by_id_users')),
    sa.ForeignKeyConstraint(['seller_organisation_id'], ['organisations.id'], name=op.f('fk_payouts_seller_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('bank_reference', name=op.f('uq_payouts_bank_reference'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payouts_seller_organisation_id'), ['seller_organisation_id'], unique=False)

    op.create_table('distributions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('collective_fen', sa.BigInteger(), nullable=False),
    sa.Column('collective_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('households_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_distributions_created_by_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_distributions_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_distributions_payout_id_payouts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_distributions')),
    sa.UniqueConstraint('payout_id', name=op.f('uq_distributions_payout_id'))
    )
    with op.batch_alter_table('distributions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distributions_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('distribution_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('distribution_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('shares', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_distribution_lines_amount_not_negative')),
    sa.ForeignKeyConstraint(['distribution_id'], ['distributions.id'], name=op.f('fk_distribution_lines_distribution_id_distributions')),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_distribution_lines_household_id_households')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_distribution_lines')),
    sa.UniqueConstraint('distribution_id', 'household_id', name='uq_distribution_lines_household')
    )
    with op.batch_alter_table('distribution_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distribution_lines_distribution_id'), ['distribution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_distribution_lines_household_id'), ['household_id'], unique=False)

    op.create_table('money_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('debit_account', sa.String(length=60), nullable=False),
    sa.Column('credit_account', sa.String(length=60), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('order_line_id', sa.Integer(), nullable=True),
    sa.Column('seller_organisation_id', sa.Integer(), nullable=True),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('distribution_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('capture', 'proceeds', 'fee', 'refund', 'payout', 'payout_paid', 'payout_failed', 'distribution')", name=op.f('ck_money_entries_kind')),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_money_entries_amount_positive')),
    sa.CheckConstraint('debit_account <> credit_account', name=op.f('ck_money_entries_two_accounts')),
    sa.ForeignKeyConstraint(['distribution_id'], ['distributions.id'], name=op.f('fk_money_entries_distribution_id_distributions')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_money_entries_order_id_orders')),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], name=op.f('fk_money_entries_order_line_id_order_lines')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_money_entries_payout_id_payouts')),
    sa.ForeignKeyConstraint(['seller_organisation_id'], ['organisations.id'], name=op.f('fk_money_entries_seller_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_money_entries')),
    sa.UniqueConstraint('ref', name=op.f('uq_money_entries_ref'))
    )
    with op.batch_alter_table('money_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_money_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_entries_credit_account'), ['credit_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_entries_debit_account'), ['debit_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_entries_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_entries_seller_organisation_id'), ['seller_organisation_id'], unique=False)


    op.create_table('pledges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('bank_name', sa.String(length=200), nullable=False),
    sa.Column('contract_reference', sa.String(length=100), nullable=False),
    sa.Column('loan_amount_cny', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by_id', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('active', 'released')", name=op.f('ck_pledges_status')),
    sa.CheckConstraint('loan_amount_cny > 0', name=op.f('ck_pledges_amount_positive')),
    sa.CheckConstraint('term_end >= term_start', name=op.f('ck_pledges_term_order')),
    sa.CheckConstraint('units > 0', name=op.f('ck_pledges_units_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_pledges_batch_id_credit_batches')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_pledges_created_by_id_users')),
    sa.ForeignKeyConstraint(['released_by_id'], ['users.id'], name=op.f('fk_pledges_released_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledges')),
    sa.UniqueConstraint('bank_name', 'contract_reference', name='uq_pledges_bank_contract')
    )
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pledges_batch_id'), ['batch_id'], unique=False)

    op.create_table('fapiao_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('buyer_organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('tax_id', sa.String(length=18), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('fapiao_number', sa.String(length=40), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('pdf_name', sa.String(length=80), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('ordinary', 'special')", name=op.f('ck_fapiao_requests_kind')),
    sa.CheckConstraint("status <> 'issued' OR fapiao_number IS NOT NULL", name=op.f('ck_fapiao_requests_issued_has_number')),
    sa.CheckConstraint("status IN ('requested', 'issued')", name=op.f('ck_fapiao_requests_status')),
    sa.ForeignKeyConstraint(['buyer_organisation_id'], ['organisations.id'], name=op.f('fk_fapiao_requests_buyer_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fapiao_requests_order_id_orders')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_fapiao_requests_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_fapiao_requests_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fapiao_requests')),
    sa.UniqueConstraint('fapiao_number', name=op.f('uq_fapiao_requests_fapiao_number')),
    sa.UniqueConstraint('order_id', name=op.f('uq_fapiao_requests_order_id'))
    )
    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fapiao_requests_buyer_organisation_id'), ['buyer_organisation_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # The journal is append-only: no UPDATE, no DELETE (TRUNCATE by the owner stays possible for tests).
        op.execute("CREATE TRIGGER money_entries_append_only BEFORE UPDATE OR DELETE ON money_entries "
                   "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS money_entries_append_only ON money_entries")
    with op.batch_alter_table('money_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_money_entries_seller_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_money_entries_order_id'))
        batch_op.drop_index(batch_op.f('ix_money_entries_debit_account'))
        batch_op.drop_index(batch_op.f('ix_money_entries_credit_account'))
        batch_op.drop_index(batch_op.f('ix_money_entries_created_at'))

    op.drop_table('money_entries')
    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fapiao_requests_buyer_organisation_id'))

    op.drop_table('fapiao_requests')
    with op.batch_alter_table('distribution_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_distribution_lines_household_id'))
        batch_op.drop_index(batch_op.f('ix_distribution_lines_distribution_id'))

    op.drop_table('distribution_lines')
    with op.batch_alter_table('distributions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_distributions_organisation_id'))

    op.drop_table('distributions')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payouts_seller_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_payouts_batch_id'))

    op.drop_table('payouts')
    op.drop_table('payout_batches')
    op.drop_table('fee_rules')
    with op.batch_alter_table('distribution_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_distribution_rules_organisation_id'))

    op.drop_table('distribution_rules')
    op.drop_table('payee_accounts')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pledges_batch_id'))

    op.drop_table('pledges')
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_households_organisation_id'))

    op.drop_table('households')
