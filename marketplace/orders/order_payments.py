"""Card payments of orders: settling a PaymentIntent, the pay page, the periodic re-read, refunds and
cancelled intents.

Four paths learn that a card payment may have moved: the pay page's card POST, the page's return from
3-D Secure, the webhook and the periodic re-read. Each calls :func:`settle`, the one place that reads
the PaymentIntent from Stripe, checks it against the order's recorded attempt and pays the order
(``orders.mark_paid``: idempotent, forward only). Whichever comes first wins; the others change nothing.
Pages that only show an order (GET) never call Stripe and never write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import utcnow
from marketplace.core.quantities import fen
from marketplace.orders import history as notes
from marketplace.orders import payments
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderTransition
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.client import StripeError, StripeUnavailable
from marketplace.orders.stripe.webhook import register_handler

log = logging.getLogger(__name__)

#: What :func:`settle` can find, as ``Settlement.outcome``.
PAID = "paid"  # the order is paid now, by this settlement
ALREADY_PAID = "already paid"  # it succeeded and the order was paid before: nothing changed
REFUND_NEEDED = "refund needed"  # it succeeded for an order cancelled, or expired and sold meanwhile
FAILED = "failed"  # the PaymentIntent was cancelled or its last payment failed
WAITING = "waiting"  # not finished (3-D Secure, processing …)
MISMATCH = "mismatch"  # it is not what the order's attempt asked for (amount, currency, order)
UNKNOWN = "unknown"  # no attempt of ours has this PaymentIntent

#: Stripe statuses of a PaymentIntent that still waits for the buyer, and could be cancelled.
_CANCELLABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


@dataclass(frozen=True)
class Settlement:
    """What settling a PaymentIntent found (``outcome``, one of the constants above) and its status at Stripe."""

    outcome: str
    intent_status: str | None = None


def intent_matches(order: Order, attempt: PaymentAttempt, intent: dict) -> bool:
    """The PaymentIntent is the one this order's attempt recorded, for exactly the order's amount in yuan."""
    metadata_order = str((intent.get("metadata") or {}).get("order_id") or "")
    return (intent.get("id") == attempt.payment_intent_id
            and metadata_order in ("", str(order.id))
            and intent.get("amount") == attempt.amount_fen == fen(order.amount_cny)
            and (intent.get("currency") or "").lower() == attempt.currency == "cny")


def settle(session: so.Session, payment_intent_id: str, *, via: str, event_id: str | None = None,
           intent: dict | None = None) -> Settlement:
    """Bring the order in step with its PaymentIntent, as Stripe has it now (flushed; the caller commits).

    The attempt that recorded the PaymentIntent is locked (the webhook and the pay page may settle the
    same one at once), the PaymentIntent read from Stripe — unless ``intent`` is Stripe's answer of this
    very request (the pay view's confirm), so it is never read twice — and recorded on the attempt. A
    succeeded PaymentIntent that matches the attempt and the order (amount, currency, order) pays the
    order, noting ``via`` (``webhook`` with ``event_id``, ``pay_page``, ``reread``, ``cancelling``);
    settling it again changes nothing. Raises StripeError/StripeUnavailable when Stripe cannot be read;
    nothing has changed then, and the next path to come along settles it.
    """
    attempt = session.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.payment_intent_id == payment_intent_id)
                              .with_for_update()).first()
    if attempt is None:
        log.warning("PaymentIntent %s is no attempt of ours", payment_intent_id)
        return Settlement(UNKNOWN)
    if intent is None or intent.get("id") != payment_intent_id:
        intent = payments.refresh_attempt(session, attempt)
    else:
        payments.record_intent(attempt, intent)
        session.flush()
    status = intent.get("status")
    if status == "succeeded":
        order = session.get(Order, attempt.order_id)
        if order is None or not intent_matches(order, attempt, intent):
            log.error("PaymentIntent %s (%s %s, order %s) does not match its attempt %s", payment_intent_id,
                      intent.get("amount"), intent.get("currency"), (intent.get("metadata") or {}).get("order_id"),
                      attempt.id)
            return Settlement(MISMATCH, status)
        if orders.mark_paid(session, order.id, note=notes.card_paid(payment_intent_id, via=via, event_id=event_id)):
            return Settlement(PAID, status)
        session.refresh(order)
        paid = order.status in ("paid", "retiring", "completed")
        return Settlement(ALREADY_PAID if paid else REFUND_NEEDED, status)
    if status == "canceled" or (status == "requires_payment_method" and intent.get("last_payment_error")):
        return Settlement(FAILED, status)
    return Settlement(WAITING, status)


def _on_payment_intent_event(session: so.Session, event: dict) -> None:
    """payment_intent.* webhooks: the event names the PaymentIntent; what it is now is read from Stripe
    (an event may be late, out of order, or forged with a valid signature)."""
    intent_id = ((event.get("data") or {}).get("object") or {}).get("id")
    if isinstance(intent_id, str) and intent_id.startswith("pi_"):
        settle(session, intent_id, via="webhook", event_id=event.get("id"))


for _event_type in ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
                    "payment_intent.processing", "payment_intent.requires_action"):
    register_handler(_event_type, _on_payment_intent_event)


@dataclass(frozen=True)
class CardPayment:
    """What the pay page's script needs: the PaymentIntent's status and, for 3-D Secure, its client secret."""

    status: str
    client_secret: str | None


def pay_with_card(session: so.Session, order: Order, token_id: str) -> CardPayment:
    """The pay page's card POST: the order's PaymentIntent paid with a Stripe.js card token, then settled
    with Stripe's answer (no second read). COMMITS the attempt around each call to Stripe
    (``payments.ensure_payment_intent``, ``payments.pay_with_card_token``: what Stripe did must be durable
    whatever happens next); the settlement is flushed and the caller commits it.

    Raises what those raise (PaymentFailed, PaymentUnavailable, InvalidTransition, ValidationFailed)."""
    attempt = payments.ensure_payment_intent(session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                             metadata={"order_id": order.id})
    intent = payments.pay_with_card_token(session, attempt, token_id)
    settle(session, attempt.payment_intent_id, via="pay_page", intent=intent)
    return CardPayment(intent["status"], attempt.client_secret)


def settle_after_authentication(session: so.Session, order: Order) -> str | None:
    """The pay page's return from 3-D Secure: the browser knows before this server that the bank said yes,
    so the order's current PaymentIntent is settled now instead of on the webhook or the re-read
    (flushed; the caller commits). The PaymentIntent's status, or None when there is nothing to settle."""
    if order.status != "pending_payment" or order.payment_method != "card":
        return None
    attempt = payments.current_attempt(session, order.id)
    if attempt is None or attempt.payment_intent_id is None:
        return None
    return settle(session, attempt.payment_intent_id, via="pay_page").intent_status


def reconcile(session: so.Session, *, older_than_seconds: int = 60) -> int:
    """Settle the PaymentIntents whose outcome no webhook told us (``payments.attempts_to_refresh``); the
    number of orders paid.

    COMMITS after each one, unlike other services: each settlement is its own unit of work, so a
    PaymentIntent Stripe cannot be read for (rolled back, tried again next time) undoes none of the others,
    and no row lock is held across the next one's call to Stripe."""
    paid = 0
    for intent_id in [attempt.payment_intent_id for attempt in
                      payments.attempts_to_refresh(session, older_than_seconds=older_than_seconds)]:
        try:
            paid += settle(session, intent_id, via="reread").outcome == PAID
        except (StripeError, StripeUnavailable) as exc:
            log.warning("re-read of %s failed: %s", intent_id, exc)
            session.rollback()
            continue
        session.commit()
    return paid


@register_handler("charge.refunded")
def _on_refunded(session: so.Session, event: dict) -> None:
    charge = event["data"]["object"]
    attempt = session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.payment_intent_id == charge.get("payment_intent")))
    if attempt is not None:
        session.execute(sa.update(Order).where(Order.id == attempt.order_id, Order.refund_status == "pending")
                        .values(refund_status="done", refund_reference=str(charge.get("id"))[:100],
                                updated_at=utcnow()))


