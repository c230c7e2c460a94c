"""Event footprints: emission factors (versioned), events, activity lines, reduction measures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00

"""
from alembic import op
import sqlalchemy as sa

# Frozen copies of marketplace.models.footprint.FACTOR_IMMUTABLE_* as of this revision.
FACTOR_IMMUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION emission_factors_immutable() RETURNS trigger AS $$
BEGIN
  IF NEW.kgco2e_per_unit <> OLD.kgco2e_per_unit OR NEW.unit <> OLD.unit OR NEW.code <> OLD.code
     OR NEW.version <> OLD.version OR NEW.category <> OLD.category THEN
    RAISE EXCEPTION 'a published emission factor cannot change; add a new version';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql"""
FACTOR_IMMUTABLE_TRIGGER = """
CREATE TRIGGER emission_factors_immutable BEFORE UPDATE ON emission_factors
  FOR EACH ROW EXECUTE FUNCTION emission_factors_immutable()"""


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

CATEGORY_CHECK = "category IN ('transport', 'catering', 'accommodation', 'venue', 'materials', 'waste')"


def upgrade():
    op.create_table('emission_factors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('kgco2e_per_unit', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(CATEGORY_CHECK, name=op.f('ck_emission_factors_category')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_emission_factors_version_positive')),
    sa.CheckConstraint('kgco2e_per_unit >= 0', name=op.f('ck_emission_factors_factor_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emission_factors')),
    sa.UniqueConstraint('code', 'version', name='uq_emission_factors_code_version')
    )
    with op.batch_alter_table('emission_factors', schema=None) as batch_op:
        batch_op.create_index('uq_emission_factors_current_code', ['code'], unique=True,
                              postgresql_where=sa.text('retired_at IS NULL'), sqlite_where=sa.text('retired_at IS NULL'))

    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('attendees', sa.Integer(), nullable=True),
    sa.Column('organiser', sa.String(length=200), nullable=False),
    sa.Column('boundary', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_events_dates_in_order')),
    sa.CheckConstraint('attendees IS NULL OR attendees >= 0', name=op.f('ck_events_attendees_not_negative')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_events_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_events_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('activity_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('factor_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('emissions_units', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(CATEGORY_CHECK, name=op.f('ck_activity_lines_category')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_activity_lines_quantity_positive')),
    sa.CheckConstraint('emissions_units >= 0', name=op.f('ck_activity_lines_emissions_not_negative')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_activity_lines_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['factor_id'], ['emission_factors.id'], name=op.f('fk_activity_lines_factor_id_emission_factors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_lines'))
    )
    with op.batch_alter_table('activity_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_lines_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_lines_factor_id'), ['factor_id'], unique=False)

    op.create_table('reduction_measures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('estimated_units', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(CATEGORY_CHECK, name=op.f('ck_reduction_measures_category')),
    sa.CheckConstraint('estimated_units IS NULL OR estimated_units >= 0', name=op.f('ck_reduction_measures_estimate_not_negative')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_reduction_measures_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reduction_measures'))
    )
    with op.batch_alter_table('reduction_measures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reduction_measures_event_id'), ['event_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        # A published factor never changes (see marketplace/models/footprint.py).
        op.execute(FACTOR_IMMUTABLE_FUNCTION)
        op.execute(FACTOR_IMMUTABLE_TRIGGER)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS emission_factors_immutable ON emission_factors')
        op.execute('DROP FUNCTION IF EXISTS emission_factors_immutable()')
    with op.batch_alter_table('reduction_measures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reduction_measures_event_id'))
    op.drop_table('reduction_measures')
    with op.batch_alter_table('activity_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_lines_factor_id'))
        batch_op.drop_index(batch_op.f('ix_activity_lines_event_id'))
    op.drop_table('activity_lines')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_organisation_id'))
    op.drop_table('events')
    with op.batch_alter_table('emission_factors', schema=None) as batch_op:
        batch_op.drop_index('uq_emission_factors_current_code', postgresql_where=sa.text('retired_at IS NULL'),
                            sqlite_where=sa.text('retired_at IS NULL'))
    op.drop_table('emission_factors')
