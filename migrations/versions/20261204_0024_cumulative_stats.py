"""Stats: cumulative tiers per key (retirement_keys, retirement_months, retirement_days) replace the monthly
rollups and the yearly totals, so any date range is read as the difference of two cumulative rows per key.

The upgrade fills the new tables from retirement_stats (the same integers), so no `marketplace stats
rebuild` is needed; a rebuild gives the same rows. The downgrade fills the rollups and totals back from
retirement_stats.

Revision ID: 0024
Revises: 0025
Create Date: 2026-12-04 18:30:00

"""
from collections import defaultdict
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0025'
branch_labels = None
depends_on = None

DIMENSIONS = "dimension IN ('total', 'buyer', 'village', 'project')"
SUMS = ("units", "amount_fen", "orders", "events")


def _key_columns():
    return [sa.Column('county_id', sa.Integer(), autoincrement=False, nullable=False),
            sa.Column('dimension', sa.String(length=16), nullable=False),
            sa.Column('key_id', sa.Integer(), autoincrement=False, nullable=False),
            sa.Column('vintage', sa.Integer(), autoincrement=False, nullable=False)]


def _sum_columns(prefix=""):
    return [sa.Column(f'{prefix}units', sa.BigInteger(), nullable=False),
            sa.Column(f'{prefix}amount_fen', sa.BigInteger(), nullable=False),
            sa.Column(f'{prefix}orders', sa.Integer(), nullable=False),
            sa.Column(f'{prefix}events', sa.Integer(), nullable=False)]


def _stats_rows(bind):
    return bind.execute(sa.text(
        "SELECT day, buyer_organisation_id, village_id, project_id, vintage, county_id, units, amount_fen, orders, "
        "events FROM retirement_stats")).all()