def refund(session: so.Session, order_id: int) -> str:
    """Give a card payment back for an order flagged ``refund_status = pending``. Safe to repeat."""
    order = orders.lock(session, order_id)
    if order is None or order.refund_status != "pending" or order.payment_method != "card":
        return "nothing to do"
    attempt = session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.order_id == order.id, PaymentAttempt.status.in_(payments.PAID_STATUSES))
        .order_by(PaymentAttempt.id.desc()))
    if attempt is None:
        return "no payment to refund"
    result = payments.refund_attempt(session, attempt)
    order.refund_status, order.refund_reference, order.updated_at = "done", str(result.get("id"))[:100], utcnow()
    orders.record_note(session, order, notes.card_refunded(str(result.get("id"))))
    session.flush()
    return "refunded"


def cancel_open_payment(session: so.Session, order_id: int) -> str:
    """The order was cancelled or expired: stop its PaymentIntent from being paid later.

    If it was paid in the meantime, ``settle`` decides (a late payment is honoured or refunded)."""
    attempt = payments.current_attempt(session, order_id)
    if attempt is None or attempt.payment_intent_id is None:
        return "no open payment"
    settlement = settle(session, attempt.payment_intent_id, via="cancelling")
    if settlement.intent_status == "succeeded":
        return "paid meanwhile"
    if settlement.intent_status in _CANCELLABLE:
        try:
            cancelled = payments.get_client().cancel_payment_intent(attempt.payment_intent_id)
        except StripeError as exc:
            log.info("cancel of %s refused: %s", attempt.payment_intent_id, exc)
        else:
            payments.record_intent(attempt, cancelled)
            session.flush()
    return "cancelled"


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an order's history: a status change, or a card payment that was refused (the order
    stays awaiting payment, so the refusal is no transition, but the buyer and the bureau should see it)."""

    at: object
    status: str | None
    note: str


def order_history(session: so.Session, order_id: int) -> list[HistoryEntry]:
    """The order's transitions and its refused card payments, oldest first (two queries), said in the
    reader's language."""
    transitions = session.scalars(sa.select(OrderTransition).where(OrderTransition.order_id == order_id)
                                  .order_by(OrderTransition.id)).all()
    refused = session.scalars(sa.select(PaymentAttempt).where(
        PaymentAttempt.order_id == order_id, PaymentAttempt.last_error_code.is_not(None),
        PaymentAttempt.status != "succeeded").order_by(PaymentAttempt.attempt_number)).all()
    entries = [HistoryEntry(t.created_at, t.to_status, notes.describe_transition(t)) for t in transitions]
    entries += [HistoryEntry(a.updated_at, None, notes.card_refused(
        a.attempt_number, payments.card_error_message(a.last_error_code, a.last_decline_code))) for a in refused]
    # Stable: a refusal and a transition in the same instant keep transitions first.
    return sorted(entries, key=lambda entry: entry.at)
