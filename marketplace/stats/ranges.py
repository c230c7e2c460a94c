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


def _cumulative_at(key, joined, day: date, tag: str, months, days):
    """The cumulative-at-``day`` expression of each figure, and the FROM clause with its three rows joined."""
    this = day.replace(day=1)
    before = add_months(this, -1)
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


def scope_condition(key, county_id: int | None) -> sa.ColumnElement:
    """Every county: the rows of county 0. One county: its own total and buyer rows, and the every-county
    rows of its villages and projects."""
    if not county_id:
        return key.c.county_id == 0
    return sa.or_(key.c.county_id == county_id,
                  sa.and_(key.c.county_id == 0, key.c.key_county_id == county_id,
                          key.c.dimension.in_(("village", "project"))))


def range_statement(date_from: date | None, date_to: date | None, county_id: int | None) -> sa.Select:
    """One row per key of the scope: (dimension, key_id, vintage, units, amount_fen, orders, events) in
    the range; keys without a completion in it come back with zeros."""
    key = RetirementKey.__table__.alias("k")
    months, days = RetirementMonth.__table__, RetirementDay.__table__
    joined = key
    if date_to is not None:
        high, joined = _cumulative_at(key, joined, date_to, "b", months, days)
    else:
        high = {name: key.c[name] for name in SUMS}
    if date_from is not None:
        low, joined = _cumulative_at(key, joined, date_from - timedelta(days=1), "a", months, days)
        figures = {name: high[name] - low[name] for name in SUMS}
    else:
        figures = high
    return (sa.select(key.c.dimension, key.c.key_id, key.c.vintage,
                      *(figures[name].label(name) for name in SUMS))
            .select_from(joined).where(scope_condition(key, county_id)))


def read_range(session: so.Session, date_from: date | None, date_to: date | None,
               county_id: int | None) -> list[tuple[str, int, int, int, int, int, int]]:
    """The keys with something in the range: (dimension, key_id, vintage, units, fen, orders, events)."""
    rows = session.execute(range_statement(date_from, date_to, county_id)).all()
    return [tuple(row) for row in rows if row[3] or row[4] or row[5] or row[6]]


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
