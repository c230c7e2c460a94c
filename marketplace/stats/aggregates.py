"""The maintained aggregates of completed orders: added to as each order completes, rebuilt from the ledger.

A completed order counts on the local day of ``completed_at`` (the platform's time zone). It adds to
one row per (day, buyer, village, project, vintage) in ``retirement_stats`` and, for each key it
touches (the total, its buyer, its villages, its projects and vintages; the total and the buyer also
for the village's county), to the cumulative rows of ``retirement_months`` and ``retirement_days``
(see stats/models.py): :func:`apply_deltas` changes a bounded number of rows for a change on any day,
back-dated or negative included. Units come from the order's retirement ranges in the ledger
(``ref = order:<id>``), money from its lines, in integer fen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core import quantities
from marketplace.core.db import insert
from marketplace.core.i18n import platform_zone
from marketplace.footprint.models import Event
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import REGION_ANCESTORS, CreditBatch, Project, Region, SerialRange
from marketplace.stats.models import (
    ROLLUP_DIMENSIONS,
    RetirementDay,
    RetirementKey,
    RetirementMonth,
    RetirementStat,
)
from marketplace.stats.ranges import add_months, month_end

#: Each dimension's key, as columns of the daily rows. The monthly and yearly rows store the same key
#: as (key_id, vintage), with zeros where the key is shorter; months and sellers have no rows of their own.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "total": (), "buyer": ("buyer_organisation_id",), "village": ("village_id",),
    "project": ("project_id", "vintage"), "month": ("day",), "seller": ("seller_organisation_id",)}
#: Orders and events are counted in these only: an order can buy from several villages and projects.
COUNTED = ("total", "buyer", "month")

#: A cumulative row's key: (county scope, dimension, key_id, vintage).
CUM_KEY = ("county_id", "dimension", "key_id", "vintage")
#: Dimensions with rows per county too; a county's villages and projects are its every-county rows.
PER_COUNTY = ("total", "buyer")
SUMS = ("units", "amount_fen", "orders", "events")


def zone() -> ZoneInfo:
    return platform_zone()


def local_day(moment: datetime, tz: ZoneInfo | None = None) -> date:
    return moment.astimezone(tz or zone()).date()


def key_of(dimension: str, row) -> tuple:
    """A row's key in a dimension: any row with the daily table's column names (a :class:`DayKey`, a
    result row); months as "YYYY-MM"."""
    if dimension == "month":
        return (row.day.strftime("%Y-%m"),)
    return tuple(getattr(row, column) for column in KEY_COLUMNS[dimension])


def key_of_stored(dimension: str, key_id: int, vintage: int) -> tuple:
    """The key of a monthly or yearly row."""
    return (key_id, vintage)[:len(KEY_COLUMNS[dimension])]


@dataclass(slots=True)
class Sums:
    """What one aggregate row holds."""

    units: int = 0
    amount_fen: int = 0
    orders: int = 0
    events: int = 0

    def add(self, other: Sums) -> None:
        self.units += other.units
        self.amount_fen += other.amount_fen
        self.orders += other.orders
        self.events += other.events

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.units + other.units, self.amount_fen + other.amount_fen, self.orders + other.orders,
                    self.events + other.events)

    def __sub__(self, other: Sums) -> Sums:
        return Sums(self.units - other.units, self.amount_fen - other.amount_fen, self.orders - other.orders,
                    self.events - other.events)

    def __neg__(self) -> Sums:
        return Sums() - self

    def __bool__(self) -> bool:
        return bool(self.units or self.amount_fen or self.orders or self.events)

    def uncounted(self) -> Sums:
        """The same sums without orders and events, for a dimension that does not count them."""
        return Sums(self.units, self.amount_fen)

    def values(self) -> dict:
        return {"units": self.units, "amount_fen": self.amount_fen, "orders": self.orders, "events": self.events}


def _merge(target: dict[tuple, Sums], source: dict[tuple, Sums]) -> None:
    for key, sums in source.items():
        target[key].add(sums)


# --- batch facts (project, vintage, village, county, seller) ------------------------------------

@dataclass(frozen=True)
class BatchFacts:
    project_id: int
    vintage: int
    village_id: int
    county_id: int | None
    seller_id: int


def batch_facts(session: so.Session, batch_ids: Iterable[int] | None = None) -> dict[int, BatchFacts]:
    stmt = (sa.select(CreditBatch.id, CreditBatch.vintage_end, Project.id, Project.village_id,
                      Project.seller_organisation_id).join(Project, Project.id == CreditBatch.project_id))
    if batch_ids is not None:
        stmt = stmt.where(CreditBatch.id.in_(list(batch_ids)))
    rows = session.execute(stmt).all()
    counties = county_of_villages(session, {row[3] for row in rows})
    return {batch_id: BatchFacts(project_id, vintage_end.year, village_id, counties.get(village_id), seller_id)
            for batch_id, vintage_end, project_id, village_id, seller_id in rows}


def county_of_villages(session: so.Session, village_ids: Iterable[int]) -> dict[int, int | None]:
    regions = session.scalars(sa.select(Region).where(Region.id.in_(list(village_ids)))
                              .options(REGION_ANCESTORS)).all()
    result = {}
    for region in regions:
        county = region.ancestor("county")
        result[region.id] = county.id if county else None
    return result


# --- one order's rows -----------------------------------------------------------------------------

class DayKey(NamedTuple):
    """A daily row's key (the first five) and the facts stored beside it, named as its columns."""

    day: date
    buyer_organisation_id: int
    village_id: int
    project_id: int
    vintage: int
    seller_organisation_id: int
    county_id: int | None


