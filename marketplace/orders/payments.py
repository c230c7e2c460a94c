"""Card payments for orders: at most one live PaymentIntent per order, paid with a Stripe.js card token.

Why these functions commit, unlike other services: each wraps a call to Stripe, whose effect is
real the moment Stripe answers. The row that names the call (its idempotency key) must be durable
*before* the call, and what Stripe did must be durable right after it, whatever the view does
next. Call them with a session that holds no other unfinished work.

Flow of a card payment (see docs/notes-payments.md):

1. ``ensure_payment_intent`` — get or create the order's open ``PaymentAttempt`` and commit it,
   then create its PaymentIntent (only if it has none yet) and commit the id.
2. The page's Stripe.js turns the card into a token (``stripe.createToken(card)``); the browser
   posts the token id to the order's pay view (orders/views.py), which calls ``pay_with_card_token``
   through ``order_payments.pay_with_card``.
3. ``pay_with_card_token`` saves the token as a card on a new Customer, sets it as the
   PaymentIntent's payment method and confirms. A 3-D Secure card answers ``requires_action``:
   the page then calls ``stripe.confirmCardPayment(client_secret)`` and tells the server it returned.
4. ``order_payments.settle`` — called by the pay view, the page's 3-D Secure return, the webhook and
   the periodic re-read — records what Stripe says of the PaymentIntent (``record_intent``) and pays
   the order.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _

from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict, DomainError, InvalidTransition, ValidationFailed
from marketplace.orders.payment_models import (
    CLOSED_ATTEMPT_STATUSES,
    PAYMENT_ATTEMPT_STATUSES,
    PaymentAttempt,
)
from marketplace.orders.stripe.client import StripeError, StripeUnavailable, get_client

log = logging.getLogger(__name__)

#: Stripe.js card tokens: ``tok_`` and letters/digits (Stripe's ids are at most 255 characters).
TOKEN_PATTERN = re.compile(r"tok_[A-Za-z0-9_]{1,250}")
#: A PaymentIntent in one of these states has taken (or is taking) the buyer's money.
PAID_STATUSES = ("succeeded", "processing", "requires_capture")


class PaymentFailed(DomainError):
    """The card was refused (declined, failed authentication …). ``message`` is for the buyer."""

    status = 402
    code = "payment_failed"

    def __init__(self, message, *, code: str | None = None, decline_code: str | None = None):
        super().__init__(message, None, code=code)
        self.decline_code = decline_code


class PaymentInProgress(DomainError):
    """Another submission of this order's card is being processed right now: one charge, and this caller
    waits for its outcome (the pay page follows the order's status)."""

    status = 409
    code = "payment_in_progress"


#: A card submission's claim on its attempt lapses after this long (a request killed mid-way must not
#: block the order for good); longer than the Stripe client's retries take.
CARD_SUBMISSION_SECONDS = 90


def _claim_card_submission(session: so.Session, attempt: PaymentAttempt) -> bool:
    """Claim the attempt for one card submission (a conditional UPDATE, committed at once, so parallel
    submissions see it). False when another submission holds a fresh claim."""
    now = utcnow()
    claimed = session.execute(
        sa.update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt.id,
               sa.or_(PaymentAttempt.card_submitted_at.is_(None),
                      PaymentAttempt.card_submitted_at < now - timedelta(seconds=CARD_SUBMISSION_SECONDS)))
        .values(card_submitted_at=now).execution_options(synchronize_session=False)).rowcount
    session.commit()
    session.refresh(attempt)
    return claimed == 1


class PaymentUnavailable(DomainError):
    """Stripe did not answer. The payment's outcome may be unknown; the webhook or a re-read settles it."""

    status = 503
    code = "payment_unavailable"


def card_error_message(code: str | None, decline_code: str | None = None) -> str:
    """What to tell the buyer about a refused card, in their language."""
    reason = decline_code or code
    messages = {
        "insufficient_funds": _("The card has insufficient funds. Please use another card."),
        "expired_card": _("The card has expired. Please use another card."),
        "incorrect_cvc": _("The card's security code is incorrect."),
        "incorrect_number": _("The card number is incorrect."),
        "processing_error": _("The card could not be processed. Please try again."),
        "payment_intent_authentication_failure": _(
            "The card's authentication (3-D Secure) did not succeed. Please try again or use another card."),
        "authentication_required": _(
            "The card's authentication (3-D Secure) did not succeed. Please try again or use another card."),
    }
    if reason in messages:
        return messages[reason]
    if code == "card_declined" or reason in {"generic_decline", "do_not_honor", "card_not_supported",
                                             "lost_card", "stolen_card", "fraudulent"}:
        return _("The card was declined. Please use another card or contact the bank that issued it.")
    return _("The payment could not be completed. Please check the card details or use another card.")


