"""Stats: maintained aggregates of completed orders by day (retirement_stats) and by month (retirement_rollups).

The tables start empty. On a database that already has completed orders, run
`marketplace stats rebuild` once after upgrading; from then on every completion writes them in its own
transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:05:34

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('retirement_rollups',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('county_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('dimension', sa.String(length=16), nullable=False),
    sa.Column('key_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('vintage', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name=op.f('ck_retirement_rollups_dimension')),
    sa.CheckConstraint('units > 0', name=op.f('ck_retirement_rollups_units_positive')),
    sa.PrimaryKeyConstraint('month', 'county_id', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_rollups'))
    )
    with op.batch_alter_table('retirement_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_retirement_rollups_dimension_county_month', ['dimension', 'county_id', 'month'], unique=False)

    op.create_table('retirement_stats',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('buyer_organisation_id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('vintage', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seller_organisation_id', sa.Integer(), nullable=False),
    sa.Column('county_id', sa.Integer(), nullable=True),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_retirement_stats_amount_not_negative')),
    sa.CheckConstraint('orders >= 0 AND events >= 0', name=op.f('ck_retirement_stats_counts_not_negative')),
    sa.CheckConstraint('units > 0', name=op.f('ck_retirement_stats_units_positive')),
    sa.ForeignKeyConstraint(['buyer_organisation_id'], ['organisations.id'], name=op.f('fk_retirement_stats_buyer_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['county_id'], ['regions.id'], name=op.f('fk_retirement_stats_county_id_regions')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_retirement_stats_project_id_projects')),
    sa.ForeignKeyConstraint(['seller_organisation_id'], ['organisations.id'], name=op.f('fk_retirement_stats_seller_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['village_id'], ['regions.id'], name=op.f('fk_retirement_stats_village_id_regions')),
    sa.PrimaryKeyConstraint('day', 'buyer_organisation_id', 'village_id', 'project_id', 'vintage', name=op.f('pk_retirement_stats'))
    )
    with op.batch_alter_table('retirement_stats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retirement_stats_buyer_organisation_id'), ['buyer_organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retirement_stats_county_id'), ['county_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retirement_stats_seller_organisation_id'), ['seller_organisation_id'], unique=False)



def downgrade():
    with op.batch_alter_table('retirement_stats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retirement_stats_seller_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_retirement_stats_county_id'))
        batch_op.drop_index(batch_op.f('ix_retirement_stats_buyer_organisation_id'))

    op.drop_table('retirement_stats')
    with op.batch_alter_table('retirement_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_retirement_rollups_dimension_county_month')

    op.drop_table('retirement_rollups')