def _stored_key_getter(dimension: str) -> Callable[[tuple], tuple[int, int]]:
    """(key_id, vintage) of a DayKey with a 0 appended: the dimension's columns, padded with that 0."""
    positions = [DayKey._fields.index(column) for column in KEY_COLUMNS[dimension]]
    return itemgetter(*positions, *[len(DayKey._fields)] * (2 - len(positions)))


def day_key(day: date, buyer_id: int, facts: BatchFacts) -> DayKey:
    """The daily row a line of a batch adds to."""
    return DayKey(day, buyer_id, facts.village_id, facts.project_id, facts.vintage, facts.seller_id, facts.county_id)


def _daily_rows(*, day: date, buyer_id: int, first_for_event: bool, units_by_batch: dict[int, int],
                fen_by_batch: dict[int, int], facts: dict[int, BatchFacts]) -> dict[DayKey, Sums]:
    """One completed order's daily rows. The order (and its event, the first time) counts once, on
    its first project and vintage, so counts add up across days, buyers and months."""
    rows: dict[DayKey, Sums] = defaultdict(Sums)
    for batch_id, units in units_by_batch.items():
        sums = rows[day_key(day, buyer_id, facts[batch_id])]
        sums.units += units
        sums.amount_fen += fen_by_batch.get(batch_id, 0)
    if rows:
        first = min(rows, key=lambda key: (key.project_id, key.vintage))
        rows[first].orders = 1
        rows[first].events = 1 if first_for_event else 0
    return rows


#: Per dimension: its (key_id, vintage) getter on a DayKey with a 0 appended. Worked out once.
_STORED_KEYS = {dimension: _stored_key_getter(dimension) for dimension in ROLLUP_DIMENSIONS}


