"""Orders: allocation across listings, reservation, payment, expiry, cancellation and refunds.

Placing an order reserves its units in the ledger in the same transaction (listed → reserved), so a
listing can never be oversold: the ledger's conditional debit is the only gate, under any concurrency.
Status only moves forward, each move a conditional UPDATE (``… WHERE status = :from``), so of two
processes deciding at once (a webhook and the expiry task, a refund and the retirement task) exactly
one wins and the other sees that it lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError

from marketplace.accounts.models import User
from marketplace.core import outbox
from marketplace.core.dates import FIRST_DAY, LAST_DAY, within_calendar
from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import Forbidden, InsufficientCredits, InvalidTransition, ValidationFailed
from marketplace.core.quantities import amount_for, display_tonnes, parse_tonnes
from marketplace.core.signals import ask
from marketplace.footprint import service as footprint
from marketplace.footprint.models import Event
from marketplace.orders import history as notes
from marketplace.orders.models import PAYMENT_METHODS, RETIREMENT_PURPOSES, Order, OrderLine, OrderTransition
from marketplace.orders.signals import certificate_number_wanted, order_completed, order_paid, order_refunded
from marketplace.registry import ledger
from marketplace.registry.models import CreditBatch, LedgerBalance, Listing, Project, Region
from marketplace.registry.service import village_ids_under

#: status → statuses it may move to
TRANSITIONS = {
    "pending_payment": {"paid", "cancelled", "expired"},
    "expired": {"paid"},  # only when a late payment can still be honoured (re-reserved)
    "paid": {"retiring", "refunded"},
    "retiring": {"completed"},
}
OPEN_STATUSES = ("pending_payment", "paid", "retiring")
RETIRE_TASK = "tanhui.retire_order"
REFUND_TASK = "tanhui.refund_order"
CANCEL_PAYMENT_TASK = "tanhui.cancel_payment"


@dataclass
class QuoteLine:
    listing: Listing
    units: int

    @property
    def price(self) -> Decimal:
        return self.listing.price_cny_per_tonne

    @property
    def amount(self) -> Decimal:
        return amount_for(self.units, self.listing.price_cny_per_tonne)


#: What a quote and an order's lines show (project and village names), loaded with the listings; the
#: rest of the models' eager chain (the village's four parent regions, the seller) loads only if read.
QUOTE_LOADS = (
    so.joinedload(Listing.batch).joinedload(CreditBatch.project).options(
        so.lazyload(Project.seller), so.joinedload(Project.village).lazyload(Region.parent)),
)


def _on_sale(stmt: sa.Select, session: so.Session | None, *, listing_id: int | None,
             prefer_county_id: int | None, eligible_only: bool = False) -> sa.Select:
    """Active listings with units left: the chosen one, or all cheapest first (preferred county first).
    ``eligible_only``: only batches the bureau labelled eligible for large-event neutralisation."""
    balance = LedgerBalance
    stmt = (stmt.join(balance, sa.and_(balance.batch_id == Listing.batch_id,
                                       balance.account == sa.literal("listed:") + sa.cast(Listing.id, sa.String)))
            .where(Listing.status == "active", balance.units > 0))
    if eligible_only:
        stmt = stmt.where(Listing.batch_id.in_(sa.select(CreditBatch.id).where(CreditBatch.event_eligible.is_(True))))
    if listing_id is not None:
        stmt = stmt.where(Listing.id == listing_id)
    order = [Listing.price_cny_per_tonne, Listing.id]
    if prefer_county_id:
        villages = village_ids_under(session, prefer_county_id)
        preferred = sa.case((Listing.batch_id.in_(
            sa.select(CreditBatch.id).join(Project).where(Project.village_id.in_(villages))), 0), else_=1)
        order = [preferred, *order]
    return stmt.order_by(*order)


def _allocate(candidates, *, units: int, listing_id: int | None) -> list[tuple]:
    """(item, units) lines for an order of ``units`` from (item, available, min_order_units) candidates in
    preference order. Raises if they cannot supply it."""
    if listing_id is not None:
        if not candidates:
            raise ValidationFailed(_l("This listing is not on sale."), "listing_id")
        item, available, min_units = candidates[0]
        if units < min_units:
            raise ValidationFailed(_l("The minimum order on this listing is %(t)s t.",
                                      t=display_tonnes(min_units)), "quantity_tonnes")
        if units > available:
            raise InsufficientCredits(_l("Only %(t)s t are left on this listing.", t=display_tonnes(available)),
                                      "quantity_tonnes")
        return [(item, units)]
    lines, need = [], units
    for item, available, min_units in candidates:
        take = min(available, need)
        if take < min_units:
            continue
        lines.append((item, take))
        need -= take
        if need == 0:
            return lines
    raise InsufficientCredits(_l("The market has fewer credits on sale than %(t)s t.", t=display_tonnes(units)),
                              "quantity_tonnes")


def quote(session: so.Session, *, units: int, listing_id: int | None = None,
          prefer_county_id: int | None = None, eligible_only: bool = False) -> list[QuoteLine]:
    """The lines an order for ``units`` would have now (listings loaded for display). Raises if the market
    cannot supply it."""
    stmt = _on_sale(sa.select(Listing, LedgerBalance.units).options(*QUOTE_LOADS), session,
                    listing_id=listing_id, prefer_county_id=prefer_county_id if listing_id is None else None,
                    eligible_only=eligible_only)
    rows = session.execute(stmt).all()
    candidates = [(listing, available, listing.min_order_units) for listing, available in rows]
    return [QuoteLine(listing, take) for listing, take in _allocate(candidates, units=units, listing_id=listing_id)]


@dataclass(frozen=True)
class Offer:
    """A listing on sale as placing an order needs it: one Core row, no ORM objects."""

    listing_id: int
    batch_id: int
    price: Decimal
    project: str
    village: str


#: What placing an order reads of the listings on sale (one Core row each, no ORM objects).
_OFFER_COLUMNS = (sa.select(Listing.id, Listing.batch_id, Listing.price_cny_per_tonne, Listing.min_order_units,
                            LedgerBalance.units, Project.name, Region.name)
                  .select_from(Listing).join(CreditBatch, CreditBatch.id == Listing.batch_id)
                  .join(Project, Project.id == CreditBatch.project_id).join(Region, Region.id == Project.village_id))
#: The chosen listing's row, built once (the common case: no statement to build or cache key to compute).
_ONE_OFFER = _on_sale(_OFFER_COLUMNS, None, listing_id=None, prefer_county_id=None).where(
    Listing.id == sa.bindparam("offer_listing_id"))


def _offers(session: so.Session, *, units: int, listing_id: int | None,
            prefer_county_id: int | None, eligible_only: bool = False) -> list[tuple[Offer, int]]:
    """The same allocation as :func:`quote`, read in one Core statement: (offer, units) lines."""
    if listing_id is not None and not eligible_only:
        rows = session.connection().execute(_ONE_OFFER, {"offer_listing_id": listing_id})
    else:
        rows = session.connection().execute(
            _on_sale(_OFFER_COLUMNS, session, listing_id=listing_id,
                     prefer_county_id=prefer_county_id if listing_id is None else None, eligible_only=eligible_only))
    candidates = [(Offer(lid, batch_id, price, project, village), available, min_units)
                  for lid, batch_id, price, min_units, available, project, village in rows]
    return _allocate(candidates, units=units, listing_id=listing_id)


def find_by_idempotency_key(session: so.Session, organisation_id: int, key: str) -> Order | None:
    return session.scalar(sa.select(Order).where(Order.buyer_organisation_id == organisation_id,
                                                 Order.idempotency_key == key))


def _clean(text, column, field: str | None = None) -> str:
    """Required text for a column, stripped; at most as long as the column takes. ``field`` names it in the
    error (by default the column's name)."""
    value = (text or "").strip()
    field = field or column.key
    if not value:
        raise ValidationFailed(_l("This field is required."), field)
    limit = max_length(column)
    if len(value) > limit:
        raise ValidationFailed(_l("At most %(n)s characters.", n=limit), field)
    return value


def reservation_deadline(payment_method: str, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    if payment_method == "bank_transfer":
        return now + timedelta(days=current_app.config["BANK_TRANSFER_RESERVATION_DAYS"])
    return now + timedelta(minutes=current_app.config["RESERVATION_MINUTES"])


@dataclass(frozen=True)
class WrittenLine:
    """An order line as :func:`place` wrote it (the columns an answer shows; no ORM instance)."""

    id: int
    order_id: int
    listing_id: int
    batch_id: int
    units: int
    price_cny_per_tonne: Decimal
    amount_cny: Decimal


@dataclass(frozen=True)
class WrittenOrder:
    """A new order as :func:`place` wrote it: every column, read by attribute like an ``Order`` (the API's
    answer is made from this; building and attaching ORM instances costs more than the rest of the answer)."""

    id: int
    buyer_organisation_id: int
    created_by_id: int
    event_id: int | None
    quantity_units: int
    amount_cny: Decimal
    beneficiary: str
    retirement_reason: str
    purpose: str
    period_start: date | None
    period_end: date | None
    payment_method: str
    status: str
    reserved_until: datetime
    idempotency_key: str | None
    request_fingerprint: str | None
    refund_status: str
    created_at: datetime
    updated_at: datetime
    lines: tuple[WrittenLine, ...]
    bank_reference: None = None
    refund_reference: None = None
    paid_at: None = None
    completed_at: None = None
    notified_at: None = None

    @property
    def payment_reference(self) -> str:
        return f"TH{self.id:08d}"


class PlacedOrder:
    """A new order: ``written``, its values as written; ``places``, per listing id the (project, village)
    names its answer shows; and ``order``, the ORM ``Order`` built from those values on first use and
    attached to the session as loaded (nothing is read back or flushed). The order page and
    :func:`place_order` use ``order``; the API answers from ``written`` and never builds it."""

    def __init__(self, session: so.Session, written: WrittenOrder, places: dict[int, tuple[str, str]]):
        self._session = session
        self.written = written
        self.places = places

    @cached_property
    def order(self) -> Order:
        written = self.written
        lines = [OrderLine(**{key: getattr(line, key) for key in _WRITTEN_LINE_KEYS}) for line in written.lines]
        order = Order(**{key: getattr(written, key) for key in _WRITTEN_ORDER_KEYS}, lines=lines)
        for obj in (*lines, order):
            so.make_transient_to_detached(obj)
        self._session.add(order)
        return order


_WRITTEN_LINE_KEYS = tuple(f.name for f in fields(WrittenLine))
_WRITTEN_ORDER_KEYS = tuple(f.name for f in fields(WrittenOrder) if f.name != "lines")


_ORDERS, _LINES, _TRANSITIONS = Order.__table__, OrderLine.__table__, OrderTransition.__table__
#: The statements of placing an order, built once.
_INSERT_ORDER = sa.insert(_ORDERS).returning(_ORDERS.c.id)
_INSERT_LINES = sa.insert(_LINES).returning(_LINES.c.id, sort_by_parameter_order=True)
_INSERT_TRANSITION = sa.insert(_TRANSITIONS)
_ORDER_KEYS = ("buyer_organisation_id", "created_by_id", "event_id", "quantity_units", "amount_cny", "beneficiary",
               "retirement_reason", "purpose", "period_start", "period_end", "payment_method", "status",
               "reserved_until", "idempotency_key", "request_fingerprint", "refund_status", "created_at", "updated_at")
_LINE_KEYS = ("listing_id", "batch_id", "units", "price_cny_per_tonne", "amount_cny")
_TRANSITION_KEYS = ("from_status", "to_status", "actor_id", "note", "note_code", "note_params", "created_at")
_ENTRY_KEYS = ("batch_id", "from_account", "to_account", "units", "kind", "actor_id", "created_at")


def _params(prefix: str, table: sa.Table, keys) -> list[sa.BindParameter]:
    return [sa.bindparam(f"{prefix}_{key}", type_=table.c[key].type) for key in keys]


def _place_one_line_order() -> sa.Update:
    """PostgreSQL: a one-line order placed in one statement (data-modifying CTEs), built once.

    The order's INSERT … RETURNING id feeds its line, its first transition and its journal entry
    (``ref`` = 'order:' || id); the foreign keys are checked at the end of the statement. The main
    statement is the ledger's reservation (:func:`ledger.reserving`: the conditional debit of
    ``listed:``, then the credit of ``reserved:``), returning the new order's and line's ids, or no
    row if the debit found too few units (the caller then rolls the inserted rows back)."""
    new_order = (sa.insert(_ORDERS).values(dict(zip(_ORDER_KEYS, _params("o", _ORDERS, _ORDER_KEYS), strict=True)))
                 .returning(_ORDERS.c.id).cte("new_order"))
    new_line = (sa.insert(_LINES).from_select(("order_id", *_LINE_KEYS),
                                              sa.select(new_order.c.id, *_params("l", _LINES, _LINE_KEYS)))
                .returning(_LINES.c.id).cte("new_line"))
    new_transition = sa.insert(_TRANSITIONS).from_select(
        ("order_id", *_TRANSITION_KEYS),
        sa.select(new_order.c.id, *_params("t", _TRANSITIONS, _TRANSITION_KEYS))).cte("new_transition")
    entries = ledger.LedgerEntry.__table__
    new_entry = sa.insert(entries).from_select(
        (*_ENTRY_KEYS, "ref"),
        sa.select(*_params("e", entries, _ENTRY_KEYS),
                  sa.literal("order:", sa.String) + sa.cast(new_order.c.id, sa.String))).cte("new_entry")
    return ledger.reserving(new_order, new_line, new_transition, new_entry,
                            returning=(sa.select(new_order.c.id).scalar_subquery(),
                                       sa.select(new_line.c.id).scalar_subquery()))


_PLACE_ONE_LINE_ORDER = _place_one_line_order()

#: The smallest order: a card payment (or a transfer) of less is not worth its fees, and an amount that
#: rounds to ¥0.00 (0.0001 t at ¥33.33) could not be paid at all.
MIN_ORDER_AMOUNT_CNY = Decimal("1.00")


def place(session: so.Session, *, actor: User, units: int, payment_method: str, beneficiary: str,
          retirement_reason: str, listing_id: int | None = None, prefer_county_id: int | None = None,
          event_id: int | None = None, idempotency_key: str | None = None,
          request_fingerprint: str | None = None, purpose: str | None = None,
          eligible_only: bool = False, period_start: date | str | None = None,
          period_end: date | str | None = None) -> PlacedOrder:
    """Create an order and reserve its units, in the caller's transaction (see :func:`place_order`).

    Written with Core statements on the session's connection: one INSERT … RETURNING for the order, one
    for its lines, one for the transition and one for the journal entries, then per line the ledger's
    conditional debit and its credit (on PostgreSQL, a one-line order is all one statement). The balances come last, so the hot ``listed:`` row stays locked
    only from its debit to the caller's COMMIT. If a debit finds too few units, InsufficientCredits is
    raised and the caller rolls the whole transaction back (the rows written before go with it).
    What it returns holds the values written (no ORM instance until ``.order`` is asked for, then built
    from them and attached to the session as if loaded)."""
    if actor.role != "buyer":
        raise Forbidden(_l("Only buyer organisations place orders."))
    if payment_method not in PAYMENT_METHODS:
        raise ValidationFailed(_l("Choose card or bank transfer."), "payment_method")
    beneficiary = _clean(beneficiary, Order.beneficiary)
    retirement_reason = _clean(retirement_reason, Order.retirement_reason)
    purpose = purpose_for(purpose, event_id)
    period_start, period_end = period_for(session, period_start, period_end, event_id)
    session.flush()  # anything pending goes first, as an autoflush would before the quote
    lines = sorted(_offers(session, units=units, listing_id=listing_id, prefer_county_id=prefer_county_id,
                           eligible_only=eligible_only),
                   key=lambda line: (line[0].batch_id, line[0].listing_id))  # the ledger's lock order
    amounts = [amount_for(take, offer.price) for offer, take in lines]
    if sum(amounts, Decimal("0.00")) < MIN_ORDER_AMOUNT_CNY:
        raise ValidationFailed(_l("An order must come to at least ¥%(minimum)s; this one comes to ¥%(amount)s. "
                                  "Order more tonnes.", minimum=f"{MIN_ORDER_AMOUNT_CNY:.2f}",
                                  amount=f"{sum(amounts, Decimal('0.00')):.2f}"), "quantity")
    now = utcnow()
    values = {"buyer_organisation_id": actor.organisation_id, "created_by_id": actor.id, "event_id": event_id,
              "quantity_units": units, "amount_cny": sum(amounts, Decimal("0.00")), "beneficiary": beneficiary,
              "retirement_reason": retirement_reason, "purpose": purpose, "period_start": period_start,
              "period_end": period_end, "payment_method": payment_method,
              "status": "pending_payment", "reserved_until": reservation_deadline(payment_method, now),
              "idempotency_key": idempotency_key, "request_fingerprint": request_fingerprint,
              "refund_status": "none", "created_at": now, "updated_at": now}
    connection = session.connection()
    line_values = [{"listing_id": offer.listing_id, "batch_id": offer.batch_id, "units": take,
                    "price_cny_per_tonne": offer.price, "amount_cny": amount}
                   for (offer, take), amount in zip(lines, amounts, strict=True)]
    placed_note = notes.placed(payment_method)
    transition = {"from_status": "", "to_status": "pending_payment", "actor_id": actor.id, "note": "",
                  "note_code": placed_note.code, "note_params": placed_note.params,
                  "created_at": now}
    moves = [(offer.batch_id, offer.listing_id, take) for offer, take in lines]
    if len(lines) == 1 and connection.dialect.name == "postgresql":
        # The usual order: its four rows and its reservation in one round trip.
        (entry,) = ledger.reserve_entries(moves, order_ref="", actor_id=actor.id, now=now)
        params = {**{f"o_{key}": values[key] for key in _ORDER_KEYS},
                  **{f"l_{key}": line_values[0][key] for key in _LINE_KEYS},
                  **{f"t_{key}": transition[key] for key in _TRANSITION_KEYS},
                  **{f"e_{key}": entry[key] for key in _ENTRY_KEYS}, **ledger.reserve_params(*moves[0])}
        row = connection.execute(_PLACE_ONE_LINE_ORDER, params).first()
        if row is None:
            raise InsufficientCredits(ledger.RESERVE_REFUSED, "quantity")
        order_id, line_id = row
        line_ids = [line_id]
        for row_values in line_values:
            row_values["order_id"] = order_id
    else:
        order_id = connection.execute(_INSERT_ORDER, values).scalar_one()
        for row_values in line_values:
            row_values["order_id"] = order_id
        line_ids = connection.execute(_INSERT_LINES, line_values).scalars().all()
        connection.execute(_INSERT_TRANSITION, {"order_id": order_id, **transition})
        connection.execute(ledger.INSERT_ENTRIES,
                           ledger.reserve_entries(moves, order_ref=f"order:{order_id}", actor_id=actor.id, now=now))
        ledger.reserve_balances(connection, moves)
    written = WrittenOrder(id=order_id, **values, lines=tuple(
        WrittenLine(id=line_id, **row) for line_id, row in zip(line_ids, line_values, strict=True)))
    return PlacedOrder(session, written, {offer.listing_id: (offer.project, offer.village) for offer, _take in lines})


def place_order(session: so.Session, *, actor: User, units: int, payment_method: str, beneficiary: str,
                retirement_reason: str, listing_id: int | None = None, prefer_county_id: int | None = None,
                event_id: int | None = None, idempotency_key: str | None = None,
                request_fingerprint: str | None = None, purpose: str | None = None,
                period_start: date | str | None = None, period_end: date | str | None = None) -> Order:
    """Create an order and reserve its units, in the caller's transaction."""
    return place(session, actor=actor, units=units, payment_method=payment_method, beneficiary=beneficiary,
                 retirement_reason=retirement_reason, listing_id=listing_id, prefer_county_id=prefer_county_id,
                 event_id=event_id, idempotency_key=idempotency_key,
                 request_fingerprint=request_fingerprint, purpose=purpose, period_start=period_start,
                 period_end=period_end).order


def purpose_for(purpose: str | None, event_id: int | None) -> str:
    """The retirement's purpose: as given, else ``event`` for an order for an event and ``voluntary``
    otherwise. An ``event`` purpose needs the event it neutralises."""
    if purpose in (None, ""):
        return "event" if event_id is not None else "voluntary"
    if purpose not in RETIREMENT_PURPOSES:
        raise ValidationFailed(_l("Choose what the retirement is for."), "purpose")
    if purpose == "event" and event_id is None:
        raise ValidationFailed(_l("A large-event neutralisation names its event; choose the event."), "event_id")
    return purpose


def period_day(value: date | str | None, field: str) -> date | None:
    """A day of a retirement's period: a date, an ISO ``YYYY-MM-DD`` string, or None/"" for none. A day
    outside the calendar filters accept (core.dates) is refused like an unreadable one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise ValidationFailed(_l("Enter a date as YYYY-MM-DD."), field)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationFailed(_l("Enter a date as YYYY-MM-DD."), field) from None
    if not within_calendar(value):
        raise ValidationFailed(_l("Enter a date between %(first)s and %(last)s.", first=FIRST_DAY.isoformat(),
                                  last=LAST_DAY.isoformat()), field)
    return value


def period_for(session: so.Session, start: date | str | None, end: date | str | None,
               event_id: int | None) -> tuple[date | None, date | None]:
    """The period a retirement covers (first and last day): as given, both or neither, the end not before
    the start; given neither, an order for an event covers the event's days, any other order none."""
    start, end = period_day(start, "period_start"), period_day(end, "period_end")
    if start is None and end is None:
        if event_id is None:
            return None, None
        event = session.get(Event, event_id)  # usually in the session already: units_for looked it up
        return (event.starts_on, event.ends_on) if event is not None else (None, None)
    if start is None:
        raise ValidationFailed(_l("Give the first day of the period too, or neither day."), "period_start")
    if end is None:
        raise ValidationFailed(_l("Give the last day of the period too, or neither day."), "period_end")
    if end < start:
        raise ValidationFailed(_l("The period cannot end before it starts."), "period_end")
    return start, end


def purpose_label(purpose: str) -> str:
    return str({"event": _l("Large-event carbon neutrality"), "zero_carbon_org": _l("Zero-carbon organisation"),
                "ecological_compensation": _l("Ecological damage compensation"),
                "voluntary": _l("Voluntary offsetting"), "other": _l("Other purpose")}.get(purpose, purpose))


#: Tries of an allocated order that loses a race for the units it was quoted, or of a transaction that a
#: PostgreSQL deadlock or serialisation failure chose (nothing of it was saved).
PLACE_ATTEMPTS = 3


@dataclass(frozen=True)
class OrderRequest:
    """An order as a buyer asks for it (the order form or ``POST /api/v1/orders``), before the units are known."""

    payment_method: str
    beneficiary: str
    retirement_reason: str
    #: tonnes as typed ("175.402"), or None/"" to order the event's footprint
    quantity: object = None
    event_id: int | None = None
    listing_id: int | None = None
    prefer_county_id: int | None = None
    #: RETIREMENT_PURPOSES, or None: ``event`` with an event, else ``voluntary``
    purpose: str | None = None
    #: only credits eligible for large-event neutralisation (a top-up towards a guideline claim)
    eligible_only: bool = False
    #: the period the retirement covers (dates or ISO strings), both or neither: default the event's days
    period_start: object = None
    period_end: object = None


def units_for(session: so.Session, actor, *, event_id: int | None, quantity, quantity_field: str) -> int:
    """The units an order asks for: the quantity given, else the event's footprint (the event must be the
    actor's). ``quantity_field`` names the quantity in the caller's errors (``quantity``, ``quantity_tonnes``)."""
    given = quantity not in (None, "")
    if event_id is not None:
        event = footprint.visible_event(session, actor, event_id)
        if given:
            return parse_tonnes(quantity, quantity_field)
        units = footprint.event_total_units(session, event.id)
        if units <= 0:
            raise ValidationFailed(_l("The event has no footprint yet; add its activities first."), "event_id")
        return units
    if not given:
        raise ValidationFailed(_l("Enter the quantity in tonnes, or choose an event."), quantity_field)
    return parse_tonnes(quantity, quantity_field)


def place_request(session: so.Session, *, actor, request: OrderRequest, quantity_field: str = "quantity_tonnes",
                  idempotency_key: str | None = None, request_fingerprint: str | None = None) -> PlacedOrder:
    """Place the order a buyer asked for (see :func:`place`): units by :func:`units_for`, and retried when an
    allocated order loses the race for the units it was quoted (quoted again) or the database chose the
    transaction as a deadlock's victim.

    The one exception to "callers commit, services only flush": a retry needs a clean transaction, so this
    ROLLS BACK before trying again. Call it with a session that holds no other unfinished work (the order
    form and the API do). A key already used raises IntegrityError from the order's INSERT (the unique
    constraint is the check); :func:`marketplace.core.idempotency.act_once` turns that into the earlier order.
    """
    units = units_for(session, actor, event_id=request.event_id, quantity=request.quantity,
                      quantity_field=quantity_field)
    for attempt in range(1, PLACE_ATTEMPTS + 1):
        try:
            return place(session, actor=actor, units=units, payment_method=request.payment_method,
                         beneficiary=request.beneficiary, retirement_reason=request.retirement_reason,
                         listing_id=request.listing_id, prefer_county_id=request.prefer_county_id,
                         event_id=request.event_id, idempotency_key=idempotency_key,
                         request_fingerprint=request_fingerprint, purpose=request.purpose,
                         eligible_only=request.eligible_only, period_start=request.period_start,
                         period_end=request.period_end)
        except OperationalError:
            session.rollback()
            if attempt == PLACE_ATTEMPTS:
                raise
        except InsufficientCredits:
            # A chosen listing's refusal is final; an allocation can be quoted again from what is left.
            if request.listing_id is not None or attempt == PLACE_ATTEMPTS:
                raise
            session.rollback()
    raise AssertionError("unreachable")  # pragma: no cover


def _transition_row(order: Order, from_status: str, to_status: str, *, actor_id: int | None,
                    note: notes.Note | str | None) -> OrderTransition:
    """A transition row; its note is a code and parameters (orders.history), or free text as written."""
    row = OrderTransition(order_id=order.id, from_status=from_status, to_status=to_status, actor_id=actor_id)
    if isinstance(note, notes.Note):
        row.note_code, row.note_params = note.code, note.params or None
    else:
        row.note = (note or "")[:300]
    return row


def record_note(session: so.Session, order: Order, note: notes.Note | str, *, actor_id: int | None = None) -> None:
    """Something happened to the order that does not change its status (a refund flagged or made): a
    transition from its status to itself, with the note. Added to the session; flushed with the rest."""
    session.add(_transition_row(order, order.status, order.status, actor_id=actor_id, note=note))


def transition(session: so.Session, order: Order, to_status: str, *, actor_id: int | None = None,
               note: notes.Note | str | None = None, **values) -> bool:
    """Move the order forward if it is still where we think it is. False if another process won."""
    from_status = order.status
    if to_status not in TRANSITIONS.get(from_status, ()):
        return False
    now = utcnow()
    result = session.execute(
        sa.update(Order).where(Order.id == order.id, Order.status == from_status)
        .values(status=to_status, updated_at=now, **values), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        session.refresh(order)
        return False
    session.add(_transition_row(order, from_status, to_status, actor_id=actor_id, note=note))
    session.flush()
    session.refresh(order)
    if to_status == "completed":
        # The dashboards' aggregates move in the same transaction; only the winner of the UPDATE gets here.
        order_completed.send(session=session, order=order)
    elif to_status == "paid":
        # The money journal splits the payment in the same transaction (settlement).
        order_paid.send(session=session, order=order)
    elif to_status == "refunded":
        order_refunded.send(session=session, order=order)
    return True


def lock(session: so.Session, order_id: int) -> Order | None:
    """The order, row-locked for the rest of the transaction (PostgreSQL; SQLite locks the database)."""
    return session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update(of=Order)
                          .execution_options(populate_existing=True))


def mark_paid(session: so.Session, order_id: int, *, note: notes.Note | str, actor_id: int | None = None,
              bank_reference: str | None = None) -> bool:
    """Payment succeeded: paid, and retirement requested through the outbox, in one transaction.

    Idempotent: an order already paid (or further on) is left alone. A payment that arrives after the
    reservation expired is honoured if the same units can be reserved again; otherwise it is refunded.
    """
    order = lock(session, order_id)
    if order is None:
        return False
    if order.status in ("paid", "retiring", "completed", "refunded"):
        return False
    if order.status == "cancelled":
        _request_refund(session, order, note=notes.payment_after_cancellation(note))
        return False
    if order.status == "expired":
        try:
            with session.begin_nested():
                for line in sorted(order.lines, key=lambda ln: (ln.batch_id, ln.listing_id)):
                    ledger.reserve(session, listing=line.listing, units=line.units, order_ref=order.ref)
        except InsufficientCredits:
            _request_refund(session, order, note=notes.late_payment_units_gone(note))
            return False
    values = {"paid_at": utcnow()}
    if bank_reference:
        values["bank_reference"] = bank_reference
    if not transition(session, order, "paid", actor_id=actor_id, note=note, **values):
        return False
    outbox.enqueue(session, RETIRE_TASK, order_id=order.id)
    return True


def _request_refund(session: so.Session, order: Order, *, note: notes.Note | str) -> None:
    """Money arrived for an order that cannot be fulfilled: give it back (card: through Stripe)."""
    if order.refund_status != "none":
        return
    session.execute(sa.update(Order).where(Order.id == order.id, Order.refund_status == "none")
                    .values(refund_status="pending", updated_at=utcnow()),
                    execution_options={"synchronize_session": False})
    record_note(session, order, note)
    if order.payment_method == "card":
        outbox.enqueue(session, REFUND_TASK, order_id=order.id)
    session.flush()
    session.refresh(order)


def cancel(session: so.Session, order: Order, *, actor: User) -> Order:
    """Before payment: cancel and release. Paid but not yet retired: refund and release. Later: refused."""
    order = lock(session, order.id)
    if order.status == "pending_payment":
        if transition(session, order, "cancelled", actor_id=actor.id, note=notes.CANCELLED_BY_BUYER):
            ledger.release(session, order_ref=order.ref, actor_id=actor.id)
            outbox.enqueue(session, CANCEL_PAYMENT_TASK, order_id=order.id)
            return order
    if order.status == "paid":
        if transition(session, order, "refunded", actor_id=actor.id, note=notes.CANCELLED_AFTER_PAYMENT):
            ledger.release(session, order_ref=order.ref, actor_id=actor.id)
            _request_refund(session, order, note=notes.REFUND_REQUESTED)
            return order
    if order.status in ("cancelled", "refunded", "expired"):
        return order  # already done: repeating the request is harmless
    raise InvalidTransition(_l("Retired credits cannot be cancelled or refunded."))


def record_manual_refund(session: so.Session, order: Order, *, actor: User, reference: str) -> Order:
    """The bureau records a bank-transfer refund it has made."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau records refunds."))
    reference = _clean(reference, Order.refund_reference, "reference")
    result = session.execute(sa.update(Order).where(Order.id == order.id, Order.refund_status == "pending")
                             .values(refund_status="done", refund_reference=reference, updated_at=utcnow()),
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise InvalidTransition(_l("No refund is pending for this order."))
    record_note(session, order, notes.refund_made(reference), actor_id=actor.id)
    session.flush()
    session.refresh(order)
    return order


class TransferOutcome(enum.Enum):
    """What confirming a bank transfer did."""

    #: the order is paid now, and its retirement requested
    PAID = "paid"
    #: it was paid before (the same confirmation again): nothing changed
    ALREADY_PAID = "already paid"
    #: the reservation had expired and the credits were sold meanwhile: the order stays expired and the
    #: transfer is flagged to be refunded (the bureau records the refund once made)
    REFUND_NEEDED = "refund needed"


#: What the bureau is told when a transfer came too late (TransferOutcome.REFUND_NEEDED).
LATE_TRANSFER_MESSAGE = _l("The reservation expired and the credits are gone; refund the transfer.")


def confirm_bank_transfer(session: so.Session, order: Order, *, actor: User, reference: str) -> TransferOutcome:
    """The bureau saw the money arrive (flushed; the caller commits whatever the outcome).

    Paid, or already paid (the same confirmation twice changes nothing), or — for a reservation that
    expired and whose credits were sold since — a refund flagged. Raises only for a request refused
    outright (not the bureau, a card order, a cancelled or refunded order, an empty reference), having
    changed nothing."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau confirms bank transfers."))
    reference = _clean(reference, Order.bank_reference, "reference")
    if order.payment_method != "bank_transfer":
        raise ValidationFailed(_l("This order is paid by card."), "reference")
    if order.status in ("paid", "retiring", "completed"):
        return TransferOutcome.ALREADY_PAID
    if order.status not in ("pending_payment", "expired"):
        raise InvalidTransition(_l("This order can no longer be paid."))
    mark_paid(session, order.id, note=notes.bank_transfer(reference), actor_id=actor.id, bank_reference=reference)
    session.refresh(order)
    if order.status == "paid":
        return TransferOutcome.PAID
    if order.status in ("retiring", "completed"):  # pragma: no cover — paid by a concurrent confirmation
        return TransferOutcome.ALREADY_PAID
    return TransferOutcome.REFUND_NEEDED


