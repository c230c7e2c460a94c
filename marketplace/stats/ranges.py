"""Any range of local days read from the cumulative tiers in a bounded number of reads.

A key's figure through day D (its "cumulative at D") is

- through the end of the month before D: 0 if the key's first month is later; its all-time figure if
  its last month is that month or earlier; otherwise its ``retirement_months`` row for that month
  (the rows are dense between the key's first and last months);
- plus from the 1st of D's month through D: 0 if the month has no completion of the key by D; the
  month's own figure if its last such day is D or earlier; otherwise its ``retirement_days`` row on D
  (dense between the month's first and last days with completions).

The range [A, B] is the cumulative at B less the cumulative at A − 1 (open ends: all time, nothing).
That is one SQL statement that joins each key in the scope to six rows found by exact key, all
contiguous in the tables' primary keys (county, month or day, key): one row per key comes back, the
same work for ten days as for two years, for a thousand orders as for a million. Figures are
integers, so the difference is exact.
"""

from __future__ import annotations

import calendar
import functools
from datetime import date, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.stats.models import RetirementDay, RetirementKey, RetirementMonth

#: The cumulative columns (the month table also keeps each month's own as ``month_<name>``).
SUMS = ("units", "amount_fen", "orders", "events")
CUM_KEY = ("county_id", "dimension", "key_id", "vintage")


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(month: date, n: int) -> date:
    year, index = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(year, index + 1, 1)


def _same_key(row, key) -> sa.ColumnElement:
    return sa.and_(*(row.c[column] == key.c[column] for column in CUM_KEY))


def _cumulative_at(key, joined, tag: str, months, days):
    """The cumulative-at-day expression of each figure (the day, its month and the month before as bound
    parameters ``<tag>_day``, ``<tag>_month``, ``<tag>_before``), and the FROM clause with the three rows joined."""
    day, this, before = (sa.bindparam(f"{tag}_{name}", type_=sa.Date) for name in ("day", "month", "before"))
    previous, current, on_day = months.alias(f"p{tag}"), months.alias(f"m{tag}"), days.alias(f"d{tag}")
    joined = (joined.outerjoin(previous, sa.and_(_same_key(previous, key), previous.c.month == before))
              .outerjoin(current, sa.and_(_same_key(current, key), current.c.month == this))
              .outerjoin(on_day, sa.and_(_same_key(on_day, key), on_day.c.day == day)))
    figures = {}
    for name in SUMS:
        through_last_month = sa.case(
            (sa.or_(key.c.first_month.is_(None), key.c.first_month > before), 0),
            (key.c.last_month <= before, key.c[name]), else_=previous.c[name])
        this_month = sa.case(
            (sa.or_(current.c.first_day.is_(None), current.c.first_day > day), 0),
            (current.c.last_day <= day, current.c[f"month_{name}"]), else_=on_day.c[name])
        figures[name] = through_last_month + this_month
    return figures, joined


def scope_condition(key, county: bool) -> sa.ColumnElement:
    """Every county: the rows of county 0. One county (bound as ``county``): its own total and buyer
    rows, and the every-county rows of its villages and projects."""
    if not county:
        return key.c.county_id == 0
    chosen = sa.bindparam("county", type_=sa.Integer)
    return sa.or_(key.c.county_id == chosen,
                  sa.and_(key.c.county_id == 0, key.c.key_county_id == chosen,
                          key.c.dimension.in_(("village", "project"))))


