"""The figures of the dashboards and of GET /api/v1/stats/summary, read from the maintained aggregates.

Definitions (the same on every page, export and API answer):

- **sold**: units of orders with status paid, retiring or completed;
- **retired**: units of completed orders' retirements (the ledger's serial ranges, ``ref = order:<id>``);
- **revenue**: the sum of the order lines' amounts of sold orders. All of it goes to the selling
  cooperative, so revenue to villages is the same money broken down by the project's village;
- dates: a completed order counts on the local day of ``completed_at``, a paid or retiring one on
  the local day of ``paid_at`` (the platform's time zone, Asia/Shanghai).

Completed orders are read from the aggregates (:mod:`marketplace.stats.aggregates`), the bureau's
from the cumulative tiers, a bounded number of rows for any range (:mod:`marketplace.stats.ranges`). The few orders still between
payment and completion are read directly (an indexed status lookup).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core import quantities
from marketplace.core.dates import FIRST_YEAR, LAST_YEAR, within_calendar
from marketplace.core.errors import ValidationFailed
from marketplace.core.ids import is_id
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import REGION_ANCESTORS, CreditBatch, LedgerBalance, Project, Region
from marketplace.registry.service import village_ids_under
from marketplace.stats.aggregates import (
    COUNTED,
    KEY_COLUMNS,
    BatchFacts,
    Sums,
    batch_facts,
    day_key,
    key_of,
    local_day,
    zone,
)
from marketplace.stats.models import RetirementStat
from marketplace.stats.ranges import month_series, read_range

SOLD_STATUSES = ("paid", "retiring", "completed")
IN_FLIGHT_STATUSES = ("paid", "retiring")
DIMENSIONS = ("total", "buyer", "village", "project", "month")


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


def _parse_day(text, field_name: str, *, end: bool) -> date | None:
    """YYYY-MM-DD, or YYYY-MM for the month's first (``end``: last) day; blank for none."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 7:
            first = date.fromisoformat(text + "-01")
            day = first.replace(day=calendar.monthrange(first.year, first.month)[1]) if end else first
        else:
            day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(_l("Enter a date as YYYY-MM-DD."), field_name) from None
    if not within_calendar(day):
        raise ValidationFailed(_l("Enter a date between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR),
                               field_name)
    return day


def parse_filters(raw_from: str | None, raw_to: str | None, raw_county: str | int | None) -> Filters:
    """Filters from request arguments: dates as YYYY-MM-DD (or YYYY-MM: the whole month), a county id."""
    date_from = _parse_day(raw_from, "from", end=False)
    date_to = _parse_day(raw_to, "to", end=True)
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

    @classmethod
    def completed(cls, sums: Sums) -> Figures:
        """Completed orders' figures: everything they sold is retired."""
        return cls(sums.units, sums.units, sums.amount_fen, sums.orders, sums.events)

    @property
    def revenue_cny(self) -> Decimal:
        return quantities.fen_to_cny(self.revenue_fen)


@dataclass
class Scope:
    """Whose figures: the bureau sees all; a seller its own sales; a buyer its own purchases."""

    seller_id: int | None = None
    buyer_id: int | None = None


# --- completed orders ------------------------------------------------------------------------------

def _day_sums(session: so.Session, dimension: str, conditions: list, sign=None) -> Iterator[tuple[tuple, Sums]]:
    """The daily rows matching the conditions, summed by the dimension's key (times a SQL sign, if given)."""
    s = RetirementStat
    group = [getattr(s, column) for column in KEY_COLUMNS[dimension]]
    weighed = [column if sign is None else column * sign for column in (s.units, s.amount_fen, s.orders, s.events)]
    stmt = (sa.select(*group, *(sa.func.sum(column).label(name) for column, name in
                                zip(weighed, ("units", "amount_fen", "orders", "events"), strict=True)))
            .where(*conditions))
    if group:
        stmt = stmt.group_by(*group)
    for row in session.execute(stmt):
        if row.units is None:
            continue
        yield key_of(dimension, row), Sums(int(row.units), int(row.amount_fen), int(row.orders or 0),
                                           int(row.events or 0))


def _from_aggregates(session: so.Session, filters: Filters) -> tuple[dict[str, dict[tuple, Figures]], dict]:
    """The bureau's figures for every dimension from the cumulative tiers, and the names of their keys:
    one statement for the keys and one for the month series, whatever the range (see
    :mod:`marketplace.stats.ranges`)."""
    result: dict[str, dict[tuple, Figures]] = {dimension: defaultdict(Figures) for dimension in DIMENSIONS}
    names: dict[tuple[str, int], object] = {}
    for (dimension, key_id, vintage, units, fen, orders, events, name, parent_level, parent_name, grandparent_level,
         grandparent_name, project_village) in read_range(session, filters.date_from, filters.date_to,
                                                          filters.county_id):
        units = int(units)
        if dimension == "project":
            result[dimension][(key_id, vintage)] = Figures(units, units, int(fen), int(orders), int(events))
            names[(dimension, key_id)] = ProjectName(key_id, name, project_village)
            continue
        result[dimension][(key_id,) if dimension != "total" else ()] = Figures(units, units, int(fen), int(orders),
                                                                              int(events))
        if dimension == "buyer":
            names[(dimension, key_id)] = Buyer(key_id, name)
        elif dimension == "village" and parent_level == "township" and grandparent_level == "county":
            names[(dimension, key_id)] = Village(key_id, name, parent_name, grandparent_name)
    for month, (units, fen, orders, events) in month_series(session, filters.date_from, filters.date_to,
                                                            filters.county_id):
        result["month"][(month.strftime("%Y-%m"),)] = Figures.completed(Sums(units, fen, orders, events))
    return result, names


def _from_days(session: so.Session, filters: Filters, scope: Scope, dimension: str) -> dict[tuple, Figures]:
    """Figures grouped by a dimension straight from the daily table: a seller's or a buyer's (through
    their indexed columns), and the reference the bureau's figures are tested against."""
    s = RetirementStat
    conditions = []
    if filters.date_from:
        conditions.append(s.day >= filters.date_from)
    if filters.date_to:
        conditions.append(s.day <= filters.date_to)
    if filters.county_id:
        conditions.append(s.county_id == filters.county_id)
    if scope.seller_id is not None:
        conditions.append(s.seller_organisation_id == scope.seller_id)
    if scope.buyer_id is not None:
        conditions.append(s.buyer_organisation_id == scope.buyer_id)
    result: dict[tuple, Figures] = defaultdict(Figures)
    for key, sums in _day_sums(session, dimension, conditions):
        result[key].add(Figures.completed(sums if dimension in COUNTED else sums.uncounted()))
    return result


def _completed(session: so.Session, filters: Filters, scope: Scope) -> tuple[dict[str, dict[tuple, Figures]], dict]:
    """Completed orders' figures for every dimension (total, buyer, village, project, month), and the
    names of the keys when the read gave them."""
    if scope.seller_id is None and scope.buyer_id is None:
        return _from_aggregates(session, filters)
    return {dimension: _from_days(session, filters, scope, dimension) for dimension in DIMENSIONS}, {}


# --- orders paid, not yet completed -------------------------------------------------------------------

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


def _add_in_flight(result: dict[tuple, Figures], dimension: str, in_flight: list) -> dict[tuple, Figures]:
    tz = zone()
    for order, line, f in in_flight:
        key = key_of(dimension, day_key(local_day(order.paid_at, tz), order.buyer_organisation_id, f))
        result[key].add(Figures(sold_units=line.units, revenue_fen=quantities.fen(line.amount_cny)))
    return dict(result)


# --- the summary ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Buyer:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Village:
    """A village with the names above it, read in a few plain queries (no ORM objects)."""

    id: int
    name: str
    township: str
    county: str


@dataclass(frozen=True, slots=True)
class ProjectName:
    id: int
    name: str
    village: str


@dataclass
class Summary:
    filters: Filters
    totals: Figures
    buyers: int
    #: largest first (then by name)
    by_buyer: list[tuple[Buyer, Figures]] = field(default_factory=list)
    #: by county, township and village name
    by_village: list[tuple[Village, Figures]] = field(default_factory=list)
    by_month: list[tuple[str, Figures]] = field(default_factory=list)
    #: largest first (then by name and vintage)
    by_project: list[tuple[ProjectName, int, Figures]] = field(default_factory=list)


def _villages(session: so.Session, ids: set[int]) -> dict[int, Village]:
    """The villages and the names of their township and county: one query reading each village with
    its parent and grandparent (village › township › county); a village elsewhere in the tree has its
    ancestors walked one query per level."""
    if not ids:
        return {}
    parent, grandparent = so.aliased(Region), so.aliased(Region)
    result, odd = {}, set()
    for row in session.execute(
            sa.select(Region.id, Region.name, Region.parent_id, parent.level, parent.name, grandparent.level,
                      grandparent.name)
            .outerjoin(parent, parent.id == Region.parent_id).outerjoin(grandparent, grandparent.id == parent.parent_id)
            .where(Region.id.in_(ids))):
        village_id, name, _parent_id, level1, name1, level2, name2 = row
        if level1 == "township" and level2 == "county":
            result[village_id] = Village(village_id, name, name1, name2)
        else:
            odd.add(village_id)
    if odd:
        for region in session.scalars(sa.select(Region).where(Region.id.in_(odd)).options(REGION_ANCESTORS)):
            township, county = region.ancestor("township"), region.ancestor("county")
            result[region.id] = Village(region.id, region.name, township.name if township else "",
                                        county.name if county else "")
    return result


def summary(session: so.Session, filters: Filters, scope: Scope | None = None) -> Summary:
    """Every figure of a dashboard, for the bureau (no scope), a seller or a buyer. Names come from
    plain column queries, a few hundred rows at most: no ORM object is built per row."""
    scope = scope or Scope()
    in_flight = _in_flight(session, filters, scope)
    completed, known = _completed(session, filters, scope)
    by = {dimension: _add_in_flight(completed[dimension], dimension, in_flight) for dimension in DIMENSIONS}
    totals = by["total"].get((), Figures())
    by_buyer, by_village, by_month, by_project = by["buyer"], by["village"], by["month"], by["project"]
    # Names the read did not give (a scoped dashboard, a key only in flight): plain column queries.
    missing = {k[0] for k in by_buyer if ("buyer", k[0]) not in known}
    names = {k: known[("buyer", k)].name for k, in by_buyer if ("buyer", k) in known}
    if missing:
        names |= dict(session.execute(sa.select(Organisation.id, Organisation.name).where(
            Organisation.id.in_(missing))).all())
    villages = {k: known[("village", k)] for k, in by_village if ("village", k) in known}
    villages |= _villages(session, {k[0] for k in by_village} - set(villages))
    projects = {k[0]: known[("project", k[0])] for k in by_project if ("project", k[0]) in known}
    missing = {k[0] for k in by_project} - set(projects)
    if missing:
        projects |= {row.id: ProjectName(row.id, row.name, row.village) for row in session.execute(
            sa.select(Project.id, Project.name, Region.name.label("village"))
            .join(Region, Region.id == Project.village_id).where(Project.id.in_(missing)))}
    result = Summary(filters=filters, totals=totals, buyers=sum(1 for f in by_buyer.values() if f.sold_units))
    result.by_buyer = sorted(((Buyer(k[0], names[k[0]]), f) for k, f in by_buyer.items()),
                             key=lambda item: (-item[1].sold_units, item[0].name))
    result.by_village = sorted(((villages[k[0]], f) for k, f in by_village.items()),
                               key=lambda item: (item[0].county, item[0].township, item[0].name))
    result.by_month = sorted(((k[0], f) for k, f in by_month.items()), key=lambda item: item[0])
    result.by_project = sorted(((projects[k[0]], k[1], f) for k, f in by_project.items()),
                               key=lambda item: (-item[2].sold_units, item[0].name, item[1]))
    return result


def largest(rows: list, limit: int | None, figures_of=lambda item: item[1]) -> tuple[list, int, Figures]:
    """The rows with the most sold first (ties in their order), at most ``limit`` of them (all when None),
    how many are left, and the figures of those left summed."""
    ranked = sorted(rows, key=lambda item: -figures_of(item).sold_units)
    if limit is None or len(ranked) <= limit:
        return ranked, 0, Figures()
    rest = Figures()
    for item in ranked[limit:]:
        rest.add(figures_of(item))
    return ranked[:limit], len(ranked) - limit, rest


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
