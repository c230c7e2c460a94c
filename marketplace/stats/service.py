"""Cumulative figures for the dashboards and the stats API, from maintained aggregates.

Definitions (the same on every page, export and API answer):

- **sold**: units of orders with status paid, retiring or completed;
- **retired**: units of completed orders' retirements (the ledger's serial ranges, ``ref = order:<id>``);
- **revenue**: the sum of the order lines' amounts of sold orders. All of it goes to the selling
  cooperative, so revenue to villages is the same money broken down by the project's village;
- dates: a completed order counts on the local day of ``completed_at``, a paid or retiring one on
  the local day of ``paid_at`` (the platform's time zone, Asia/Shanghai).

Completed orders are read from ``retirement_stats`` (by day) and ``retirement_rollups`` (by month),
both written by :func:`record_completion` in the transaction that completes the order. The few
orders still between payment and completion are read directly (an indexed status lookup).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core import quantities
from marketplace.core.db import insert
from marketplace.core.errors import ValidationFailed
from marketplace.core.ids import is_id
from marketplace.footprint.models import Event
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import (
    REGION_ANCESTORS,
    CreditBatch,
    LedgerBalance,
    Project,
    Region,
    SerialRange,
)
from marketplace.registry.service import village_ids_under
from marketplace.stats.models import RetirementRollup, RetirementStat, RetirementTotal

SOLD_STATUSES = ("paid", "retiring", "completed")
IN_FLIGHT_STATUSES = ("paid", "retiring")


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def local_day(moment: datetime, tz: ZoneInfo | None = None) -> date:
    return moment.astimezone(tz or zone()).date()


# --- filters and figures --------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """Which completions count: local days from/to (inclusive) and a county."""

    date_from: date | None = None
    date_to: date | None = None
    county_id: int | None = None

    def utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC of the local days chosen."""
        tz = zone()
        start = (datetime.combine(self.date_from, time.min, tz).astimezone(UTC) if self.date_from else None)
        end = (datetime.combine(self.date_to + timedelta(days=1), time.min, tz).astimezone(UTC)
               if self.date_to else None)
        return start, end


def parse_filters(raw_from: str | None, raw_to: str | None, raw_county: str | int | None) -> Filters:
    """Filters from request arguments: dates as YYYY-MM-DD (or YYYY-MM: the whole month), a county id."""

    def parse(text, field_name, end: bool):
        text = (text or "").strip()
        if not text:
            return None
        try:
            if len(text) == 7:
                first = date.fromisoformat(text + "-01")
                return first.replace(day=calendar.monthrange(first.year, first.month)[1]) if end else first
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(_l("Enter a date as YYYY-MM-DD."), field_name) from None

    date_from = parse(raw_from, "from", False)
    date_to = parse(raw_to, "to", True)
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed(_l("The start date is after the end date."), "from")
    county_id = None
    if raw_county not in (None, ""):
        try:
            county_id = int(raw_county)
        except (TypeError, ValueError):
            raise ValidationFailed(_l("Choose a county from the list."), "county") from None
        if not is_id(county_id):
            raise ValidationFailed(_l("Choose a county from the list."), "county")
    return Filters(date_from, date_to, county_id)


@dataclass
class Figures:
    sold_units: int = 0
    retired_units: int = 0
    revenue_fen: int = 0
    orders_completed: int = 0
    events: int = 0

    def add(self, other: Figures) -> None:
        self.sold_units += other.sold_units
        self.retired_units += other.retired_units
        self.revenue_fen += other.revenue_fen
        self.orders_completed += other.orders_completed
        self.events += other.events

    @property
    def revenue_cny(self) -> Decimal:
        return (Decimal(self.revenue_fen) / 100).quantize(Decimal("0.01"))


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
    regions = session.scalars(sa.select(Region).where(Region.id.in_(list(village_ids))).options(REGION_ANCESTORS)).all()
    result = {}
    for region in regions:
        county = region.ancestor("county")
        result[region.id] = county.id if county else None
    return result


# --- writing the aggregates -----------------------------------------------------------------------