def unavailable_message() -> str:
    return _("The payment service is not answering right now. Please try again in a minute.")


# -- attempts ----------------------------------------------------------------------------------

def current_attempt(session: so.Session, order_id: int) -> PaymentAttempt | None:
    """The order's latest attempt, open or not."""
    return session.scalars(
        sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id)
        .order_by(PaymentAttempt.attempt_number.desc()).limit(1)).first()


def prepare_payment_attempt(session: so.Session, *, order_id: int, amount_fen: int) -> PaymentAttempt:
    """Step 1 of 2: the order's open attempt, or a new one with a fresh idempotency key (flushed).

    The caller must commit before calling Stripe (``create_intent_for_attempt``). Two requests
    preparing the same new attempt at once collide on (order_id, attempt_number) at commit; the
    loser rolls back and finds the winner's row (``ensure_payment_intent`` does exactly that).
    """
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise ValidationFailed(_("The amount to pay must be positive."), "amount")
    latest = current_attempt(session, order_id)
    if latest is not None and latest.is_open:
        if latest.amount_fen != amount_fen:
            raise Conflict(_("The amount of this payment has changed. Reload the page and try again."))
        return latest
    number = (latest.attempt_number + 1) if latest else 1
    attempt = PaymentAttempt(
        order_id=order_id, attempt_number=number, amount_fen=amount_fen, currency="cny", status="new",
        provider="stripe",
        # Unique across databases too: a development database reset must not reuse a key Stripe
        # remembers (for 24 h) with other parameters.
        idempotency_key=f"tanhui-order-{order_id}-attempt-{number}-{uuid.uuid4().hex[:16]}")
    session.add(attempt)
    session.flush()
    return attempt


