"""The maintained aggregates of completed orders: added to as each order completes, rebuilt from the ledger.

A completed order counts on the local day of ``completed_at`` (the platform's time zone). It adds
to one daily row per (buyer, village, project, vintage) in ``retirement_stats``, and to monthly rows
(``retirement_rollups``) and yearly and all-time rows (``retirement_totals``) for each dimension,
with and without the village's county. Units come from the order's retirement ranges in the ledger
(``ref = order:<id>``), money from its lines, in integer fen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
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
from marketplace.stats.models import ROLLUP_DIMENSIONS, RetirementRollup, RetirementStat, RetirementTotal

#: Each dimension's key, as columns of the daily rows. The monthly and yearly rows store the same key
#: as (key_id, vintage), with zeros where the key is shorter; months and sellers have no rows of their own.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "total": (), "buyer": ("buyer_organisation_id",), "village": ("village_id",),
    "project": ("project_id", "vintage"), "month": ("day",), "seller": ("seller_organisation_id",)}
#: Orders and events are counted in these only: an order can buy from several villages and projects.
COUNTED = ("total", "buyer", "month")

ROLLUP_KEY = ("month", "county_id", "dimension", "key_id", "vintage")
TOTAL_KEY = ("year", "county_id", "dimension", "key_id", "vintage")
#: A rebuild writes the daily rows it holds once it holds this many and a day is over.
DAILY_ROWS_PER_WRITE = 5000


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


#: Per rollup dimension: its (key_id, vintage) getter and whether it counts orders and events.
#: Worked out once: a rebuild runs them for every order.
_ROLLUP_KEYS = [(dimension, _stored_key_getter(dimension), dimension in COUNTED) for dimension in ROLLUP_DIMENSIONS]


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


def _monthly_rows(daily: dict[DayKey, Sums], rows: dict[tuple, Sums] | None = None) -> dict[tuple, Sums]:
    """Daily rows → monthly rows keyed as :data:`ROLLUP_KEY`, for every county (0) and the village's;
    added to ``rows`` when given (a rebuild's running month)."""
    rows = defaultdict(Sums) if rows is None else rows
    for key, sums in daily.items():
        month = key.day.replace(day=1)
        counties = {0, key.county_id or 0}
        padded = (*key, 0)
        for dimension, stored_key, counted in _ROLLUP_KEYS:
            key_id, vintage = stored_key(padded)
            for county in counties:
                target = rows[(month, county, dimension, key_id, vintage)]
                target.units += sums.units
                target.amount_fen += sums.amount_fen
                if counted:
                    target.orders += sums.orders
                    target.events += sums.events
    return rows


def _yearly_rows(monthly: dict[tuple, Sums]) -> dict[tuple, Sums]:
    """Monthly rows → the same rows by year and for all time (year 0), keyed as :data:`TOTAL_KEY`."""
    rows: dict[tuple, Sums] = defaultdict(Sums)
    for (month, *rest), sums in monthly.items():
        for year in (month.year, 0):
            rows[(year, *rest)].add(sums)
    return rows


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
    daily = _daily_rows(day=local_day(order.completed_at), buyer_id=order.buyer_organisation_id,
                        first_for_event=_first_completion_of_event(session, order), units_by_batch=units_by_batch,
                        fen_by_batch=fen_by_batch, facts=batch_facts(session, units_by_batch))
    monthly = _monthly_rows(daily)
    # Every table in its key order: concurrent completions lock rows in the same order (no deadlock). One
    # statement per table (its rows in that order), not one per row: an order touches some 25 rows.
    _upsert(session, RetirementStat, [(key._asdict(), sums.values()) for key, sums in sorted(daily.items())],
            fixed=("seller_organisation_id", "county_id"))
    _upsert(session, RetirementRollup, [(dict(zip(ROLLUP_KEY, key, strict=True)), sums.values())
                                        for key, sums in sorted(monthly.items())])
    _upsert(session, RetirementTotal, [(dict(zip(TOTAL_KEY, key, strict=True)), sums.values())
                                       for key, sums in sorted(_yearly_rows(monthly).items())])
    session.flush()


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


# --- rebuilding from the orders and the ledger ----------------------------------------------------

def rebuild(session: so.Session, progress: Callable[[int, int], None] | None = None, chunk: int = 5000) -> int:
    """Recompute the aggregates from the completed orders, their ledger ranges and their lines.

    Streams the orders in completion order and writes each local day (and month) once it is over,
    so memory stays small at millions of orders; the yearly and all-time totals (a few rows per
    buyer, village and project) are written at the end. Returns the number of orders counted."""
    for model in (RetirementTotal, RetirementRollup, RetirementStat):
        session.execute(sa.delete(model))
    total = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == "completed")) or 0
    facts = batch_facts(session)
    tz = zone()
    writer = _RowWriter(session)
    seen_events: set[int] = set()
    done = 0
    for orders in _completed_orders(session, chunk):
        order_ids = [order_id for order_id, *_rest in orders]
        units = _retired_units(session, order_ids)
        fen = _line_fen(session, order_ids)
        for order_id, buyer_id, event_id, completed_at in orders:
            day = local_day(completed_at, tz)
            writer.add(day, _daily_rows(day=day, buyer_id=buyer_id, units_by_batch=units[order_id],
                                        first_for_event=event_id is not None and event_id not in seen_events,
                                        fen_by_batch=fen[order_id], facts=facts))
            if event_id is not None:
                seen_events.add(event_id)
        done += len(orders)
        if progress:
            progress(done, total)
    writer.finish()
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


class _RowWriter:
    """Collects the rows of orders arriving in completion order. A day's (a month's) rows are final
    once a later day (month) arrives, so they are written then; the yearly rows at the end."""

    def __init__(self, session: so.Session):
        self.session = session
        self.day: date | None = None
        self.month: date | None = None
        self.daily: dict[DayKey, Sums] = defaultdict(Sums)
        self.monthly: dict[tuple, Sums] = defaultdict(Sums)
        self.yearly: dict[tuple, Sums] = defaultdict(Sums)

    def add(self, day: date, daily: dict[DayKey, Sums]) -> None:
        if day != self.day:
            if len(self.daily) >= DAILY_ROWS_PER_WRITE:
                self._write_days()
            self.day = day
        if day.replace(day=1) != self.month:
            self._write_months()
            self.month = day.replace(day=1)
        _merge(self.daily, daily)
        _monthly_rows(daily, self.monthly)

    def finish(self) -> None:
        self._write_days()
        self._write_months()
        _insert_rows(self.session, RetirementTotal, [{**dict(zip(TOTAL_KEY, key, strict=True)), **sums.values()}
                                                     for key, sums in self.yearly.items()])

    def _write_days(self) -> None:
        _insert_rows(self.session, RetirementStat, [{**key._asdict(), **sums.values()}
                                                    for key, sums in self.daily.items()])
        self.daily.clear()

    def _write_months(self) -> None:
        _merge(self.yearly, _yearly_rows(self.monthly))
        _insert_rows(self.session, RetirementRollup, [{**dict(zip(ROLLUP_KEY, key, strict=True)), **sums.values()}
                                                      for key, sums in self.monthly.items()])
        self.monthly.clear()


def _insert_rows(session: so.Session, model, rows: list[dict]) -> None:
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(model.__table__.insert(), rows)
        return
    # COPY: a million rows in seconds, where an executemany sends them one by one.
    columns = list(rows[0])
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])
