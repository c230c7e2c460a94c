"""Forest parcels (小班) of projects: geometry as hex WKB (WGS84), areas, a bounding box as coarse index.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 04:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('project_parcels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=50), nullable=False),
    sa.Column('forest_type', sa.String(length=100), nullable=False),
    sa.Column('declared_area_ha', sa.Numeric(precision=12, scale=4), nullable=False),
    sa.Column('geodesic_area_ha', sa.Numeric(precision=12, scale=4), nullable=False),
    sa.Column('geometry_wkb', sa.Text(), nullable=False),
    sa.Column('source_crs', sa.String(length=16), nullable=False),
    sa.Column('vertex_count', sa.Integer(), nullable=False),
    sa.Column('min_lon', sa.Double(), nullable=False),
    sa.Column('min_lat', sa.Double(), nullable=False),
    sa.Column('max_lon', sa.Double(), nullable=False),
    sa.Column('max_lat', sa.Double(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('declared_area_ha > 0', name=op.f('ck_project_parcels_declared_area_positive')),
    sa.CheckConstraint('geodesic_area_ha > 0', name=op.f('ck_project_parcels_geodesic_area_positive')),
    sa.CheckConstraint('min_lon <= max_lon AND min_lat <= max_lat', name=op.f('ck_project_parcels_bbox_ordered')),
    sa.CheckConstraint('vertex_count >= 4', name=op.f('ck_project_parcels_vertex_count')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_parcels_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_parcels')),
    sa.UniqueConstraint('project_id', 'identifier', name='uq_project_parcels_project_identifier')
    )
    with op.batch_alter_table('project_parcels', schema=None) as batch_op:
        batch_op.create_index('ix_project_parcels_bbox', ['min_lon', 'min_lat'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_parcels_project_id'), ['project_id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # An R-tree-like index on the bounding boxes (the overlap check's candidate search).
        op.execute("CREATE INDEX ix_project_parcels_box ON project_parcels "
                   "USING gist (box(point(min_lon, min_lat), point(max_lon, max_lat)))")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_project_parcels_box")
    with op.batch_alter_table('project_parcels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_parcels_project_id'))
        batch_op.drop_index('ix_project_parcels_bbox')
    op.drop_table('project_parcels')
