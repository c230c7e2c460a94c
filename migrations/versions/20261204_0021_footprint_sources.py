"""The guideline's emission source on every activity line; the planned and actual footprint versions by source;
what reduction measures achieved, and their evidence documents.

Existing lines get the source their factor code names (transport.hsr → rail_travel, venue.grid_* →
venue_electricity …), else their category's first source. A plan's versions by source are filled from the
event's lines only where those lines still add up to the version per category (otherwise they stay empty:
the plan was made from lines that have changed since). Plans made before ``coach_travel`` existed get it in
their boundary: included where the event has coach lines, else left out with the reason said.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:30:00

"""
import json
import re

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

#: As footprint.sources on the day of this revision (a migration never imports the application).
KEYWORDS = (
    ("transport", r"flight|air|plane", "air_travel"),
    ("transport", r"hsr|rail|train", "rail_travel"),
    ("transport", r"metro|subway|light_rail", "metro_travel"),
    ("transport", r"taxi|ride", "taxi_travel"),
    ("transport", r"coach|bus|shuttle", "coach_travel"),
    ("transport", r"diesel|petrol|gasoline|fuel|official", "official_cars"),
    ("transport", r"car", "private_car_travel"),
    ("venue", r"grid|electric|power", "venue_electricity"),
    ("venue", r"heat|steam", "venue_heat"),
    ("waste", r"landfill", "waste_landfill"),
    ("waste", r"incinerat", "waste_incineration"),
)
CATEGORY_DEFAULTS = {
    "transport": "official_cars", "catering": "catering", "accommodation": "accommodation",
    "venue": "venue_stationary_fuel", "materials": "materials", "waste": "waste_landfill",
}
COACH_LEFT_OUT = "计划制定时尚未单列此排放源；活动无大巴或接驳车出行"


def default_source(category, factor_code):
    name = (factor_code or "").split(".", 1)[-1].lower()
    for keyword_category, pattern, code in KEYWORDS:
        if keyword_category == category and re.search(pattern, name):
            return code
    return CATEGORY_DEFAULTS[category]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


lines = sa.table("activity_lines", sa.column("id", sa.Integer), sa.column("source", sa.String))
plans = sa.table("neutrality_plans", sa.column("id", sa.Integer), sa.column("boundary", sa.JSON),
                 sa.column("planned_by_source", sa.JSON), sa.column("actual_by_source", sa.JSON))


def _fill(conn):
    rows = conn.execute(sa.text(
        "SELECT l.id, l.category, f.code FROM activity_lines l JOIN emission_factors f ON f.id = l.factor_id")).all()
    for line_id, category, code in rows:
        conn.execute(lines.update().where(lines.c.id == line_id).values(source=default_source(category, code)))
    for plan_id, event_id, boundary, planned, actual in conn.execute(sa.text(
            "SELECT id, event_id, boundary, planned_by_category, actual_by_category FROM neutrality_plans")).all():
        by_category, by_source = {}, {}
        for category, source, units in conn.execute(sa.text(
                "SELECT category, source, SUM(emissions_units) FROM activity_lines WHERE event_id = :e "
                "GROUP BY category, source"), {"e": event_id}):
            by_category[category] = by_category.get(category, 0) + int(units)
            by_source[source] = int(units)

        def matches(version):
            version = _json(version)
            return version is not None and {k: int(v) for k, v in version.items() if int(v)} == {
                k: v for k, v in by_category.items() if v}

        boundary = _json(boundary)
        if "coach_travel" not in boundary:
            has_coach = by_source.get("coach_travel", 0) > 0
            boundary["coach_travel"] = {"included": has_coach, "reason": "" if has_coach else COACH_LEFT_OUT}
        conn.execute(plans.update().where(plans.c.id == plan_id).values(
            boundary=boundary, planned_by_source=dict(by_source) if matches(planned) else None,
            actual_by_source=dict(by_source) if matches(actual) else None))


def upgrade():
    with op.batch_alter_table('activity_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=32), nullable=True))
    with op.batch_alter_table('neutrality_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_by_source', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('actual_by_source', sa.JSON(), nullable=True))
    _fill(op.get_bind())
    with op.batch_alter_table('activity_lines', schema=None) as batch_op:
        batch_op.alter_column('source', existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table('reduction_measures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('achieved_units', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('achieved_recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(op.f('ck_reduction_measures_achieved_not_negative'),
                                         'achieved_units IS NULL OR achieved_units >= 0')
    op.create_table('reduction_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_reduction_evidence_size_positive')),
    sa.ForeignKeyConstraint(['measure_id'], ['reduction_measures.id'],
                            name=op.f('fk_reduction_evidence_measure_id_reduction_measures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_reduction_evidence_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reduction_evidence')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_reduction_evidence_stored_name'))
    )
    with op.batch_alter_table('reduction_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reduction_evidence_measure_id'), ['measure_id'], unique=False)


def downgrade():
    with op.batch_alter_table('reduction_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reduction_evidence_measure_id'))
    op.drop_table('reduction_evidence')
    with op.batch_alter_table('reduction_measures', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_reduction_measures_achieved_not_negative'), type_='check')
        batch_op.drop_column('achieved_recorded_at')
        batch_op.drop_column('achieved_units')
    with op.batch_alter_table('neutrality_plans', schema=None) as batch_op:
        batch_op.drop_column('actual_by_source')
        batch_op.drop_column('planned_by_source')
    with op.batch_alter_table('activity_lines', schema=None) as batch_op:
        batch_op.drop_column('source')