def key_deltas(daily: dict[DayKey, Sums]) -> tuple[dict[tuple, Sums], dict[tuple, int | None]]:
    """Daily rows → what each cumulative key (:data:`CUM_KEY`) gains, and the county of each village
    and project key. Orders and events count in the total and per buyer only."""
    deltas: dict[tuple, Sums] = defaultdict(Sums)
    counties: dict[tuple, int | None] = {}
    for key, sums in daily.items():
        padded = (*key, 0)
        for dimension, stored_key in _STORED_KEYS.items():
            key_id, vintage = stored_key(padded)
            part = sums if dimension in COUNTED else sums.uncounted()
            if dimension in PER_COUNTY:
                for county in {0, key.county_id or 0}:
                    deltas[(county, dimension, key_id, vintage)].add(part)
            else:
                deltas[(0, dimension, key_id, vintage)].add(part)
                counties[(0, dimension, key_id, vintage)] = key.county_id
    return dict(deltas), counties


# --- an order completes -----------------------------------------------------------------------------

def on_order_completed(_sender=None, *, session: so.Session, order: Order) -> None:
    """The orders feature's ``order_completed`` signal: the aggregates move in the same transaction."""
    record_completion(session, order)


def record_completion(session: so.Session, order: Order) -> None:
    """Add a just-completed order to the aggregates, in the caller's transaction.

    Called once per order (the orders feature's ``order_completed`` signal) when the order moves to
    completed (a conditional UPDATE that only one process can win), so an order is never counted twice."""
    units_by_batch: dict[int, int] = defaultdict(int)
    for batch_id, units in session.execute(
            sa.select(SerialRange.batch_id, SerialRange.end - SerialRange.start)
            .where(SerialRange.ref == order.ref, SerialRange.kind == "retirement")):
        units_by_batch[batch_id] += units
    fen_by_batch: dict[int, int] = defaultdict(int)
    for line in order.lines:
        fen_by_batch[line.batch_id] += quantities.fen(line.amount_cny)
    day = local_day(order.completed_at)
    daily = _daily_rows(day=day, buyer_id=order.buyer_organisation_id,
                        first_for_event=_first_completion_of_event(session, order), units_by_batch=units_by_batch,
                        fen_by_batch=fen_by_batch, facts=batch_facts(session, units_by_batch))
    record_daily(session, day, daily)
    session.flush()


def record_daily(session: so.Session, day: date, daily: dict[DayKey, Sums]) -> None:
    """Add (or, with negative sums, take away) one day's rows: the daily table, then the cumulative
    tiers. Each table in its key order, so concurrent completions lock rows in the same order."""
    _upsert(session, RetirementStat, [(key._asdict(), sums.values()) for key, sums in sorted(daily.items())],
            fixed=("seller_organisation_id", "county_id"))
    apply_deltas(session, day, *key_deltas(daily))


def _first_completion_of_event(session: so.Session, order: Order) -> bool:
    if order.event_id is None:
        return False
    # Two orders for one event completing at once: the event's row lock makes the second wait and then
    # see the first as completed, so the event is counted once (PostgreSQL; SQLite has one writer).
    session.execute(sa.select(Event.id).where(Event.id == order.event_id).with_for_update())
    earlier = session.scalar(sa.select(sa.func.count()).select_from(Order).where(
        Order.event_id == order.event_id, Order.status == "completed", Order.id != order.id))
    return earlier == 0


def _upsert(session: so.Session, model, rows: list[tuple[dict, dict]], fixed: tuple[str, ...] = ()) -> None:
    """One INSERT … ON CONFLICT DO UPDATE adding each row's sums to its row (``fixed`` columns are set on
    insert only), for (key, sums) pairs with distinct keys, written in the order given: safe under
    concurrency, and one round trip however many rows."""
    if not rows:
        return
    table = model.__table__
    names = list(rows[0][1])
    stmt = insert(session, table).values([{**key, **sums} for key, sums in rows])
    stmt = stmt.on_conflict_do_update(index_elements=[name for name in rows[0][0] if name not in fixed],
                                      set_={name: table.c[name] + stmt.excluded[name] for name in names})
    session.execute(stmt)


# --- the cumulative tiers ---------------------------------------------------------------------------

def _key_in(table: sa.Table, keys: list[tuple]):
    return sa.tuple_(*(table.c[column] for column in CUM_KEY)).in_(keys)