def _lock(session: so.Session, attempt: PaymentAttempt) -> None:
    """Hold the attempt's row until commit: a row lock on PostgreSQL, the write lock on SQLite.

    So two requests never both call Stripe to create a PaymentIntent for one attempt."""
    session.execute(sa.update(PaymentAttempt).where(PaymentAttempt.id == attempt.id)
                    .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    session.refresh(attempt)


def create_intent_for_attempt(session: so.Session, attempt: PaymentAttempt, *,
                              metadata: dict | None = None) -> PaymentAttempt:
    """Step 2 of 2: create the attempt's PaymentIntent unless it has one (flushed; caller commits).

    Takes the attempt's row lock first and looks again, so a concurrent request that got there
    first is reused. Sends the attempt's persisted Idempotency-Key.
    """
    if attempt.payment_intent_id:
        return attempt
    _lock(session, attempt)
    if attempt.payment_intent_id:
        return attempt
    if not attempt.is_open:
        raise InvalidTransition(_("This payment is closed. Reload the page to start again."))
    intent = get_client().create_payment_intent(
        amount_fen=attempt.amount_fen, currency=attempt.currency,
        metadata={**(metadata or {}), "order_id": attempt.order_id, "payment_attempt_id": attempt.id},
        idempotency_key=attempt.idempotency_key)
    attempt.payment_intent_id = intent["id"]
    attempt.client_secret = intent.get("client_secret")
    _apply_status(attempt, intent.get("status"))
    session.flush()
    return attempt


def ensure_payment_intent(session: so.Session, *, order_id: int, amount_fen: int,
                          metadata: dict | None = None) -> PaymentAttempt:
    """The order's open attempt with its PaymentIntent, creating either only when missing. COMMITS.

    Safe to call again and again (retried requests, double clicks, two tabs): one PaymentIntent
    per attempt, whatever the emulator does with Idempotency-Key. Raises PaymentUnavailable when
    Stripe does not answer (the attempt stays, without a PaymentIntent, for the next call).
    """
    for _try in range(3):
        try:
            attempt = prepare_payment_attempt(session, order_id=order_id, amount_fen=amount_fen)
            session.commit()
            break
        except sa.exc.IntegrityError:
            session.rollback()  # a concurrent request created the same attempt: use theirs
    else:  # pragma: no cover — three collisions in a row
        raise Conflict(_("This payment is being started elsewhere. Reload the page and try again."))
    try:
        create_intent_for_attempt(session, attempt, metadata=metadata)
    except StripeUnavailable as exc:
        session.rollback()
        log.warning("order %s: PaymentIntent not created: %s", order_id, exc)
        raise PaymentUnavailable(unavailable_message()) from exc
    except StripeError:
        session.rollback()
        raise
    session.commit()
    return attempt


# -- paying ------------------------------------------------------------------------------------

def _apply_status(attempt: PaymentAttempt, status: str | None) -> None:
    """Move the attempt's status forward to Stripe's. Never un-pay, never reopen a closed attempt
    (except to record money that moved after all)."""
    if status not in PAYMENT_ATTEMPT_STATUSES or status == attempt.status:
        return
    if attempt.status == "succeeded":
        return
    if attempt.status in CLOSED_ATTEMPT_STATUSES and status not in PAID_STATUSES:
        return
    attempt.status = status


def _close_declined(attempt: PaymentAttempt, exc: StripeError) -> None:
    """A declined confirm: the emulator cannot confirm that PaymentIntent again, and a fresh one is
    as good on Stripe, so cancel it and let the order's next try open a new attempt."""
    attempt.status = "failed"
    attempt.last_error_code = (exc.code or "")[:100] or None
    attempt.last_decline_code = (exc.decline_code or "")[:100] or None
    try:
        get_client().cancel_payment_intent(attempt.payment_intent_id,
                                           idempotency_key=f"{attempt.idempotency_key}-cancel")
    except (StripeError, StripeUnavailable) as cancel_exc:
        log.warning("attempt %s: cancelling %s after a decline failed: %s", attempt.id,
                    attempt.payment_intent_id, cancel_exc)


def pay_with_card_token(session: so.Session, attempt: PaymentAttempt, token_id: str) -> dict:
    """Pay the attempt's PaymentIntent with a Stripe.js card token; returns the PaymentIntent as Stripe
    answered (its ``status``), so the caller can settle the order without asking again. COMMITS.

    ``succeeded``/``processing``: paid (the webhook confirms it too). ``requires_action``: the
    page must call ``stripe.confirmCardPayment(attempt.client_secret)`` for 3-D Secure.
    Raises PaymentFailed (a message for the buyer) when the card is refused — the attempt is then
    closed, and the next ``ensure_payment_intent`` opens a new one —, PaymentUnavailable when
    Stripe does not answer (the outcome is then settled by the webhook or the periodic re-read),
    InvalidTransition when the attempt is closed, ValidationFailed for a malformed token.
    """
    if not isinstance(token_id, str) or not TOKEN_PATTERN.fullmatch(token_id):
        raise ValidationFailed(_("The card could not be read. Please enter it again."), "token")
    if not attempt.is_open:
        raise InvalidTransition(_("This payment is closed. Reload the page to start again."))
    if attempt.payment_intent_id is None:
        raise InvalidTransition(_("This payment has not been started. Reload the page and try again."))
    if not _claim_card_submission(session, attempt):
        raise PaymentInProgress(_("Your payment is already being processed. This page shows the result as soon "
                                  "as it is known; there is nothing more to do."))
    client = get_client()
    key = attempt.idempotency_key
    step = "retrieve"
    try:
        intent = client.retrieve_payment_intent(attempt.payment_intent_id)
        _apply_status(attempt, intent["status"])
        if intent["status"] in (*PAID_STATUSES, "requires_action"):
            # Paid already (a double submit), or waiting for 3-D Secure in the browser.
            attempt.card_submitted_at = None
            session.commit()
            return intent
        if intent["status"] == "canceled":
            attempt.card_submitted_at = None
            session.commit()
            raise InvalidTransition(_("This payment was cancelled. Reload the page to start again."))
        step = "save_card"
        # Stripe.js tokens become a card on a Customer: the one token-to-payment-method route that
        # both Stripe and the emulator accept (the emulator has no PaymentMethod from a token).
        customer = client.create_customer(
            source=token_id, metadata={"order_id": attempt.order_id, "payment_attempt_id": attempt.id},
            idempotency_key=f"{key}-customer-{token_id}")
        card_id = customer.get("default_source")
        if not card_id:
            raise StripeError("missing_source", "the customer has no card", 400)
        step = "attach"
        client.update_payment_intent(attempt.payment_intent_id, customer=customer["id"], payment_method=card_id,
                                     idempotency_key=f"{key}-attach-{token_id}")
        step = "confirm"
        intent = client.confirm_payment_intent(attempt.payment_intent_id,
                                               idempotency_key=f"{key}-confirm-{token_id}")
    except StripeUnavailable as exc:
        session.commit()  # the claim stays until it lapses: the outcome at Stripe is unknown
        log.warning("attempt %s: Stripe unavailable while paying: %s", attempt.id, exc)
        raise PaymentUnavailable(unavailable_message()) from exc
    except StripeError as exc:
        attempt.card_submitted_at = None  # refused: the buyer may try again (another card) at once
        if exc.is_card_error:
            if step == "confirm":
                _close_declined(attempt, exc)
            else:
                attempt.last_error_code = (exc.code or "")[:100] or None
                attempt.last_decline_code = (exc.decline_code or "")[:100] or None
            session.commit()
            raise PaymentFailed(card_error_message(exc.code, exc.decline_code), code=exc.code or "card_declined",
                                decline_code=exc.decline_code) from exc
        session.commit()
        log.error("attempt %s: Stripe refused the %s request: %r", attempt.id, step, exc)
        raise PaymentFailed(card_error_message(exc.code, exc.decline_code),
                            code=exc.code or "payment_failed") from exc
    attempt.client_secret = intent.get("client_secret") or attempt.client_secret
    _apply_status(attempt, intent["status"])
    attempt.card_submitted_at = None  # done: a later submission reads the outcome from Stripe
    session.commit()
    return intent


def record_intent(attempt: PaymentAttempt, intent: dict) -> None:
    """Record on the attempt what Stripe says of its PaymentIntent: its status (forward only) and, unless
    it succeeded, the last payment error's codes."""
    _apply_status(attempt, intent.get("status"))
    error = intent.get("last_payment_error") or {}
    if error and attempt.status != "succeeded":
        attempt.last_error_code = (error.get("code") or "")[:100] or None
        attempt.last_decline_code = (error.get("decline_code") or "")[:100] or None


def refresh_attempt(session: so.Session, attempt: PaymentAttempt) -> dict | None:
    """Read the attempt's PaymentIntent from Stripe and record it (flushed; caller commits). Returns the
    PaymentIntent as read (None if the attempt has none yet), so nobody needs to read it again."""
    if attempt.payment_intent_id is None:
        return None
    intent = get_client().retrieve_payment_intent(attempt.payment_intent_id)
    record_intent(attempt, intent)
    session.flush()
    return intent


def attempts_to_refresh(session: so.Session, *, older_than_seconds: int = 60, limit: int = 200) -> list[PaymentAttempt]:
    """Open attempts with a PaymentIntent whose outcome Stripe has not told us yet (no webhook in
    ``older_than_seconds``): what the periodic re-read settles (``order_payments.reconcile``)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return list(session.scalars(
        sa.select(PaymentAttempt).where(
            PaymentAttempt.payment_intent_id.is_not(None),
            PaymentAttempt.status.in_(("requires_payment_method", "requires_confirmation", "requires_action",
                                       "processing", "requires_capture")),
            PaymentAttempt.updated_at <= cutoff)
        .order_by(PaymentAttempt.updated_at).limit(limit)))


def refund_attempt(session: so.Session, attempt: PaymentAttempt, *, amount_fen: int | None = None) -> dict:
    """Refund a paid attempt in full (or ``amount_fen``), once: the key is derived from the attempt."""
    if attempt.payment_intent_id is None or attempt.status not in PAID_STATUSES:
        raise InvalidTransition(_("Only a completed card payment can be refunded."))
    suffix = "full" if amount_fen is None else str(amount_fen)
    return get_client().create_refund(attempt.payment_intent_id, f"{attempt.idempotency_key}-refund-{suffix}",
                                      amount_fen=amount_fen)
