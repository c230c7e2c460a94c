"""Card payments through Stripe: one attempt per PaymentIntent, and the webhook events seen."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db

#: A PaymentIntent's own statuses, plus ``new`` (our row exists, Stripe has not answered yet) and
#: ``failed`` (declined or abandoned: the order's next attempt gets a new PaymentIntent).
PAYMENT_ATTEMPT_STATUSES = (
    "new", "requires_payment_method", "requires_confirmation", "requires_action", "processing",
    "requires_capture", "succeeded", "canceled", "failed",
)
#: Attempts in these statuses are finished; the order's next payment starts a new attempt.
CLOSED_ATTEMPT_STATUSES = ("canceled", "failed")


class PaymentAttempt(db.Model):
    """One PaymentIntent asked for on behalf of one order, keyed so it is never asked for twice.

    The row (and its idempotency key) is committed *before* the network call that creates the
    PaymentIntent: a retried request or a double click finds the row and reuses its PaymentIntent
    instead of creating another, which matters because the emulator ignores Idempotency-Key.
    """

    __tablename__ = "payment_attempts"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "attempt_number"),
        sa.CheckConstraint("provider IN ('stripe')", name="provider"),
        sa.CheckConstraint("attempt_number > 0", name="attempt_number_positive"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in PAYMENT_ATTEMPT_STATUSES) + ")",
                           name="status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: the order paid for
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("orders.id"), index=True)
    #: 1 for an order's first attempt, 2 after a declined card … unique per order, so two requests
    #: racing to start the same attempt collide in the database instead of creating two
    attempt_number: so.Mapped[int] = so.mapped_column(sa.Integer, default=1)
    #: payment processor; only Stripe so far
    provider: so.Mapped[str] = so.mapped_column(sa.String(16), default="stripe")
    #: sent as Idempotency-Key with every request that creates this attempt's PaymentIntent
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)
    #: Stripe's pi_… id, NULL until Stripe answered the create call
    payment_intent_id: so.Mapped[str | None] = so.mapped_column(sa.String(255), unique=True)
    #: handed to Stripe.js in the buyer's browser (3-D Secure); never logged
    client_secret: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    #: amount in fen (CNY cents), exactly what the PaymentIntent asks for
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="cny")
    #: last known PaymentIntent status (see PAYMENT_ATTEMPT_STATUSES)
    status: so.Mapped[str] = so.mapped_column(sa.String(32), default="new")
    #: Stripe's error code of the last failure (card_declined, …) and its decline code, if any
    last_error_code: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    last_decline_code: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    #: when a card POST claimed this attempt to pay it (parallel submissions wait for it: one charge);
    #: cleared when the card is refused, stale after payments.CARD_SUBMISSION_SECONDS
    card_submitted_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_ATTEMPT_STATUSES

    def __repr__(self) -> str:
        return f"<PaymentAttempt {self.id} order={self.order_id} {self.payment_intent_id} {self.status}>"


class StripeEvent(db.Model):
    """A webhook event already handled. Its unique id makes redeliveries harmless."""

    __tablename__ = "stripe_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: Stripe's evt_… id
    event_id: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    #: e.g. payment_intent.succeeded
    type: so.Mapped[str] = so.mapped_column(sa.String(100))
    received_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    #: the event as Stripe sent it, for audit and replays
    payload: so.Mapped[dict] = so.mapped_column(sa.JSON)

    def __repr__(self) -> str:
        return f"<StripeEvent {self.event_id} {self.type}>"
