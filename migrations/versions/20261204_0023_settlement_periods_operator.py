"""Settlement, the rest: closed statements with their period (statements), the issuer of a recorded fapiao
(fapiao_requests.issuer_organisation_id), and the platform operator the bureau delegates its settlement work
to (a new kind of organisation, ``operator``).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 18:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

KINDS_BEFORE = ("seller", "buyer", "bureau", "evaluator")
KINDS_AFTER = ("seller", "buyer", "bureau", "evaluator", "operator")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table('statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('period_kind', sa.String(length=10), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('opening_fen', sa.BigInteger(), nullable=False),
    sa.Column('sales_fen', sa.BigInteger(), nullable=False),
    sa.Column('fees_fen', sa.BigInteger(), nullable=False),
    sa.Column('refunds_fen', sa.BigInteger(), nullable=False),
    sa.Column('payouts_fen', sa.BigInteger(), nullable=False),
    sa.Column('closing_fen', sa.BigInteger(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("period_kind IN ('month', 'quarter')", name=op.f('ck_statements_period_kind')),
    sa.CheckConstraint('ends_on > starts_on', name=op.f('ck_statements_period_not_empty')),
    sa.CheckConstraint('closing_fen = opening_fen + sales_fen - fees_fen - refunds_fen - payouts_fen',
                       name=op.f('ck_statements_closing_adds_up')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_statements_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statements')),
    sa.UniqueConstraint('organisation_id', 'starts_on', name='uq_statements_organisation_start')
    )
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statements_organisation_id'), ['organisation_id'], unique=False)

    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issuer_organisation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_fapiao_requests_issuer_organisation_id_organisations'),
                                    'organisations', ['issuer_organisation_id'], ['id'])
    # Fapiao recorded before this were recorded by the bureau.
    op.execute("UPDATE fapiao_requests SET issuer_organisation_id = (SELECT users.organisation_id FROM users "
               "WHERE users.id = fapiao_requests.recorded_by_id) WHERE recorded_by_id IS NOT NULL")

    # The platform operator the bureau delegates its settlement work to.
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_organisations_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_organisations_kind'), _in('kind', KINDS_AFTER))


def downgrade():
    # An operator organisation with users cannot go back: the downgrade stops there rather than lose them.
    op.execute("DELETE FROM organisations WHERE kind = 'operator'")
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_organisations_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_organisations_kind'), _in('kind', KINDS_BEFORE))
    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_fapiao_requests_issuer_organisation_id_organisations'),
                                 type_='foreignkey')
        batch_op.drop_column('issuer_organisation_id')
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statements_organisation_id'))
    op.drop_table('statements')