def _upsert(session: so.Session, model, key: dict, values: dict, fixed: dict | None = None) -> None:
    """INSERT … ON CONFLICT DO UPDATE adding ``values`` (``fixed`` columns only set on insert): one
    statement, safe under concurrency."""
    table = model.__table__
    stmt = insert(session, table).values(**key, **values, **(fixed or {}))
    stmt = stmt.on_conflict_do_update(index_elements=list(key),
                                      set_={name: table.c[name] + stmt.excluded[name] for name in values})
    session.execute(stmt)


@dataclass
class _Acc:
    units: int = 0
    amount_fen: int = 0
    orders: int = 0
    events: int = 0

    def values(self) -> dict:
        return {"units": self.units, "amount_fen": self.amount_fen, "orders": self.orders, "events": self.events}

    def add(self, other: _Acc) -> None:
        self.units += other.units
        self.amount_fen += other.amount_fen
        self.orders += other.orders
        self.events += other.events


def _contributions(*, day: date, buyer_id: int, first_for_event: bool, units_by_batch: dict[int, int],
                   fen_by_batch: dict[int, int], facts: dict[int, BatchFacts]):
    """One completed order → detail rows and rollup rows (keys → accumulators)."""
    detail: dict[tuple, _Acc] = defaultdict(_Acc)
    for batch_id, units in units_by_batch.items():
        f = facts[batch_id]
        acc = detail[(day, buyer_id, f.village_id, f.project_id, f.vintage, f.seller_id, f.county_id)]
        acc.units += units
        acc.amount_fen += fen_by_batch.get(batch_id, 0)
    if detail:
        first = min(detail, key=lambda k: (k[3], k[4]))  # the order counts once, on its first project
        detail[first].orders = 1
        detail[first].events = 1 if first_for_event else 0
    rollups: dict[tuple, _Acc] = defaultdict(_Acc)
    month = day.replace(day=1)
    for (_day, buyer, village, project, vintage, _seller, county), acc in detail.items():
        for county_key in {0, county or 0}:
            for dimension, key_id, key_vintage in (("total", 0, 0), ("buyer", buyer, 0), ("village", village, 0),
                                                   ("project", project, vintage)):
                target = rollups[(month, county_key, dimension, key_id, key_vintage)]
                target.units += acc.units
                target.amount_fen += acc.amount_fen
                if dimension in ("total", "buyer"):
                    target.orders += acc.orders
                    target.events += acc.events
    return detail, rollups


def _totals(rollups: dict[tuple, _Acc]) -> dict[tuple, _Acc]:
    """Monthly rollup rows → the same rows by year and for all time (year 0)."""
    totals: dict[tuple, _Acc] = defaultdict(_Acc)
    for (month, county_key, dimension, key_id, vintage), acc in rollups.items():
        for year in (month.year, 0):
            totals[(year, county_key, dimension, key_id, vintage)].add(acc)
    return totals


DETAIL_KEY = ("day", "buyer_organisation_id", "village_id", "project_id", "vintage")
ROLLUP_KEY = ("month", "county_id", "dimension", "key_id", "vintage")
TOTAL_KEY = ("year", "county_id", "dimension", "key_id", "vintage")


def on_order_completed(_sender=None, *, session: so.Session, order: Order) -> None:
    """The orders feature's ``order_completed`` signal: the aggregates move in the same transaction."""
    record_completion(session, order)