def _key_is_param(table: sa.Table):
    return sa.and_(*(table.c[column] == sa.bindparam(f"p_{column}") for column in CUM_KEY))


def _added(table: sa.Table, prefix: str = "") -> dict:
    return {prefix + name: table.c[prefix + name] + sa.bindparam(f"p_{name}") for name in SUMS}


def _params(key: tuple, sums: Sums, **more) -> dict:
    return {**{f"p_{column}": value for column, value in zip(CUM_KEY, key, strict=True)},
            **{f"p_{name}": value for name, value in sums.values().items()}, **more}


def _month_row(key: tuple, month: date, cumulative: Sums, own: Sums, day: date | None) -> dict:
    return {**dict(zip(CUM_KEY, key, strict=True)), "month": month, **cumulative.values(),
            **{f"month_{name}": value for name, value in own.values().items()}, "first_day": day, "last_day": day}


def _day_row(key: tuple, day: date, cumulative: Sums) -> dict:
    return {**dict(zip(CUM_KEY, key, strict=True)), "day": day, **cumulative.values()}


def _months(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first = add_months(first, 1)


def _days(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def apply_deltas(session: so.Session, day: date, deltas: dict[tuple, Sums],
                 key_counties: dict[tuple, int | None] | None = None) -> None:
    """Add each key's sums (negative ones take away) on ``day`` to the cumulative tiers.

    A key's row in retirement_keys is locked first (PostgreSQL; SQLite has one writer), so its tiers
    change one transaction at a time. Then, per key: its month rows from ``day``'s month on gain the
    sums (months missing between its last month and this one are filled with the running total, or
    before its first month with these sums), and its day rows from ``day`` to the month's end gain
    them (days missing between the month's last day and ``day`` filled the same way). That is at most
    31 day rows and one month row per month since ``day``, whatever the number of orders."""
    deltas = {key: sums for key, sums in deltas.items() if sums}
    if not deltas:
        return
    k, m, d = RetirementKey.__table__, RetirementMonth.__table__, RetirementDay.__table__
    month, last_of_month = day.replace(day=1), month_end(day)
    keys = sorted(deltas)
    key_counties = key_counties or {}
    session.execute(insert(session, k).values([
        {**dict(zip(CUM_KEY, key, strict=True)), "key_county_id": key_counties.get(key), "first_month": None,
         "last_month": None, **Sums().values()} for key in keys]).on_conflict_do_nothing(index_elements=list(CUM_KEY)))
    old = {tuple(row[:4]): row for row in session.execute(
        sa.select(*(k.c[column] for column in CUM_KEY), k.c.first_month, k.c.last_month, *(k.c[n] for n in SUMS))
        .where(_key_in(k, keys)).order_by(*(k.c[column] for column in CUM_KEY)).with_for_update())}
    inside = [key for key in keys if old[key].first_month is not None
              and old[key].first_month <= month <= old[key].last_month]
    this_month = {tuple(row[:4]): row for row in session.execute(
        sa.select(*(m.c[column] for column in CUM_KEY), m.c.first_day, m.c.last_day,
                  *(m.c[f"month_{name}"] for name in SUMS))
        .where(m.c.month == month, _key_in(m, inside)))} if inside else {}
    month_rows, month_shifts, month_owns, day_rows, day_shifts, key_moves = [], [], [], [], [], []
    for key in keys:
        sums, before = deltas[key], old[key]
        total = Sums(before.units, before.amount_fen, before.orders, before.events)
        first, last = before.first_month, before.last_month
        days_before = None  # the month's (first day, last day, own sums) before this change, if it had days
        if first is None:
            month_rows.append(_month_row(key, month, sums, sums, day))
        elif month > last:
            month_rows += [_month_row(key, gap, total, Sums(), None)
                           for gap in _months(add_months(last, 1), add_months(month, -1))]
            month_rows.append(_month_row(key, month, total + sums, sums, day))
        elif month < first:
            month_rows.append(_month_row(key, month, sums, sums, day))
            month_rows += [_month_row(key, gap, sums, Sums(), None)
                           for gap in _months(add_months(month, 1), add_months(first, -1))]
            month_shifts.append(_params(key, sums, p_low=first))
        else:
            row = this_month[key]
            month_shifts.append(_params(key, sums, p_low=month))
            month_owns.append(_params(key, sums, p_low=month, p_first=min(row.first_day or day, day),
                                      p_last=max(row.last_day or day, day)))
            if row.first_day is not None:
                days_before = (row.first_day, row.last_day,
                               Sums(row.month_units, row.month_amount_fen, row.month_orders, row.month_events))
        if days_before is None:
            day_rows.append(_day_row(key, day, sums))
        else:
            first_day, last_day, own = days_before
            if day > last_day:
                day_rows += [_day_row(key, gap, own) for gap in _days(last_day + timedelta(days=1),
                                                                       day - timedelta(days=1))]
                day_rows.append(_day_row(key, day, own + sums))
            elif day < first_day:
                day_rows.append(_day_row(key, day, sums))
                day_rows += [_day_row(key, gap, sums) for gap in _days(day + timedelta(days=1),
                                                                        first_day - timedelta(days=1))]
                day_shifts.append(_params(key, sums, p_low=first_day, p_high=last_of_month))
            else:
                day_shifts.append(_params(key, sums, p_low=day, p_high=last_of_month))
        key_moves.append(_params(key, sums, p_first=month if first is None else min(first, month),
                                 p_last=month if last is None else max(last, month)))
    if month_rows:
        session.execute(m.insert(), month_rows)
    if month_shifts:
        session.execute(m.update().where(_key_is_param(m), m.c.month >= sa.bindparam("p_low")).values(_added(m)),
                        month_shifts)
    if month_owns:
        session.execute(m.update().where(_key_is_param(m), m.c.month == sa.bindparam("p_low"))
                        .values(**_added(m, "month_"), first_day=sa.bindparam("p_first"),
                                last_day=sa.bindparam("p_last")), month_owns)
    if day_rows:
        session.execute(d.insert(), day_rows)
    if day_shifts:
        session.execute(d.update().where(_key_is_param(d), d.c.day >= sa.bindparam("p_low"),
                                         d.c.day <= sa.bindparam("p_high")).values(_added(d)), day_shifts)
    session.execute(k.update().where(_key_is_param(k)).values(
        **_added(k), first_month=sa.bindparam("p_first"), last_month=sa.bindparam("p_last")), key_moves)


# --- rebuilding from the orders and the ledger ----------------------------------------------------

AGGREGATE_MODELS = (RetirementDay, RetirementMonth, RetirementKey, RetirementStat)


def rebuild(session: so.Session, progress: Callable[[int, int], None] | None = None, chunk: int = 5000) -> int:
    """Recompute the aggregates from the completed orders, their ledger ranges and their lines, in the
    caller's transaction. Returns the number of orders counted.

    On PostgreSQL with set-based SQL (INSERT … SELECT, window functions for the running totals, the
    indexes dropped while the rows go in and built once after); elsewhere (SQLite) by streaming the
    orders in completion order and adding each day with :func:`record_daily`."""
    for model in AGGREGATE_MODELS:
        session.execute(sa.delete(model))
    if session.get_bind().dialect.name == "postgresql":
        done = _rebuild_postgresql(session)
        if progress:
            progress(done, done)
        return done
    total = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == "completed")) or 0
    facts = batch_facts(session)
    tz = zone()
    seen_events: set[int] = set()
    done = 0
    current: date | None = None
    daily: dict[DayKey, Sums] = defaultdict(Sums)
    for orders in _completed_orders(session, chunk):
        order_ids = [order_id for order_id, *_rest in orders]
        units = _retired_units(session, order_ids)
        fen = _line_fen(session, order_ids)
        for order_id, buyer_id, event_id, completed_at in orders:
            day = local_day(completed_at, tz)
            if day != current:
                if daily:
                    record_daily(session, current, daily)
                current, daily = day, defaultdict(Sums)
            _merge(daily, _daily_rows(day=day, buyer_id=buyer_id, units_by_batch=units[order_id],
                                      first_for_event=event_id is not None and event_id not in seen_events,
                                      fen_by_batch=fen[order_id], facts=facts))
            if event_id is not None:
                seen_events.add(event_id)
        done += len(orders)
        if progress:
            progress(done, total)
    if daily:
        record_daily(session, current, daily)
    session.flush()
    if progress:
        progress(done, total)
    return done


