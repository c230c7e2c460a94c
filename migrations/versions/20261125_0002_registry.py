"""Registry: regions, projects, documents, transitions, credit batches, the ledger, serial ranges, listings.

On PostgreSQL also: btree_gist, exclusion constraints (no overlapping serial ranges or batch blocks) and
append-only triggers on the journal and the serial ranges (PG_LEDGER_DDL below).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:41:16.921928

"""
from alembic import op
import sqlalchemy as sa

# Frozen copy of marketplace.registry.models.PG_LEDGER_DDL as of this revision (a migration never
# imports the application: later changes to the models must not change what this revision did).
PG_LEDGER_DDL = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    # No two retirements or cancellations can ever own the same serial of a batch.
    "ALTER TABLE serial_ranges ADD CONSTRAINT ex_serial_ranges_no_overlap "
    "EXCLUDE USING gist (batch_id WITH =, int8range(start, \"end\") WITH &&)",
    # No two batches can own the same serial.
    "ALTER TABLE credit_batches ADD CONSTRAINT ex_credit_batches_no_overlap "
    "EXCLUDE USING gist (int8range(serial_start, serial_end) WITH &&)",
    # The journal is append-only: no UPDATE, no DELETE (TRUNCATE by the owner stays possible for tests).
    """CREATE OR REPLACE FUNCTION tanhui_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$""",
    "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()",
    "CREATE TRIGGER serial_ranges_append_only BEFORE UPDATE OR DELETE ON serial_ranges "
    "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()",
]


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.CheckConstraint("level IN ('province', 'city', 'county', 'township', 'village')", name=op.f('ck_regions_level')),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], name=op.f('fk_regions_parent_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('code', name=op.f('uq_regions_code')),
    sa.UniqueConstraint('parent_id', 'name', name='uq_regions_parent_name')
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_parent_id'), ['parent_id'], unique=False)

    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seller_organisation_id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('area_hectares', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('forest_type', sa.String(length=100), nullable=False),
    sa.Column('methodology', sa.String(length=100), nullable=False),
    sa.Column('crediting_start', sa.Date(), nullable=False),
    sa.Column('crediting_end', sa.Date(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('review_note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'verified', 'rejected')", name=op.f('ck_projects_status')),
    sa.CheckConstraint('area_hectares > 0', name=op.f('ck_projects_area_positive')),
    sa.CheckConstraint('crediting_end > crediting_start', name=op.f('ck_projects_crediting_period')),
    sa.ForeignKeyConstraint(['seller_organisation_id'], ['organisations.id'], name=op.f('fk_projects_seller_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['village_id'], ['regions.id'], name=op.f('fk_projects_village_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects'))
    )
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_projects_seller_organisation_id'), ['seller_organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_projects_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_projects_village_id'), ['village_id'], unique=False)

    op.create_table('credit_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('vintage_start', sa.Date(), nullable=False),
    sa.Column('vintage_end', sa.Date(), nullable=False),
    sa.Column('quantity_units', sa.BigInteger(), nullable=False),
    sa.Column('buffer_units', sa.BigInteger(), nullable=False),
    sa.Column('serial_start', sa.BigInteger(), nullable=False),
    sa.Column('serial_end', sa.BigInteger(), nullable=False),
    sa.Column('next_serial', sa.BigInteger(), nullable=False),
    sa.Column('next_buffer_serial', sa.BigInteger(), nullable=False),
    sa.Column('verification_body', sa.String(length=200), nullable=False),
    sa.Column('report_reference', sa.String(length=200), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('buffer_units >= 0 AND buffer_units < quantity_units', name=op.f('ck_credit_batches_buffer_share')),
    sa.CheckConstraint('next_buffer_serial >= serial_end - buffer_units AND next_buffer_serial <= serial_end', name=op.f('ck_credit_batches_next_buffer_serial_in_buffer')),
    sa.CheckConstraint('next_serial >= serial_start AND next_serial <= serial_end - buffer_units', name=op.f('ck_credit_batches_next_serial_in_tradable')),
    sa.CheckConstraint('quantity_units > 0', name=op.f('ck_credit_batches_quantity_positive')),
    sa.CheckConstraint('serial_end - serial_start = quantity_units', name=op.f('ck_credit_batches_serial_block')),
    sa.CheckConstraint('vintage_end >= vintage_start', name=op.f('ck_credit_batches_vintage')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_credit_batches_issued_by_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_credit_batches_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_batches')),
    sa.UniqueConstraint('serial_end', name=op.f('uq_credit_batches_serial_end')),
    sa.UniqueConstraint('serial_start', name=op.f('uq_credit_batches_serial_start'))
    )
    with op.batch_alter_table('credit_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_batches_project_id'), ['project_id'], unique=False)

    op.create_table('project_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('verification_statement', 'monitoring_report', 'other')", name=op.f('ck_project_documents_kind')),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_project_documents_size_positive')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_documents_project_id_projects')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_project_documents_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_documents')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_project_documents_stored_name'))
    )
    with op.batch_alter_table('project_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_documents_project_id'), ['project_id'], unique=False)

    op.create_table('project_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_project_transitions_actor_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_transitions_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_transitions'))
    )
    with op.batch_alter_table('project_transitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_transitions_project_id'), ['project_id'], unique=False)

    op.create_table('buffer_losses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('fire', 'pests', 'logging', 'other')", name=op.f('ck_buffer_losses_kind')),
    sa.CheckConstraint('units > 0', name=op.f('ck_buffer_losses_units_positive')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_buffer_losses_actor_id_users')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_buffer_losses_batch_id_credit_batches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buffer_losses'))
    )
    with op.batch_alter_table('buffer_losses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buffer_losses_batch_id'), ['batch_id'], unique=False)

    op.create_table('ledger_balances',
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("units >= 0 OR account = 'issuance'", name=op.f('ck_ledger_balances_not_negative')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_ledger_balances_batch_id_credit_batches')),
    sa.PrimaryKeyConstraint('batch_id', 'account', name=op.f('pk_ledger_balances'))
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('from_account', sa.String(length=32), nullable=False),
    sa.Column('to_account', sa.String(length=32), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('from_account <> to_account', name=op.f('ck_ledger_entries_distinct_accounts')),
    sa.CheckConstraint('units > 0', name=op.f('ck_ledger_entries_units_positive')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_ledger_entries_actor_id_users')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_ledger_entries_batch_id_credit_batches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_ledger_entries_ref', ['ref'], unique=False)

    op.create_table('listings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seller_organisation_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('price_cny_per_tonne', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('min_order_units', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'paused', 'withdrawn')", name=op.f('ck_listings_status')),
    sa.CheckConstraint('min_order_units > 0', name=op.f('ck_listings_min_order_positive')),
    sa.CheckConstraint('price_cny_per_tonne > 0', name=op.f('ck_listings_price_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_listings_batch_id_credit_batches')),
    sa.ForeignKeyConstraint(['seller_organisation_id'], ['organisations.id'], name=op.f('fk_listings_seller_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings'))
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_listings_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listings_seller_organisation_id'), ['seller_organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listings_status'), ['status'], unique=False)

    op.create_table('serial_ranges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('start', sa.BigInteger(), nullable=False),
    sa.Column('end', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('retirement', 'cancellation')", name=op.f('ck_serial_ranges_kind')),
    sa.CheckConstraint('start < "end"', name=op.f('ck_serial_ranges_non_empty')),
    sa.ForeignKeyConstraint(['batch_id'], ['credit_batches.id'], name=op.f('fk_serial_ranges_batch_id_credit_batches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_serial_ranges')),
    sa.UniqueConstraint('batch_id', 'start', name='uq_serial_ranges_batch_start'),
    sa.UniqueConstraint('ref', 'batch_id', name='uq_serial_ranges_ref_batch')
    )
    with op.batch_alter_table('serial_ranges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serial_ranges_batch_id'), ['batch_id'], unique=False)


    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_LEDGER_DDL:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS serial_ranges_append_only ON serial_ranges")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS tanhui_append_only()")
    with op.batch_alter_table('serial_ranges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serial_ranges_batch_id'))

    op.drop_table('serial_ranges')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listings_status'))
        batch_op.drop_index(batch_op.f('ix_listings_seller_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_listings_batch_id'))

    op.drop_table('listings')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_ref')
        batch_op.drop_index(batch_op.f('ix_ledger_entries_batch_id'))

    op.drop_table('ledger_entries')
    op.drop_table('ledger_balances')
    with op.batch_alter_table('buffer_losses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buffer_losses_batch_id'))

    op.drop_table('buffer_losses')
    with op.batch_alter_table('project_transitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_transitions_project_id'))

    op.drop_table('project_transitions')
    with op.batch_alter_table('project_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_documents_project_id'))

    op.drop_table('project_documents')
    with op.batch_alter_table('credit_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_batches_project_id'))

    op.drop_table('credit_batches')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_projects_village_id'))
        batch_op.drop_index(batch_op.f('ix_projects_status'))
        batch_op.drop_index(batch_op.f('ix_projects_seller_organisation_id'))

    op.drop_table('projects')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regions_parent_id'))

    op.drop_table('regions')