def record_completion(session: so.Session, order: Order) -> None:
    """Add a just-completed order to the aggregates, in the caller's transaction.

    Called once per order (the orders feature's ``order_completed`` signal) when the order moves to completed (a conditional
    UPDATE that only one process can win), so an order is never counted twice."""
    ranges = session.execute(sa.select(SerialRange.batch_id, SerialRange.end - SerialRange.start)
                             .where(SerialRange.ref == order.ref, SerialRange.kind == "retirement")).all()
    units_by_batch: dict[int, int] = defaultdict(int)
    for batch_id, units in ranges:
        units_by_batch[batch_id] += units
    fen_by_batch: dict[int, int] = defaultdict(int)
    for line in order.lines:
        fen_by_batch[line.batch_id] += quantities.fen(line.amount_cny)
    first_for_event = False
    if order.event_id is not None:
        # Two orders for one event completing at once: the event's row lock makes the second wait and then
        # see the first as completed, so the event is counted once (PostgreSQL; SQLite has one writer).
        session.execute(sa.select(Event.id).where(Event.id == order.event_id).with_for_update())
        earlier = session.scalar(sa.select(sa.func.count()).select_from(Order).where(
            Order.event_id == order.event_id, Order.status == "completed", Order.id != order.id))
        first_for_event = earlier == 0
    detail, rollups = _contributions(
        day=local_day(order.completed_at), buyer_id=order.buyer_organisation_id, first_for_event=first_for_event,
        units_by_batch=units_by_batch, fen_by_batch=fen_by_batch, facts=batch_facts(session, units_by_batch))
    for (day, buyer, village, project, vintage, seller, county), acc in sorted(detail.items()):
        _upsert(session, RetirementStat, dict(zip(DETAIL_KEY, (day, buyer, village, project, vintage), strict=True)),
                acc.values(), fixed={"seller_organisation_id": seller, "county_id": county})
    # Rollups in their key order: concurrent completions lock rows in the same order (no deadlock).
    for key, acc in sorted(rollups.items()):
        _upsert(session, RetirementRollup, dict(zip(ROLLUP_KEY, key, strict=True)), acc.values())
    for key, acc in sorted(_totals(rollups).items()):
        _upsert(session, RetirementTotal, dict(zip(TOTAL_KEY, key, strict=True)), acc.values())
    session.flush()


def rebuild(session: so.Session, progress: Callable[[int, int], None] | None = None, chunk: int = 5000) -> int:
    """Recompute the aggregates from the completed orders, their ledger ranges and their lines.

    Streams the orders in completion order and writes each local day (and month) once it is over,
    so memory stays small at millions of orders; the yearly and all-time totals (a few rows per
    buyer, village and project) are written at the end. Returns the number of orders counted."""
    session.execute(sa.delete(RetirementTotal))
    session.execute(sa.delete(RetirementRollup))
    session.execute(sa.delete(RetirementStat))
    facts = batch_facts(session)
    tz = zone()
    total = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == "completed")) or 0
    seen_events: set[int] = set()
    detail: dict[tuple, _Acc] = defaultdict(_Acc)
    rollups: dict[tuple, _Acc] = defaultdict(_Acc)
    totals: dict[tuple, _Acc] = defaultdict(_Acc)
    current_day = current_month = None
    done = 0

    def write(model, rows: list[dict]) -> None:
        if not rows:
            return
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            connection.execute(model.__table__.insert(), rows)
            return
        # COPY: a million rows in seconds, where an executemany sends them one by one.
        columns = list(rows[0])
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])

    def flush_detail():
        write(RetirementStat, [{**dict(zip(DETAIL_KEY, key[:5], strict=True)), "seller_organisation_id": key[5],
                                "county_id": key[6], **acc.values()} for key, acc in detail.items()])
        detail.clear()

    def flush_rollups():
        for key, acc in _totals(rollups).items():
            totals[key].add(acc)
        write(RetirementRollup, [{**dict(zip(ROLLUP_KEY, key, strict=True)), **acc.values()}
                                 for key, acc in rollups.items()])
        rollups.clear()

    stmt = (sa.select(Order.id, Order.buyer_organisation_id, Order.event_id, Order.completed_at)
            .where(Order.status == "completed").order_by(Order.completed_at, Order.id))
    batch_rows: list = []

    def process(rows):
        nonlocal current_day, current_month, done
        refs = {f"order:{row[0]}": row[0] for row in rows}
        units: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for ref, batch_id, n in session.execute(
                sa.select(SerialRange.ref, SerialRange.batch_id, SerialRange.end - SerialRange.start)
                .where(SerialRange.ref.in_(list(refs)), SerialRange.kind == "retirement")):
            units[refs[ref]][batch_id] += n
        fen: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for order_id, batch_id, amount in session.execute(
                sa.select(OrderLine.order_id, OrderLine.batch_id, OrderLine.amount_cny)
                .where(OrderLine.order_id.in_(list(refs.values())))):
            fen[order_id][batch_id] += quantities.fen(amount)
        for order_id, buyer_id, event_id, completed_at in rows:
            day = local_day(completed_at, tz)
            if day != current_day:
                if len(detail) >= 5000:  # every row of the days before is final: write them
                    flush_detail()
                current_day = day
            if day.replace(day=1) != current_month:
                flush_rollups()
                current_month = day.replace(day=1)
            first_for_event = event_id is not None and event_id not in seen_events
            if event_id is not None:
                seen_events.add(event_id)
            order_detail, order_rollups = _contributions(
                day=day, buyer_id=buyer_id, first_for_event=first_for_event, units_by_batch=units[order_id],
                fen_by_batch=fen[order_id], facts=facts)
            for target, source in ((detail, order_detail), (rollups, order_rollups)):
                for key, acc in source.items():
                    target[key].add(acc)
            done += 1
        if progress:
            progress(done, total)

    for row in session.execute(stmt.execution_options(yield_per=chunk)):
        batch_rows.append(tuple(row))
        if len(batch_rows) >= chunk:
            process(batch_rows)
            batch_rows = []
    if batch_rows:
        process(batch_rows)
    flush_detail()
    flush_rollups()
    write(RetirementTotal, [{**dict(zip(TOTAL_KEY, key, strict=True)), **acc.values()} for key, acc in totals.items()])
    session.flush()
    if progress:
        progress(done, total)
    return done