def expire_due(session: so.Session, now: datetime | None = None, limit: int = 200) -> int:
    """Release reservations whose time is up. Safe to run anywhere, any number of times at once."""
    now = now or utcnow()
    stmt = (sa.select(Order.id).where(Order.status == "pending_payment", Order.reserved_until < now)
            .order_by(Order.reserved_until).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    expired = 0
    for order_id in session.scalars(stmt).all():
        order = session.get(Order, order_id)
        if transition(session, order, "expired", note=notes.RESERVATION_EXPIRED):
            ledger.release(session, order_ref=order.ref)
            outbox.enqueue(session, CANCEL_PAYMENT_TASK, order_id=order.id)
            expired += 1
    return expired


def reserved_units(session: so.Session, order: Order) -> int:
    return sum(ledger.outstanding_reservations(session, order.ref).values())


#: Orders in these states hold an event's footprint fixed: it has been paid for (or retired) as it is.
LOCKING_ORDER_STATUSES = ("paid", "retiring", "completed")


def locking_orders(_sender=None, *, session: so.Session, event_id: int) -> list[Order]:
    """The event's orders that fix its footprint (paid, retiring or completed), oldest first."""
    return list(session.scalars(sa.select(Order).where(Order.event_id == event_id,
                                                       Order.status.in_(LOCKING_ORDER_STATUSES))
                                .order_by(Order.id)))


def certificate_number(session: so.Session, order: Order) -> str | None:
    """The order's certificate number, shown once the order is completed. The certificate is committed
    before its PDF is drawn and the order completed, so between the two the order page and the API would
    otherwise offer a certificate for an order still "retiring"."""
    if order.status != "completed":
        return None
    return ask(certificate_number_wanted, session=session, order_id=order.id)
