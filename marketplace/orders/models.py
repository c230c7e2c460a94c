"""Orders: a buyer's purchase of credits, its lines (one per listing), and its status history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.footprint.models import Event
from marketplace.registry.models import CreditBatch, Listing, Project

ORDER_STATUSES = ("pending_payment", "paid", "retiring", "completed", "cancelled", "expired", "refunded")
PAYMENT_METHODS = ("card", "bank_transfer")
REFUND_STATUSES = ("none", "pending", "done")
#: What a retirement is for (DESIGN §3): 大型活动碳中和, 零碳机构, 生态损害赔偿, 自愿抵消, other.
RETIREMENT_PURPOSES = ("event", "zero_carbon_org", "ecological_compensation", "voluntary", "other")


#: The period a retirement covers: both days or neither, the end not before the start.
PERIOD_CHECK = ("(period_start IS NULL AND period_end IS NULL) OR "
                "(period_start IS NOT NULL AND period_end IS NOT NULL AND period_end >= period_start)")


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        sa.CheckConstraint(_in("payment_method", PAYMENT_METHODS), name="payment_method"),
        sa.CheckConstraint(_in("refund_status", REFUND_STATUSES), name="refund_status"),
        sa.CheckConstraint(_in("purpose", RETIREMENT_PURPOSES), name="purpose"),
        sa.CheckConstraint(PERIOD_CHECK, name="period"),
        sa.CheckConstraint("quantity_units > 0", name="quantity_positive"),
        sa.CheckConstraint("amount_cny > 0", name="amount_positive"),
        # One order per idempotency key and buyer: the same POST repeated returns the same order.
        sa.UniqueConstraint("buyer_organisation_id", "idempotency_key", name="uq_orders_buyer_idempotency_key"),
        sa.Index("ix_orders_status_reserved_until", "status", "reserved_until"),
        # the public retirement list filtered by purpose, newest first
        sa.Index("ix_orders_purpose_completed_at", "purpose", "completed_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    buyer_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    #: the event this order neutralises, if any
    event_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("events.id"), index=True)
    quantity_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_cny: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(14, 2))
    #: the name printed on the certificate and in the public registry
    beneficiary: so.Mapped[str] = so.mapped_column(sa.String(200))
    retirement_reason: so.Mapped[str] = so.mapped_column(sa.String(500))
    #: what the retirement is for (RETIREMENT_PURPOSES); printed on the certificate and published
    purpose: so.Mapped[str] = so.mapped_column(sa.String(32), default="voluntary", server_default="voluntary")
    #: the period the retirement covers (first and last day, inclusive), or neither; an order for an event
    #: covers the event's days unless the buyer says otherwise. Printed on the certificate and published.
    period_start: so.Mapped[date | None] = so.mapped_column(sa.Date)
    period_end: so.Mapped[date | None] = so.mapped_column(sa.Date)
    payment_method: so.Mapped[str] = so.mapped_column(sa.String(16))
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default="pending_payment", index=True)
    reserved_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: the client's Idempotency-Key and a fingerprint of the request it came with
    idempotency_key: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    request_fingerprint: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    #: bank transfer: the bank's reference the bureau confirmed
    bank_reference: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    refund_status: so.Mapped[str] = so.mapped_column(sa.String(16), default="none")
    refund_reference: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    paid_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    completed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime, index=True)
    #: when the buyer's users were told the certificate is ready
    notified_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    buyer: so.Mapped[Organisation] = so.relationship()  # noqa: F821
    #: the event neutralised (the buyer's own: an order's event is its organisation's)
    event: so.Mapped[Event | None] = so.relationship()
    lines: so.Mapped[list[OrderLine]] = so.relationship(back_populates="order", order_by="OrderLine.id")

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.buyer_organisation_id == organisation_id

    @property
    def ref(self) -> str:
        """The ledger reference of this order's movements."""
        return f"order:{self.id}"

    @property
    def payment_reference(self) -> str:
        """What a bank transfer must quote, so the bureau can match it."""
        return f"TH{self.id:08d}"

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.status} {self.quantity_units}>"


class OrderLine(db.Model):
    __tablename__ = "order_lines"
    __table_args__ = (sa.CheckConstraint("units > 0", name="units_positive"),
                      sa.UniqueConstraint("order_id", "listing_id", name="uq_order_lines_order_listing"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("orders.id"), index=True)
    listing_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("listings.id"), index=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"))
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    price_cny_per_tonne: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    amount_cny: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(14, 2))

    order: so.Mapped[Order] = so.relationship(back_populates="lines")
    listing: so.Mapped[Listing] = so.relationship()


class OrderTransition(db.Model):
    """Every status change of an order: who (or which process) and why."""

    __tablename__ = "order_transitions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("orders.id"), index=True)
    from_status: so.Mapped[str] = so.mapped_column(sa.String(20))
    to_status: so.Mapped[str] = so.mapped_column(sa.String(20))
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    #: why, as data (see orders.history): a code such as ``card_paid`` or ``bank_transfer`` …
    note_code: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    #: … and its parameters, e.g. ``{"intent": "pi_…", "via": "webhook", "event": "evt_…"}``
    note_params: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    #: free text, for a transition without a code (an old note the migration did not recognise)
    note: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


# --- loader options ------------------------------------------------------------------------------
# Relationships load lazily (SQLAlchemy's default); a query loads what its page or answer reads.

#: For an order shown with its lines: each line's listing, batch, project and the project's village.
ORDER_LINES_SHOWN = so.selectinload(Order.lines).joinedload(OrderLine.listing).joinedload(Listing.batch).joinedload(
    CreditBatch.project).joinedload(Project.village)