# --- reading ------------------------------------------------------------------------------------

@dataclass
class Scope:
    """Whose figures: the bureau sees all; a seller its own sales; a buyer its own purchases."""

    seller_id: int | None = None
    buyer_id: int | None = None


#: A closed range of periods (None = open) read with a sign: +1 to add, -1 to take away.
Piece = tuple[date | None, date | None, int]


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(month: date, n: int) -> date:
    year, index = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(year, index + 1, 1)


@dataclass
class Plan:
    """How a range of local days is read from the aggregates, so the work does not grow with it.

    Partial months at either end come from the daily table: the days inside, or, when fewer, the
    whole month minus the days outside (so at most ~15 days an end). Whole months up to a year
    boundary come from the monthly rollups the same way (the months, or the year minus the months
    outside); whole years, and all time, from ``retirement_totals``. Figures are integers, so adding
    and taking away is exact. The month series takes the whole months' total rows (one a month)
    and the partial months' pieces."""

    days: list[Piece] = field(default_factory=list)
    #: monthly rollups counted in the dimensions and in the month series (partial months' complements)
    months: list[Piece] = field(default_factory=list)
    #: monthly rollups counted in the dimensions only (partial years)
    year_months: list[Piece] = field(default_factory=list)
    #: years (first days of January) read from retirement_totals; never open at both ends
    years: list[Piece] = field(default_factory=list)
    #: no date filter: the all-time rows of retirement_totals
    all_time: bool = False
    #: whole months [from, to] of the month series, read from the monthly total rows
    series: tuple[date | None, date | None] | None = None


