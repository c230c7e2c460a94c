"""Orders: allocation across listings, reservation, payment, expiry, cancellation and refunds.

Placing an order reserves its units in the ledger in the same transaction (listed → reserved), so a
listing can never be oversold: the ledger's conditional debit is the only gate, under any concurrency.
Status only moves forward, each move a conditional UPDATE (``… WHERE status = :from``), so of two
processes deciding at once (a webhook and the expiry task, a refund and the retirement task) exactly
one wins and the other sees that it lost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.models import CreditBatch, LedgerBalance, Listing, Project, Region, User
from marketplace.models.base import utcnow
from marketplace.models.order import PAYMENT_METHODS, Order, OrderLine, OrderTransition
from marketplace.services import ledger, outbox
from marketplace.services.errors import (
    Forbidden,
    InsufficientCredits,
    InvalidTransition,
    ValidationFailed,
)
from marketplace.services.quantities import amount_for, display_tonnes

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


def _candidates(session: so.Session, *, listing_id: int | None, prefer_county_id: int | None):
    """Active listings with units left: the chosen one, or all cheapest first (preferred county first)."""
    balance = LedgerBalance
    stmt = (sa.select(Listing, balance.units)
            .join(balance, sa.and_(balance.batch_id == Listing.batch_id,
                                   balance.account == sa.literal("listed:") + sa.cast(Listing.id, sa.String)))
            .where(Listing.status == "active", balance.units > 0)
            .options(*QUOTE_LOADS))
    if listing_id is not None:
        stmt = stmt.where(Listing.id == listing_id)
    order = [Listing.price_cny_per_tonne, Listing.id]
    if prefer_county_id:
        from marketplace.services.registry import village_ids_under

        villages = village_ids_under(session, prefer_county_id)
        preferred = sa.case((Listing.batch_id.in_(
            sa.select(CreditBatch.id).join(Project).where(Project.village_id.in_(villages))), 0), else_=1)
        order = [preferred, *order]
    return session.execute(stmt.order_by(*order)).all()


def quote(session: so.Session, *, units: int, listing_id: int | None = None,
          prefer_county_id: int | None = None) -> list[QuoteLine]:
    """The lines an order for ``units`` would have now. Raises if the market cannot supply it."""
    if listing_id is not None:
        rows = _candidates(session, listing_id=listing_id, prefer_county_id=None)
        if not rows:
            raise ValidationFailed(_l("This listing is not on sale."), "listing_id")
        listing, available = rows[0]
        if units < listing.min_order_units:
            raise ValidationFailed(_l("The minimum order on this listing is %(t)s t.",
                                      t=display_tonnes(listing.min_order_units)), "quantity_tonnes")
        if units > available:
            raise InsufficientCredits(_l("Only %(t)s t are left on this listing.", t=display_tonnes(available)),
                                      "quantity_tonnes")
        return [QuoteLine(listing, units)]
    lines, need = [], units
    for listing, available in _candidates(session, listing_id=None, prefer_county_id=prefer_county_id):
        take = min(available, need)
        if take < listing.min_order_units:
            continue
        lines.append(QuoteLine(listing, take))
        need -= take
        if need == 0:
            return lines
    raise InsufficientCredits(_l("The market has fewer credits on sale than %(t)s t.", t=display_tonnes(units)),
                              "quantity_tonnes")


def fingerprint(payload: dict) -> str:
    """A stable digest of an order request, to tell a repeated request from a different one."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def find_by_idempotency_key(session: so.Session, organisation_id: int, key: str) -> Order | None:
    return session.scalar(sa.select(Order).where(Order.buyer_organisation_id == organisation_id,
                                                 Order.idempotency_key == key))


def _clean(text, field: str, max_length: int) -> str:
    value = (text or "").strip()
    if not value:
        raise ValidationFailed(_l("This field is required."), field)
    if len(value) > max_length:
        raise ValidationFailed(_l("At most %(n)s characters.", n=max_length), field)
    return value


def reservation_deadline(payment_method: str, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    if payment_method == "bank_transfer":
        return now + timedelta(days=current_app.config["BANK_TRANSFER_RESERVATION_DAYS"])
    return now + timedelta(minutes=current_app.config["RESERVATION_MINUTES"])


def place_order(session: so.Session, *, actor: User, units: int, payment_method: str, beneficiary: str,
                retirement_reason: str, listing_id: int | None = None, prefer_county_id: int | None = None,
                event_id: int | None = None, idempotency_key: str | None = None,
                request_fingerprint: str | None = None) -> Order:
    """Create an order and reserve its units, in the caller's transaction."""
    if actor.role != "buyer":
        raise Forbidden(_l("Only buyer organisations place orders."))
    if payment_method not in PAYMENT_METHODS:
        raise ValidationFailed(_l("Choose card or bank transfer."), "payment_method")
    beneficiary = _clean(beneficiary, "beneficiary", 200)
    retirement_reason = _clean(retirement_reason, "retirement_reason", 500)
    lines = quote(session, units=units, listing_id=listing_id, prefer_county_id=prefer_county_id)
    order = Order(buyer_organisation_id=actor.organisation_id, created_by_id=actor.id, event_id=event_id,
                  quantity_units=units, amount_cny=sum((line.amount for line in lines), Decimal("0.00")),
                  beneficiary=beneficiary, retirement_reason=retirement_reason, payment_method=payment_method,
                  status="pending_payment", reserved_until=reservation_deadline(payment_method),
                  idempotency_key=idempotency_key, request_fingerprint=request_fingerprint, lines=[])
    session.add(order)
    session.flush()
    # Reserve in the one global lock order (batch, listing): concurrent orders never deadlock.
    # The lines go in through the relationship, so ``order.lines`` is known without reading it back.
    for line in sorted(lines, key=lambda q: (q.listing.batch_id, q.listing.id)):
        ledger.reserve(session, listing=line.listing, units=line.units, order_ref=order.ref, actor_id=actor.id)
        order.lines.append(OrderLine(listing=line.listing, listing_id=line.listing.id,
                                     batch_id=line.listing.batch_id, units=line.units,
                                     price_cny_per_tonne=line.price, amount_cny=line.amount))
    session.add(OrderTransition(order_id=order.id, from_status="", to_status="pending_payment", actor_id=actor.id,
                                note=payment_method))
    session.flush()
    return order


def transition(session: so.Session, order: Order, to_status: str, *, actor_id: int | None = None, note: str = "",
               **values) -> bool:
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
    session.add(OrderTransition(order_id=order.id, from_status=from_status, to_status=to_status, actor_id=actor_id,
                                note=note[:300]))
    session.flush()
    session.refresh(order)
    if to_status == "completed":
        # The dashboards' aggregates move in the same transaction; only the winner of the UPDATE gets here.
        from marketplace.services import stats

        stats.record_completion(session, order)
    return True


def lock(session: so.Session, order_id: int) -> Order | None:
    """The order, row-locked for the rest of the transaction (PostgreSQL; SQLite locks the database)."""
    return session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update(of=Order)
                          .execution_options(populate_existing=True))