def _as_date(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _add_months(month, n):
    year, index = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(year, index + 1, 1)


def _fill_cumulative(bind):
    """The same rows as marketplace.stats.aggregates writes, from retirement_stats, in Python."""
    own = defaultdict(lambda: [0, 0, 0, 0])  # (key, day) → the day's own figures
    key_county = {}
    for day, buyer, village, project, vintage, county, units, fen, orders, events in _stats_rows(bind):
        day = _as_date(day)
        keys = [((0, 'total', 0, 0), True), ((0, 'buyer', buyer, 0), True), ((0, 'village', village, 0), False),
                ((0, 'project', project, vintage), False)]
        if county:
            keys += [((county, 'total', 0, 0), True), ((county, 'buyer', buyer, 0), True)]
        key_county[(0, 'village', village, 0)] = county
        key_county[(0, 'project', project, vintage)] = county
        for key, counted in keys:
            row = own[(key, day)]
            row[0] += units
            row[1] += fen
            if counted:
                row[2] += orders
                row[3] += events
    by_key = defaultdict(dict)
    for (key, day), figures in own.items():
        by_key[key][day] = figures
    keys, months, days = [], [], []
    for key, per_day in sorted(by_key.items()):
        named = dict(zip(("county_id", "dimension", "key_id", "vintage"), key))
        by_month = defaultdict(dict)
        for day, figures in per_day.items():
            by_month[day.replace(day=1)][day] = figures
        first, last = min(by_month), max(by_month)
        running = [0, 0, 0, 0]
        month = first
        while month <= last:
            in_month = by_month.get(month, {})
            month_own = [sum(f[i] for f in in_month.values()) for i in range(4)]
            running = [a + b for a, b in zip(running, month_own)]
            months.append({**named, "month": month, **dict(zip(SUMS, running)),
                           **{f"month_{n}": v for n, v in zip(SUMS, month_own)},
                           "first_day": min(in_month) if in_month else None,
                           "last_day": max(in_month) if in_month else None})
            if in_month:
                within = [0, 0, 0, 0]
                day, end = min(in_month), max(in_month)
                while day <= end:
                    within = [a + b for a, b in zip(within, in_month.get(day, [0, 0, 0, 0]))]
                    days.append({**named, "day": day, **dict(zip(SUMS, within))})
                    day += timedelta(days=1)
            month = _add_months(month, 1)
        keys.append({**named, "key_county_id": key_county.get(key), "first_month": first, "last_month": last,
                     **dict(zip(SUMS, running))})
    for name, rows in (("retirement_keys", keys), ("retirement_months", months), ("retirement_days", days)):
        if rows:
            table = sa.table(name, *(sa.column(c) for c in rows[0]))
            bind.execute(table.insert(), rows)


def _fill_rollups(bind):
    monthly = defaultdict(lambda: [0, 0, 0, 0])
    for day, buyer, village, project, vintage, county, units, fen, orders, events in _stats_rows(bind):
        month = _as_date(day).replace(day=1)
        for county_key in {0, county or 0}:
            for key, counted in (((('total', 0, 0)), True), (('buyer', buyer, 0), True),
                                 (('village', village, 0), False), (('project', project, vintage), False)):
                row = monthly[(month, county_key, *key)]
                row[0] += units
                row[1] += fen
                if counted:
                    row[2] += orders
                    row[3] += events
    totals = defaultdict(lambda: [0, 0, 0, 0])
    for (month, *rest), figures in monthly.items():
        for year in (month.year, 0):
            totals[(year, *rest)] = [a + b for a, b in zip(totals[(year, *rest)], figures)]
    for name, period, rows in (("retirement_rollups", "month", monthly), ("retirement_totals", "year", totals)):
        if rows:
            table = sa.table(name, *(sa.column(c) for c in (period, "county_id", "dimension", "key_id", "vintage",
                                                             *SUMS)))
            bind.execute(table.insert(), [dict(zip((period, "county_id", "dimension", "key_id", "vintage", *SUMS),
                                                   (*key, *figures))) for key, figures in rows.items()])


def upgrade():
    op.create_table('retirement_keys',
    *_key_columns(),
    sa.Column('key_county_id', sa.Integer(), nullable=True),
    sa.Column('first_month', sa.Date(), nullable=True),
    sa.Column('last_month', sa.Date(), nullable=True),
    *_sum_columns(),
    sa.CheckConstraint(DIMENSIONS, name=op.f('ck_retirement_keys_dimension')),
    sa.PrimaryKeyConstraint('county_id', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_keys'))
    )
    op.create_table('retirement_months',
    sa.Column('county_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    *_key_columns()[1:],
    *_sum_columns(),
    *_sum_columns("month_"),
    sa.Column('first_day', sa.Date(), nullable=True),
    sa.Column('last_day', sa.Date(), nullable=True),
    sa.CheckConstraint(DIMENSIONS, name=op.f('ck_retirement_months_dimension')),
    sa.PrimaryKeyConstraint('county_id', 'month', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_months'))
    )
    with op.batch_alter_table('retirement_months', schema=None) as batch_op:
        batch_op.create_index('ix_retirement_months_key_month', ['county_id', 'dimension', 'key_id', 'vintage', 'month'],
                              unique=False)
    op.create_table('retirement_days',
    sa.Column('county_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *_key_columns()[1:],
    *_sum_columns(),
    sa.CheckConstraint(DIMENSIONS, name=op.f('ck_retirement_days_dimension')),
    sa.PrimaryKeyConstraint('county_id', 'day', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_days'))
    )
    _fill_cumulative(op.get_bind())
    op.drop_table('retirement_totals')
    with op.batch_alter_table('retirement_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_retirement_rollups_dimension_county_month')
    op.drop_table('retirement_rollups')


def downgrade():
    op.create_table('retirement_rollups',
    sa.Column('month', sa.Date(), nullable=False),
    *_key_columns(),
    *_sum_columns(),
    sa.CheckConstraint(DIMENSIONS, name=op.f('ck_retirement_rollups_dimension')),
    sa.CheckConstraint('units > 0', name=op.f('ck_retirement_rollups_units_positive')),
    sa.PrimaryKeyConstraint('month', 'county_id', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_rollups'))
    )
    with op.batch_alter_table('retirement_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_retirement_rollups_dimension_county_month', ['dimension', 'county_id', 'month'],
                              unique=False)
    op.create_table('retirement_totals',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    *_key_columns(),
    *_sum_columns(),
    sa.CheckConstraint(DIMENSIONS, name=op.f('ck_retirement_totals_dimension')),
    sa.CheckConstraint('units > 0', name=op.f('ck_retirement_totals_units_positive')),
    sa.PrimaryKeyConstraint('year', 'county_id', 'dimension', 'key_id', 'vintage', name=op.f('pk_retirement_totals'))
    )
    _fill_rollups(op.get_bind())
    op.drop_table('retirement_days')
    with op.batch_alter_table('retirement_months', schema=None) as batch_op:
        batch_op.drop_index('ix_retirement_months_key_month')
    op.drop_table('retirement_months')
    op.drop_table('retirement_keys')