def plan(date_from: date | None, date_to: date | None) -> Plan:
    result = Plan()
    if date_from and date_to and date_from > date_to:
        return result
    if date_from and date_to and date_from.replace(day=1) == date_to.replace(day=1) and not (
            date_from.day == 1 and date_to == _month_end(date_to)):
        first, last = date_from.replace(day=1), _month_end(date_from)
        inside = (date_to - date_from).days + 1
        if inside <= last.day - inside:
            result.days.append((date_from, date_to, 1))
        else:
            result.months.append((first, first, 1))
            if date_from > first:
                result.days.append((first, date_from - timedelta(days=1), -1))
            if date_to < last:
                result.days.append((date_to + timedelta(days=1), last, -1))
        return result
    # 1. partial months at the ends → days; what is left is whole months [m_from, m_to]
    m_from = date_from
    if date_from and date_from.day != 1:
        first, last = date_from.replace(day=1), _month_end(date_from)
        if (last - date_from).days + 1 <= date_from.day - 1:
            result.days.append((date_from, last, 1))
        else:
            result.months.append((first, first, 1))
            result.days.append((first, date_from - timedelta(days=1), -1))
        m_from = _add_months(first, 1)
    m_to = date_to.replace(day=1) if date_to else None
    if date_to and date_to != _month_end(date_to):
        first, last = date_to.replace(day=1), _month_end(date_to)
        if date_to.day <= (last - date_to).days:
            result.days.append((first, date_to, 1))
        else:
            result.months.append((first, first, 1))
            result.days.append((date_to + timedelta(days=1), last, -1))
        m_to = _add_months(first, -1)
    if m_from and m_to and m_from > m_to:
        return result
    result.series = (m_from, m_to)
    if m_from is None and m_to is None:
        result.all_time = True
        return result
    # 2. partial years at the ends → months; what is left is whole years [y_from, y_to]
    if m_from and m_to and m_from.year == m_to.year and not (m_from.month == 1 and m_to.month == 12):
        january, december = date(m_from.year, 1, 1), date(m_from.year, 12, 1)
        inside = m_to.month - m_from.month + 1
        if inside <= 12 - inside:
            result.year_months.append((m_from, m_to, 1))
        else:
            result.years.append((january, january, 1))
            if m_from > january:
                result.year_months.append((january, _add_months(m_from, -1), -1))
            if m_to < december:
                result.year_months.append((_add_months(m_to, 1), december, -1))
        return result
    y_from = m_from
    if m_from and m_from.month != 1:
        january, december = date(m_from.year, 1, 1), date(m_from.year, 12, 1)
        if 13 - m_from.month <= m_from.month - 1:
            result.year_months.append((m_from, december, 1))
        else:
            result.years.append((january, january, 1))
            result.year_months.append((january, _add_months(m_from, -1), -1))
        y_from = date(m_from.year + 1, 1, 1)
    y_to = date(m_to.year, 1, 1) if m_to else None
    if m_to and m_to.month != 12:
        january, december = date(m_to.year, 1, 1), date(m_to.year, 12, 1)
        if m_to.month <= 12 - m_to.month:
            result.year_months.append((january, m_to, 1))
        else:
            result.years.append((january, january, 1))
            result.year_months.append((_add_months(m_to, 1), december, -1))
        y_to = date(m_to.year - 1, 1, 1)
    if not (y_from and y_to and y_from > y_to):
        result.years.append((y_from, y_to, 1))
    return result


def _within(column, pieces: list[Piece]):
    """SQL: the column falls in one of the pieces."""
    conditions = []
    for low, high, _sign in pieces:
        bounds = ([column >= low] if low is not None else []) + ([column <= high] if high is not None else [])
        conditions.append(sa.and_(sa.true(), *bounds))
    return sa.or_(*conditions)


def _sign(value, pieces: list[Piece]) -> int:
    return sum(sign for low, high, sign in pieces if (low is None or value >= low) and (high is None or value <= high))


def _sign_case(column, pieces: list[Piece]):
    """SQL: the net sign of the pieces the column falls in."""
    whens = [(sa.and_(sa.true(), *([column >= low] if low is not None else []),
                      *([column <= high] if high is not None else [])), sign) for low, high, sign in pieces]
    if len(pieces) == 1:
        return sa.literal(pieces[0][2])
    return sum((sa.case(when, else_=0) for when in whens), sa.literal(0))


DIMENSIONS = ("total", "buyer", "village", "project", "month")
#: Orders and events are counted in these only: an order can buy from several villages and projects.
COUNTED = ("total", "buyer", "month")


def _key(dimension: str, key_id: int, vintage: int) -> tuple:
    return {"total": (), "buyer": (key_id,), "village": (key_id,), "project": (key_id, vintage)}[dimension]


