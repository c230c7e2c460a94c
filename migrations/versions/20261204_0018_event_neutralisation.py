"""Event neutralisation as the MEE large-event guideline asks: credit labels on batches, the purpose of a
retirement on orders, and the neutrality dossier (plans, reminders).

Batches get the labels the bureau sets at issuance (scheme, methodology code and version, eligible for a
large-event claim; the monitoring period is the batch's vintage_start … vintage_end). Existing batches
become scheme ``other``, not eligible: only the bureau may say a batch counts. Orders get ``purpose``;
existing orders for an event become ``event``, the others ``voluntary``.

Standing alone: the values are copied here, not imported from the application.

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-04 04:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0014'
branch_labels = None
depends_on = None

CREDIT_SCHEMES = ("zhejiang_forestry", "lishui_inclusive", "ccer", "other")
RETIREMENT_PURPOSES = ("event", "zero_carbon_org", "ecological_compensation", "voluntary", "other")
KINDS_BEFORE = ("seller", "buyer", "bureau")
KINDS_AFTER = ("seller", "buyer", "bureau", "evaluator")


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

    # A new kind of organisation: the accredited third-party evaluator the bureau registers.
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_organisations_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_organisations_kind'), _in('kind', KINDS_AFTER))

    op.create_table('neutrality_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('boundary', sa.JSON(), nullable=False),
    sa.Column('planned_by_category', sa.JSON(), nullable=False),
    sa.Column('planned_units', sa.BigInteger(), nullable=False),
    sa.Column('actual_by_category', sa.JSON(), nullable=True),
    sa.Column('actual_units', sa.BigInteger(), nullable=True),
    sa.Column('actual_recorded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('offsetting_route', sa.JSON(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('evaluation', sa.String(length=16), nullable=False),
    sa.Column('evaluator_organisation_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("evaluation IN ('self', 'third_party')", name=op.f('ck_neutrality_plans_evaluation')),
    sa.CheckConstraint('planned_units > 0', name=op.f('ck_neutrality_plans_planned_positive')),
    sa.CheckConstraint('actual_units IS NULL OR actual_units > 0', name=op.f('ck_neutrality_plans_actual_positive')),
    sa.CheckConstraint("(evaluation = 'self' AND evaluator_organisation_id IS NULL) OR "
                       "(evaluation = 'third_party' AND evaluator_organisation_id IS NOT NULL)",
                       name=op.f('ck_neutrality_plans_evaluator_named')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_neutrality_plans_created_by_id_users')),
    sa.ForeignKeyConstraint(['evaluator_organisation_id'], ['organisations.id'], name=op.f('fk_neutrality_plans_evaluator_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_neutrality_plans_event_id_events')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_neutrality_plans_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_neutrality_plans')),
    sa.UniqueConstraint('event_id', name=op.f('uq_neutrality_plans_event_id'))
    )
    with op.batch_alter_table('neutrality_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_neutrality_plans_deadline'), ['deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_neutrality_plans_evaluator_organisation_id'), ['evaluator_organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_neutrality_plans_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('neutrality_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['neutrality_plans.id'], name=op.f('fk_neutrality_reminders_plan_id_neutrality_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_neutrality_reminders')),
    sa.UniqueConstraint('plan_id', 'days_before', name='uq_neutrality_reminders_plan_days')
    )
    with op.batch_alter_table('neutrality_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_neutrality_reminders_plan_id'), ['plan_id'], unique=False)

    op.create_table('neutrality_declaration_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.CheckConstraint('last_number >= 1', name=op.f('ck_neutrality_declaration_counters_last_number_positive')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_neutrality_declaration_counters'))
    )

    op.create_table('neutrality_declarations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('evaluator_organisation_id', sa.Integer(), nullable=True),
    sa.Column('conclusion', sa.String(length=20), nullable=True),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('facts_json', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('self', 'evaluation')", name=op.f('ck_neutrality_declarations_kind')),
    sa.CheckConstraint("conclusion IS NULL OR conclusion IN ('conforms', 'does_not_conform')", name=op.f('ck_neutrality_declarations_conclusion')),
    sa.CheckConstraint("(kind = 'self' AND evaluator_organisation_id IS NULL AND conclusion IS NULL) OR "
                       "(kind = 'evaluation' AND evaluator_organisation_id IS NOT NULL AND conclusion IS NOT NULL)",
                       name=op.f('ck_neutrality_declarations_kind_fields')),
    sa.ForeignKeyConstraint(['evaluator_organisation_id'], ['organisations.id'], name=op.f('fk_neutrality_declarations_evaluator_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_neutrality_declarations_issued_by_id_users')),
    sa.ForeignKeyConstraint(['key_id'], ['signing_keys.key_id'], name=op.f('fk_neutrality_declarations_key_id_signing_keys')),
    sa.ForeignKeyConstraint(['plan_id'], ['neutrality_plans.id'], name=op.f('fk_neutrality_declarations_plan_id_neutrality_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_neutrality_declarations')),
    sa.UniqueConstraint('number', name=op.f('uq_neutrality_declarations_number')),
    sa.UniqueConstraint('plan_id', 'kind', name='uq_neutrality_declarations_plan_kind')
    )
    with op.batch_alter_table('neutrality_declarations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_neutrality_declarations_key_id'), ['key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_neutrality_declarations_plan_id'), ['plan_id'], unique=False)


def downgrade():
    op.drop_table('neutrality_declarations')
    op.drop_table('neutrality_declaration_counters')
    op.drop_table('neutrality_reminders')
    op.drop_table('neutrality_plans')
    op.execute("DELETE FROM organisations WHERE kind = 'evaluator'")
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_organisations_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_organisations_kind'), _in('kind', KINDS_BEFORE))

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