def _completed_orders(session: so.Session, chunk: int) -> Iterator[list[tuple]]:
    """(id, buyer, event, completed_at) of the completed orders in completion order, ``chunk`` at a time."""
    stmt = (sa.select(Order.id, Order.buyer_organisation_id, Order.event_id, Order.completed_at)
            .where(Order.status == "completed").order_by(Order.completed_at, Order.id))
    rows: list[tuple] = []
    for row in session.execute(stmt.execution_options(yield_per=chunk)):
        rows.append(tuple(row))
        if len(rows) >= chunk:
            yield rows
            rows = []
    if rows:
        yield rows


def _retired_units(session: so.Session, order_ids: list[int]) -> dict[int, dict[int, int]]:
    """Units retired by each order, by batch (its ledger ranges)."""
    order_of = {f"order:{order_id}": order_id for order_id in order_ids}
    units: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for ref, batch_id, n in session.execute(
            sa.select(SerialRange.ref, SerialRange.batch_id, SerialRange.end - SerialRange.start)
            .where(SerialRange.ref.in_(list(order_of)), SerialRange.kind == "retirement")):
        units[order_of[ref]][batch_id] += n
    return units


def _line_fen(session: so.Session, order_ids: list[int]) -> dict[int, dict[int, int]]:
    """Each order's line amounts in fen, by batch."""
    fen: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for order_id, batch_id, amount in session.execute(
            sa.select(OrderLine.order_id, OrderLine.batch_id, OrderLine.amount_cny)
            .where(OrderLine.order_id.in_(order_ids))):
        fen[order_id][batch_id] += quantities.fen(amount)
    return fen