def _from_aggregates(session: so.Session, filters: Filters) -> dict[str, dict[tuple, Figures]]:
    """The bureau's figures for every dimension, from the totals, the monthly rollups and at most a
    few weeks of daily rows (see :class:`Plan`)."""
    acc: dict[str, dict[tuple, _Acc]] = {d: defaultdict(_Acc) for d in DIMENSIONS}
    county = filters.county_id or 0
    steps = plan(filters.date_from, filters.date_to)

    def take(dimension: str, key: tuple, units, fen, orders, events, sign: int) -> None:
        if dimension not in COUNTED:
            orders = events = 0
        if sign:
            acc[dimension][key].add(_Acc(sign * int(units), sign * int(fen), sign * int(orders or 0),
                                         sign * int(events or 0)))

    def signed_sums(model, column, pieces: list[Piece], extra=()):
        """Every dimension's rows summed in SQL with the pieces' signs: one row per key comes back."""
        sign = _sign_case(column, pieces)
        stmt = (sa.select(model.dimension, model.key_id, model.vintage, sa.func.sum(model.units * sign),
                          sa.func.sum(model.amount_fen * sign), sa.func.sum(model.orders * sign),
                          sa.func.sum(model.events * sign))
                .where(model.county_id == county, _within(column, pieces), *extra)
                .group_by(model.dimension, model.key_id, model.vintage))
        for dimension, key_id, vintage, *figures in session.execute(stmt):
            take(dimension, _key(dimension, key_id, vintage), *figures, 1)

    t = RetirementTotal
    if steps.all_time:
        signed_sums(t, t.year, [(0, 0, 1)])
    elif steps.years:
        signed_sums(t, t.year, [(low and low.year, high and high.year, sign) for low, high, sign in steps.years],
                    extra=[t.year > 0])
    r = RetirementRollup
    if steps.months or steps.year_months:
        signed_sums(r, r.month, steps.months + steps.year_months)
    series = steps.months + ([(*steps.series, 1)] if steps.series else [])
    if series:  # the month series: one total row a month
        stmt = (sa.select(r.month, r.units, r.amount_fen, r.orders, r.events)
                .where(r.county_id == county, r.dimension == "total", _within(r.month, series)))
        for month, *figures in session.execute(stmt):
            take("month", (month.strftime("%Y-%m"),), *figures, _sign(month, series))
    if steps.days:
        s = RetirementStat
        sign = _sign_case(s.day, steps.days)
        for dimension in DIMENSIONS:
            group = {"total": [], "buyer": [s.buyer_organisation_id], "village": [s.village_id],
                     "project": [s.project_id, s.vintage], "month": [s.day]}[dimension]
            stmt = sa.select(*group, sa.func.sum(s.units * sign), sa.func.sum(s.amount_fen * sign),
                             sa.func.sum(s.orders * sign), sa.func.sum(s.events * sign)).where(
                _within(s.day, steps.days))
            if group:
                stmt = stmt.group_by(*group)
            if filters.county_id:
                stmt = stmt.where(s.county_id == filters.county_id)
            for *key, units, fen, orders, events in session.execute(stmt):
                if units is None:
                    continue
                if dimension == "month":
                    key = [key[0].strftime("%Y-%m")]
                take(dimension, tuple(key), units, fen, orders, events, 1)
    result: dict[str, dict[tuple, Figures]] = {}
    for dimension, rows in acc.items():
        # A key whose pieces cancel out had nothing in the range (every stored row has units > 0).
        result[dimension] = defaultdict(Figures, {
            key: Figures(a.units, a.units, a.amount_fen, a.orders, a.events) for key, a in rows.items() if a.units})
    return result