@functools.cache
def range_statement(has_from: bool, has_to: bool, county: bool) -> sa.Select:
    """One row per key of the scope: (dimension, key_id, vintage, units, amount_fen, orders, events, name,
    parent's level and name, grandparent's level and name, project's village) in the range; keys without
    a completion in it come back with zeros. Built once per shape, the dates and county bound."""
    from marketplace.accounts.models import Organisation
    from marketplace.registry.models import Project, Region

    key = RetirementKey.__table__.alias("k")
    months, days = RetirementMonth.__table__, RetirementDay.__table__
    joined = key
    if has_to:
        high, joined = _cumulative_at(key, joined, "b", months, days)
    else:
        high = {name: key.c[name] for name in SUMS}
    if has_from:
        low, joined = _cumulative_at(key, joined, "a", months, days)
        figures = {name: high[name] - low[name] for name in SUMS}
    else:
        figures = high
    # The names shown beside the figures, in the same statement: the buyer, the village with its
    # township and county, the project with its village.
    org, project = Organisation.__table__.alias("org"), Project.__table__.alias("project")
    village, parent, grandparent, project_village = (Region.__table__.alias(name) for name in (
        "village", "parent", "grandparent", "project_village"))
    joined = (joined.outerjoin(org, sa.and_(key.c.dimension == "buyer", org.c.id == key.c.key_id))
              .outerjoin(village, sa.and_(key.c.dimension == "village", village.c.id == key.c.key_id))
              .outerjoin(parent, parent.c.id == village.c.parent_id)
              .outerjoin(grandparent, grandparent.c.id == parent.c.parent_id)
              .outerjoin(project, sa.and_(key.c.dimension == "project", project.c.id == key.c.key_id))
              .outerjoin(project_village, project_village.c.id == project.c.village_id))
    return (sa.select(key.c.dimension, key.c.key_id, key.c.vintage, *(figures[name].label(name) for name in SUMS),
                      sa.func.coalesce(org.c.name, village.c.name, project.c.name).label("name"),
                      parent.c.level.label("parent_level"), parent.c.name.label("parent_name"),
                      grandparent.c.level.label("grandparent_level"), grandparent.c.name.label("grandparent_name"),
                      project_village.c.name.label("project_village"))
            .select_from(joined).where(scope_condition(key, county)))


def _end(tag: str, day: date) -> dict:
    this = day.replace(day=1)
    return {f"{tag}_day": day, f"{tag}_month": this, f"{tag}_before": add_months(this, -1)}


def read_range(session: so.Session, date_from: date | None, date_to: date | None, county_id: int | None) -> list:
    """The keys with something in the range, each as a row of :func:`range_statement`."""
    params = {}
    if date_to is not None:
        params |= _end("b", date_to)
    if date_from is not None:
        params |= _end("a", date_from - timedelta(days=1))
    if county_id:
        params["county"] = county_id
    rows = session.execute(range_statement(date_from is not None, date_to is not None, bool(county_id)), params)
    return [row for row in rows if row.units or row.amount_fen or row.orders or row.events]


def month_series(session: so.Session, date_from: date | None, date_to: date | None,
                 county_id: int | None) -> list[tuple[date, tuple[int, int, int, int]]]:
    """The total's figures month by month over the range: the months' own figures from their rows (one
    per month shown), the partial months at either end corrected with a day row each."""
    m, d = RetirementMonth.__table__, RetirementDay.__table__
    county = county_id or 0
    total = [m.c.county_id == county, m.c.dimension == "total", m.c.key_id == 0, m.c.vintage == 0]
    if date_from is not None:
        total.append(m.c.month >= date_from.replace(day=1))
    if date_to is not None:
        total.append(m.c.month <= date_to.replace(day=1))
    rows = {row.month: row for row in session.execute(
        sa.select(m.c.month, m.c.first_day, m.c.last_day, *(m.c[f"month_{name}"] for name in SUMS))
        .where(*total).order_by(m.c.month)) if row.first_day is not None}

    def own(row) -> list[int]:
        return [int(row[3 + i]) for i in range(len(SUMS))]

    def within(row, day: date) -> list[int]:
        """The month's figures from its 1st through ``day``."""
        if row.first_day > day:
            return [0] * len(SUMS)
        if row.last_day <= day:
            return own(row)
        found = session.execute(sa.select(*(d.c[name] for name in SUMS)).where(
            d.c.county_id == county, d.c.day == day, d.c.dimension == "total", d.c.key_id == 0,
            d.c.vintage == 0)).one()
        return [int(value) for value in found]

    series = {month: own(row) for month, row in rows.items()}
    if date_to is not None and date_to.replace(day=1) in rows:
        month = date_to.replace(day=1)
        series[month] = within(rows[month], date_to)
    if date_from is not None and date_from.day > 1 and date_from.replace(day=1) in rows:
        month = date_from.replace(day=1)
        before = within(rows[month], date_from - timedelta(days=1))
        series[month] = [a - b for a, b in zip(series[month], before, strict=True)]
    return [(month, tuple(values)) for month, values in sorted(series.items()) if any(values)]