_PG_REBUILD = [
    # Each completed order's units and fen by batch, with its local day and whether it is its event's first.
    """CREATE TEMP TABLE rebuild_lines ON COMMIT DROP AS
    SELECT o.id AS order_id, o.buyer_organisation_id AS buyer_id, o.day, o.first_for_event, b.project_id,
           b.vintage, b.village_id, b.county_id, b.seller_id, u.units, COALESCE(f.fen, 0) AS fen,
           CASE WHEN row_number() OVER (PARTITION BY o.id ORDER BY b.project_id, b.vintage) = 1
                THEN 1 ELSE 0 END AS first_row
    FROM (SELECT id, buyer_organisation_id, CAST(completed_at AT TIME ZONE :tz AS date) AS day,
                 CASE WHEN event_id IS NOT NULL AND row_number() OVER (PARTITION BY event_id
                      ORDER BY completed_at, id) = 1 THEN 1 ELSE 0 END AS first_for_event
          FROM orders WHERE status = 'completed') o
    JOIN (SELECT ref, batch_id, sum("end" - start) AS units FROM serial_ranges WHERE kind = 'retirement'
          GROUP BY ref, batch_id) u ON u.ref = 'order:' || o.id
    JOIN rebuild_batches b ON b.batch_id = u.batch_id
    LEFT JOIN (SELECT order_id, batch_id, CAST(sum(round(amount_cny * 100)) AS bigint) AS fen FROM order_lines
               GROUP BY order_id, batch_id) f ON f.order_id = o.id AND f.batch_id = u.batch_id""",
    """INSERT INTO retirement_stats (day, buyer_organisation_id, village_id, project_id, vintage,
        seller_organisation_id, county_id, units, amount_fen, orders, events)
    SELECT day, buyer_id, village_id, project_id, vintage, min(seller_id), min(county_id), sum(units), sum(fen),
           sum(first_row), sum(first_row * first_for_event)
    FROM rebuild_lines GROUP BY day, buyer_id, village_id, project_id, vintage""",
    # Per cumulative key and day: the day's own figures (the total and buyers per county as well).
    """CREATE TEMP TABLE rebuild_key_days ON COMMIT DROP AS
    SELECT k.county_id, k.dimension, k.key_id, k.vintage, s.day, max(k.key_county_id) AS key_county_id,
           sum(s.units) AS units, sum(s.amount_fen) AS amount_fen, sum(k.counted * s.orders) AS orders,
           sum(k.counted * s.events) AS events
    FROM retirement_stats s CROSS JOIN LATERAL (VALUES
        (0, 'total', 0, 0, CAST(NULL AS integer), 1), (0, 'buyer', s.buyer_organisation_id, 0, NULL, 1),
        (0, 'village', s.village_id, 0, s.county_id, 0), (0, 'project', s.project_id, s.vintage, s.county_id, 0),
        (s.county_id, 'total', 0, 0, NULL, 1), (s.county_id, 'buyer', s.buyer_organisation_id, 0, NULL, 1)
    ) AS k(county_id, dimension, key_id, vintage, key_county_id, counted)
    WHERE k.county_id IS NOT NULL
    GROUP BY k.county_id, k.dimension, k.key_id, k.vintage, s.day""",
    "ANALYZE rebuild_key_days",
    """CREATE TEMP TABLE rebuild_key_months ON COMMIT DROP AS
    SELECT county_id, dimension, key_id, vintage, CAST(date_trunc('month', day) AS date) AS month,
           max(key_county_id) AS key_county_id, sum(units) AS units, sum(amount_fen) AS amount_fen,
           sum(orders) AS orders, sum(events) AS events, min(day) AS first_day, max(day) AS last_day
    FROM rebuild_key_days GROUP BY county_id, dimension, key_id, vintage, CAST(date_trunc('month', day) AS date)""",
    "ANALYZE rebuild_key_months",
    """INSERT INTO retirement_keys (county_id, dimension, key_id, vintage, key_county_id, first_month, last_month,
        units, amount_fen, orders, events)
    SELECT county_id, dimension, key_id, vintage, max(key_county_id), min(month), max(month), sum(units),
           sum(amount_fen), sum(orders), sum(events)
    FROM rebuild_key_months GROUP BY county_id, dimension, key_id, vintage""",
    # Every month from a key's first to its last, with the running total from the beginning: each
    # month with completions, then copies of its running total up to the next one (no join).
    """INSERT INTO retirement_months (county_id, month, dimension, key_id, vintage, units, amount_fen, orders,
        events, month_units, month_amount_fen, month_orders, month_events, first_day, last_day)
    SELECT m.county_id, CAST(g.month AS date), m.dimension, m.key_id, m.vintage,
           m.total_units, m.total_amount_fen, m.total_orders, m.total_events,
           CASE WHEN g.month = m.month THEN m.units ELSE 0 END, CASE WHEN g.month = m.month THEN m.amount_fen ELSE 0 END,
           CASE WHEN g.month = m.month THEN m.orders ELSE 0 END, CASE WHEN g.month = m.month THEN m.events ELSE 0 END,
           CASE WHEN g.month = m.month THEN m.first_day END, CASE WHEN g.month = m.month THEN m.last_day END
    FROM (SELECT *, sum(units) OVER w AS total_units, sum(amount_fen) OVER w AS total_amount_fen,
                 sum(orders) OVER w AS total_orders, sum(events) OVER w AS total_events,
                 COALESCE(lead(month) OVER w - interval '1 month', month) AS until
          FROM rebuild_key_months
          WINDOW w AS (PARTITION BY county_id, dimension, key_id, vintage ORDER BY month)) m
    CROSS JOIN LATERAL generate_series(CAST(m.month AS timestamp), CAST(m.until AS timestamp),
                                       interval '1 month') AS g(month)
    ORDER BY m.county_id, CAST(g.month AS date), m.dimension, m.key_id, m.vintage""",
    # In the primary key's order, so one day's (one month's) rows of every key sit on a few pages.
    # Every day from a month's first to its last with completions, with the running total from the 1st:
    # each day with completions, then copies of its running total up to the next one (no join).
    """INSERT INTO retirement_days (county_id, day, dimension, key_id, vintage, units, amount_fen, orders, events)
    SELECT d.county_id, CAST(g.day AS date), d.dimension, d.key_id, d.vintage, d.units, d.amount_fen, d.orders,
           d.events
    FROM (SELECT county_id, dimension, key_id, vintage, day, sum(units) OVER w AS units,
                 sum(amount_fen) OVER w AS amount_fen, sum(orders) OVER w AS orders, sum(events) OVER w AS events,
                 COALESCE(lead(day) OVER w - 1, day) AS until
          FROM rebuild_key_days
          WINDOW w AS (PARTITION BY county_id, dimension, key_id, vintage, date_trunc('month', day) ORDER BY day)) d
    CROSS JOIN LATERAL generate_series(CAST(d.day AS timestamp), CAST(d.until AS timestamp),
                                       interval '1 day') AS g(day)
    ORDER BY d.county_id, CAST(g.day AS date), d.dimension, d.key_id, d.vintage""",
]