def _from_days(session: so.Session, filters: Filters, scope: Scope, dimension: str) -> dict[tuple, Figures]:
    """Figures grouped by a dimension straight from the daily table: a seller's or a buyer's (through
    their indexed columns), and the reference the bureau's figures are tested against."""
    result: dict[tuple, Figures] = defaultdict(Figures)
    s = RetirementStat
    group = {"total": [], "buyer": [s.buyer_organisation_id], "village": [s.village_id],
             "project": [s.project_id, s.vintage], "month": [s.day], "seller": [s.seller_organisation_id]}[dimension]
    stmt = sa.select(*group, sa.func.sum(s.units), sa.func.sum(s.amount_fen), sa.func.sum(s.orders),
                     sa.func.sum(s.events))
    if group:
        stmt = stmt.group_by(*group)
    if filters.date_from:
        stmt = stmt.where(s.day >= filters.date_from)
    if filters.date_to:
        stmt = stmt.where(s.day <= filters.date_to)
    if filters.county_id:
        stmt = stmt.where(s.county_id == filters.county_id)
    if scope.seller_id is not None:
        stmt = stmt.where(s.seller_organisation_id == scope.seller_id)
    if scope.buyer_id is not None:
        stmt = stmt.where(s.buyer_organisation_id == scope.buyer_id)
    for *key, units, fen, orders, events in session.execute(stmt):
        if units is None:
            continue
        if dimension == "month":
            key = [key[0].strftime("%Y-%m")]
        if dimension not in COUNTED:
            orders = events = 0
        result[tuple(key)].add(Figures(int(units), int(units), int(fen), int(orders or 0), int(events or 0)))
    return result


def _completed(session: so.Session, filters: Filters, scope: Scope) -> dict[str, dict[tuple, Figures]]:
    """Completed orders' figures for every dimension (total, buyer, village, project, month)."""
    if scope.seller_id is None and scope.buyer_id is None:
        return _from_aggregates(session, filters)
    return {dimension: _from_days(session, filters, scope, dimension) for dimension in DIMENSIONS}


def _in_flight(session: so.Session, filters: Filters, scope: Scope) -> list[tuple[Order, OrderLine, BatchFacts]]:
    """Lines of orders paid but not yet completed (few at any time; found through the status index)."""
    stmt = (sa.select(Order, OrderLine).join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.status.in_(IN_FLIGHT_STATUSES)))
    start, end = filters.utc_bounds()
    if start:
        stmt = stmt.where(Order.paid_at >= start)
    if end:
        stmt = stmt.where(Order.paid_at < end)
    if scope.buyer_id is not None:
        stmt = stmt.where(Order.buyer_organisation_id == scope.buyer_id)
    rows = session.execute(stmt).all()
    facts = batch_facts(session, {line.batch_id for _order, line in rows}) if rows else {}
    out = []
    for order, line in rows:
        f = facts[line.batch_id]
        if filters.county_id and f.county_id != filters.county_id:
            continue
        if scope.seller_id is not None and f.seller_id != scope.seller_id:
            continue
        out.append((order, line, f))
    return out


def _in_flight_key(dimension: str, order: Order, line: OrderLine, f: BatchFacts, tz: ZoneInfo) -> tuple:
    return {"total": (), "buyer": (order.buyer_organisation_id,), "village": (f.village_id,),
            "project": (f.project_id, f.vintage), "seller": (f.seller_id,),
            "month": (order.paid_at.astimezone(tz).strftime("%Y-%m"),)}[dimension]


def _add_in_flight(result: dict[tuple, Figures], dimension: str, in_flight: list) -> dict[tuple, Figures]:
    tz = zone()
    for order, line, f in in_flight:
        result[_in_flight_key(dimension, order, line, f, tz)].add(
            Figures(sold_units=line.units, revenue_fen=quantities.fen(line.amount_cny)))
    return dict(result)


@dataclass
class Summary:
    filters: Filters
    totals: Figures
    buyers: int
    by_buyer: list[tuple[Organisation, Figures]] = field(default_factory=list)
    by_village: list[tuple[Region, Figures]] = field(default_factory=list)
    by_month: list[tuple[str, Figures]] = field(default_factory=list)
    by_project: list[tuple[Project, int, Figures]] = field(default_factory=list)