def mark_paid(session: so.Session, order_id: int, *, note: str, actor_id: int | None = None,
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
        _request_refund(session, order, note=f"payment after cancellation: {note}")
        return False
    if order.status == "expired":
        try:
            with session.begin_nested():
                for line in sorted(order.lines, key=lambda ln: (ln.batch_id, ln.listing_id)):
                    ledger.reserve(session, listing=line.listing, units=line.units, order_ref=order.ref)
        except InsufficientCredits:
            _request_refund(session, order, note=f"late payment, units gone: {note}")
            return False
    values = {"paid_at": utcnow()}
    if bank_reference:
        values["bank_reference"] = bank_reference
    if not transition(session, order, "paid", actor_id=actor_id, note=note, **values):
        return False
    outbox.enqueue(session, RETIRE_TASK, order_id=order.id)
    return True


def _request_refund(session: so.Session, order: Order, *, note: str) -> None:
    """Money arrived for an order that cannot be fulfilled: give it back (card: through Stripe)."""
    if order.refund_status != "none":
        return
    session.execute(sa.update(Order).where(Order.id == order.id, Order.refund_status == "none")
                    .values(refund_status="pending", updated_at=utcnow()),
                    execution_options={"synchronize_session": False})
    session.add(OrderTransition(order_id=order.id, from_status=order.status, to_status=order.status, note=note[:300]))
    if order.payment_method == "card":
        outbox.enqueue(session, REFUND_TASK, order_id=order.id)
    session.flush()
    session.refresh(order)


def cancel(session: so.Session, order: Order, *, actor: User) -> Order:
    """Before payment: cancel and release. Paid but not yet retired: refund and release. Later: refused."""
    order = lock(session, order.id)
    if order.status == "pending_payment":
        if transition(session, order, "cancelled", actor_id=actor.id, note="cancelled by the buyer"):
            ledger.release(session, order_ref=order.ref, actor_id=actor.id)
            outbox.enqueue(session, CANCEL_PAYMENT_TASK, order_id=order.id)
            return order
    if order.status == "paid":
        if transition(session, order, "refunded", actor_id=actor.id, note="cancelled after payment"):
            ledger.release(session, order_ref=order.ref, actor_id=actor.id)
            _request_refund(session, order, note="refund requested by the buyer")
            return order
    if order.status in ("cancelled", "refunded", "expired"):
        return order  # already done: repeating the request is harmless
    raise InvalidTransition(_l("Retired credits cannot be cancelled or refunded."))


def record_manual_refund(session: so.Session, order: Order, *, actor: User, reference: str) -> Order:
    """The bureau records a bank-transfer refund it has made."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau records refunds."))
    reference = _clean(reference, "reference", 100)
    result = session.execute(sa.update(Order).where(Order.id == order.id, Order.refund_status == "pending")
                             .values(refund_status="done", refund_reference=reference, updated_at=utcnow()),
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise InvalidTransition(_l("No refund is pending for this order."))
    session.add(OrderTransition(order_id=order.id, from_status=order.status, to_status=order.status,
                                actor_id=actor.id, note=f"refund made: {reference}"[:300]))
    session.flush()
    session.refresh(order)
    return order


def confirm_bank_transfer(session: so.Session, order: Order, *, actor: User, reference: str) -> Order:
    """The bureau saw the money arrive: paid (idempotent for the same order)."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau confirms bank transfers."))
    reference = _clean(reference, "reference", 100)
    if order.payment_method != "bank_transfer":
        raise ValidationFailed(_l("This order is paid by card."), "reference")
    if order.status in ("paid", "retiring", "completed"):
        return order
    if order.status not in ("pending_payment", "expired"):
        raise InvalidTransition(_l("This order can no longer be paid."))
    mark_paid(session, order.id, note=f"bank transfer {reference}", actor_id=actor.id, bank_reference=reference)
    session.refresh(order)
    if order.status != "paid":
        raise InsufficientCredits(_l("The reservation expired and the credits are gone; refund the transfer."))
    return order


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
        if transition(session, order, "expired", note="reservation expired"):
            ledger.release(session, order_ref=order.ref)
            outbox.enqueue(session, CANCEL_PAYMENT_TASK, order_id=order.id)
            expired += 1
    return expired


def reserved_units(session: so.Session, order: Order) -> int:
    return sum(ledger.outstanding_reservations(session, order.ref).values())
