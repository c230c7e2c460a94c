"""Card payments of orders: webhook handlers, the periodic re-read, refunds and cancelled intents.

The webhook and the re-read both end in ``orders.mark_paid``, which is idempotent and moves the
order forward only; whichever arrives first wins, the other changes nothing.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import utcnow
from marketplace.core.quantities import fen
from marketplace.orders import payments
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderTransition
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.client import StripeError, StripeUnavailable
from marketplace.orders.stripe.webhook import register_handler

log = logging.getLogger(__name__)


def _order_for_intent(session: so.Session, intent: dict) -> Order | None:
    raw = ((intent.get("metadata") or {}).get("order_id") or "")
    if not str(raw).isdigit():
        return None
    return session.get(Order, int(raw))


def payment_matches(order: Order, intent: dict) -> bool:
    """The PaymentIntent paid exactly this order's amount, in yuan."""
    return intent.get("amount") == fen(order.amount_cny) and (intent.get("currency") or "").lower() == "cny"


def succeeded(session: so.Session, intent: dict, *, note: str) -> bool:
    order = _order_for_intent(session, intent)
    if order is None:
        log.warning("payment %s names no known order", intent.get("id"))
        return False
    if not payment_matches(order, intent):
        log.error("payment %s for order %s: amount %s %s does not match %s CNY", intent.get("id"), order.id,
                  intent.get("amount"), intent.get("currency"), order.amount_cny)
        return False
    return orders.mark_paid(session, order.id, note=note)


@register_handler("payment_intent.succeeded")
def _on_succeeded(session: so.Session, event: dict) -> None:
    intent = event["data"]["object"]
    succeeded(session, intent, note=f"card {intent.get('id')} (webhook {event.get('id')})")


@register_handler("charge.refunded")
def _on_refunded(session: so.Session, event: dict) -> None:
    charge = event["data"]["object"]
    attempt = session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.payment_intent_id == charge.get("payment_intent")))
    if attempt is not None:
        session.execute(sa.update(Order).where(Order.id == attempt.order_id, Order.refund_status == "pending")
                        .values(refund_status="done", refund_reference=str(charge.get("id"))[:100],
                                updated_at=utcnow()))


def reconcile(session: so.Session, *, older_than_seconds: int = 60) -> int:
    """Re-read PaymentIntents whose outcome no webhook told us; mark the paid ones. Commits each."""
    paid = 0
    for attempt in payments.attempts_to_refresh(session, older_than_seconds=older_than_seconds):
        try:
            status = payments.refresh_attempt(session, attempt)
        except (StripeError, StripeUnavailable) as exc:
            log.warning("re-read of %s failed: %s", attempt.payment_intent_id, exc)
            session.rollback()
            continue
        if status == "succeeded":
            intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
            paid += bool(succeeded(session, intent, note=f"card {attempt.payment_intent_id} (re-read)"))
        session.commit()
    return paid


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
    session.add(OrderTransition(order_id=order.id, from_status=order.status, to_status=order.status,
                                note=f"card refund {result.get('id')}"))
    session.flush()
    return "refunded"


def cancel_open_payment(session: so.Session, order_id: int) -> str:
    """The order was cancelled or expired: stop its PaymentIntent from being paid later.

    If it was paid in the meantime, ``mark_paid`` decides (a late payment is honoured or refunded)."""
    attempt = payments.current_attempt(session, order_id)
    if attempt is None or attempt.payment_intent_id is None:
        return "no open payment"
    status = payments.refresh_attempt(session, attempt)
    if status == "succeeded":
        intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
        succeeded(session, intent, note=f"card {attempt.payment_intent_id} (paid while cancelling)")
        return "paid meanwhile"
    if status in ("requires_payment_method", "requires_confirmation", "requires_action"):
        try:
            payments.get_client().cancel_payment_intent(attempt.payment_intent_id)
        except StripeError as exc:
            log.info("cancel of %s refused: %s", attempt.payment_intent_id, exc)
        payments.refresh_attempt(session, attempt)
    return "cancelled"