def summary(session: so.Session, filters: Filters, scope: Scope | None = None) -> Summary:
    """Every figure of a dashboard, for the bureau (no scope), a seller or a buyer."""
    scope = scope or Scope()
    in_flight = _in_flight(session, filters, scope)
    completed = _completed(session, filters, scope)
    by = {dimension: _add_in_flight(completed[dimension], dimension, in_flight) for dimension in DIMENSIONS}
    totals = by["total"].get((), Figures())
    by_buyer, by_village, by_month, by_project = by["buyer"], by["village"], by["month"], by["project"]
    orgs = {o.id: o for o in session.scalars(sa.select(Organisation).where(
        Organisation.id.in_([k[0] for k in by_buyer])))}
    villages = {r.id: r for r in session.scalars(sa.select(Region).where(Region.id.in_([k[0] for k in by_village]))
                                                 .options(REGION_ANCESTORS))}
    projects = {p.id: p for p in session.scalars(sa.select(Project).where(
        Project.id.in_({k[0] for k in by_project})).options(so.joinedload(Project.village)))}
    result = Summary(filters=filters, totals=totals, buyers=sum(1 for f in by_buyer.values() if f.sold_units))
    result.by_buyer = sorted(((orgs[k[0]], f) for k, f in by_buyer.items()),
                             key=lambda item: (-item[1].sold_units, item[0].name))
    result.by_village = sorted(((villages[k[0]], f) for k, f in by_village.items()),
                               key=lambda item: [r.name for r in item[0].path()])
    result.by_month = sorted(((k[0], f) for k, f in by_month.items()), key=lambda item: item[0])
    result.by_project = sorted(((projects[k[0]], k[1], f) for k, f in by_project.items()),
                               key=lambda item: (item[0].name, item[1]))
    return result


def fold_periods(by_month: list[tuple[str, Figures]], period: str) -> list[tuple[str, Figures]]:
    """Months folded into quarters ("2026-Q4") or years ("2026")."""
    folded: dict[str, Figures] = {}
    for month, figures in by_month:
        year, number = month.split("-")
        key = year if period == "year" else f"{year}-Q{(int(number) - 1) // 3 + 1}"
        folded.setdefault(key, Figures()).add(figures)
    return sorted(folded.items())


# --- inventory, buffer pool, orders to watch ----------------------------------------------------

@dataclass
class Inventory:
    issued: int = 0
    available: int = 0
    listed: int = 0
    reserved: int = 0
    retired: int = 0
    buffer: int = 0
    cancelled: int = 0


def inventory(session: so.Session, *, county_id: int | None = None, seller_id: int | None = None) -> Inventory:
    """Ledger balances summed over batches: issued, unlisted, listed, reserved, retired, buffer, cancelled."""
    stmt = (sa.select(LedgerBalance.account, sa.func.sum(LedgerBalance.units))
            .join(CreditBatch, CreditBatch.id == LedgerBalance.batch_id)
            .join(Project, Project.id == CreditBatch.project_id).group_by(LedgerBalance.account))
    if county_id:
        stmt = stmt.where(Project.village_id.in_(village_ids_under(session, county_id)))
    if seller_id is not None:
        stmt = stmt.where(Project.seller_organisation_id == seller_id)
    result = Inventory()
    for account, units in session.execute(stmt):
        units = int(units or 0)
        if account == "issuance":
            result.issued -= units
        elif account.startswith("listed:"):
            result.listed += units
        elif account.startswith("reserved:"):
            result.reserved += units
        elif account in ("available", "retired", "buffer", "cancelled"):
            setattr(result, account, getattr(result, account) + units)
    return result


def recent_orders(session: so.Session, limit: int = 10) -> list[Order]:
    return list(session.scalars(sa.select(Order).where(Order.status.in_(SOLD_STATUSES))
                                .order_by(Order.id.desc()).limit(limit).options(so.joinedload(Order.buyer))))


def pending_transfers(session: so.Session, limit: int = 50) -> list[Order]:
    return list(session.scalars(sa.select(Order).where(Order.status == "pending_payment",
                                                       Order.payment_method == "bank_transfer")
                                .order_by(Order.reserved_until).limit(limit).options(so.joinedload(Order.buyer))))