def _rebuild_postgresql(session: so.Session) -> int:
    connection = session.connection()
    connection.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    connection.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    connection.execute(sa.text("DROP TABLE IF EXISTS rebuild_batches, rebuild_lines, rebuild_key_days, "
                               "rebuild_key_months"))
    connection.execute(sa.text(
        "CREATE TEMP TABLE rebuild_batches (batch_id integer PRIMARY KEY, project_id integer, vintage integer, "
        "village_id integer, county_id integer, seller_id integer) ON COMMIT DROP"))
    facts = batch_facts(session)
    if facts:
        connection.execute(sa.text("INSERT INTO rebuild_batches VALUES (:b, :p, :v, :vi, :c, :s)"), [
            {"b": batch_id, "p": f.project_id, "v": f.vintage, "vi": f.village_id, "c": f.county_id, "s": f.seller_id}
            for batch_id, f in facts.items()])
    # Building an index once from sorted rows is several times faster than adding a million entries to
    # it, and checking a foreign key once for the whole table (one join) than once per row (a trigger).
    # The definitions are read from the database and put back as they were (SQLAlchemy's Add/Drop
    # Constraint would change the application's metadata for the rest of the process).
    saved = []
    for model in (RetirementStat, RetirementMonth, RetirementDay):
        name = model.__tablename__
        constraints = connection.execute(sa.text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'f')"), {"t": name}).all()
        indexes = connection.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass))"),
            {"t": name}).all()
        for constraint, _kind, _definition in sorted(constraints, key=lambda row: row[1] != "f"):
            connection.execute(sa.text(f'ALTER TABLE {name} DROP CONSTRAINT "{constraint}"'))
        for index, _definition in indexes:
            connection.execute(sa.text(f'DROP INDEX "{index}"'))
        saved.append((name, constraints, indexes))
    for statement in _PG_REBUILD:
        connection.execute(sa.text(statement), {"tz": zone().key})
    for name, constraints, indexes in saved:
        for constraint, _kind, definition in sorted(constraints, key=lambda row: row[1] != "p"):
            connection.execute(sa.text(f'ALTER TABLE {name} ADD CONSTRAINT "{constraint}" {definition}'))
        for _index, definition in indexes:
            connection.execute(sa.text(definition))
    return session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == "completed")) or 0
