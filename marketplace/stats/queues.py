"""Each role's to-do list, for its home page: what waits for the bureau, a cooperative or a buyer.

Every queue is one bounded query (``limit`` rows, newest or most urgent first) that also counts them all
(a window count): the home pages cost the same statements whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.certificates.models import Certificate
from marketplace.core.db import utcnow
from marketplace.core.outbox_models import DeadLetter
from marketplace.footprint.models import ActivityLine, Event
from marketplace.orders.models import Order, OrderLine
from marketplace.registry import ledger
from marketplace.registry.models import CreditBatch, Listing, Project, ProjectDocument

#: How many rows each queue shows on a home page (its list page shows them all).
SHOWN = 10
#: A reservation "about to expire": within this time (a card's 15 minutes are always inside it).
EXPIRING_WITHIN = timedelta(hours=24)
#: A listing is running low below this many units (10 t), sold-out ones included.
LOW_LISTING_UNITS = 10 * 10_000
#: Certificates issued within this many days are "new" on the buyer's home.
NEW_CERTIFICATE_DAYS = 30


@dataclass(frozen=True)
class Queue:
    """Rows to show, and how many there are in all."""

    rows: list
    total: int


def _queue(session: so.Session, stmt: sa.Select, *, limit: int = SHOWN) -> Queue:
    """The first ``limit`` rows and, in the same statement (a window count), how many there are."""
    rows = session.execute(stmt.add_columns(sa.func.count().over().label("queue_total")).limit(limit)).all()
    total = int(rows[0][-1]) if rows else 0
    return Queue([tuple(row)[:-1] for row in rows], total)


# --- the bureau ----------------------------------------------------------------------------------

def bureau_queues(session: so.Session) -> dict[str, Queue]:
    now = utcnow()
    return {
        "projects": _queue(session, sa.select(Project).where(Project.status == "submitted")
                           .order_by(Project.id).options(so.joinedload(Project.seller))),
        "transfers": _queue(session, sa.select(Order).where(
            Order.status == "pending_payment", Order.payment_method == "bank_transfer")
            .order_by(Order.reserved_until, Order.id).options(so.joinedload(Order.buyer))),
        "refunds": _queue(session, sa.select(Order).where(Order.refund_status == "pending")
                          .order_by(Order.id).options(so.joinedload(Order.buyer))),
        "dead_letters": _queue(session, sa.select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                               .order_by(DeadLetter.id.desc())),
        "expiring": _queue(session, sa.select(Order).where(
            Order.status == "pending_payment", Order.reserved_until.is_not(None),
            Order.reserved_until <= now + EXPIRING_WITHIN)
            .order_by(Order.reserved_until, Order.id).options(so.joinedload(Order.buyer))),
    }


# --- a cooperative -------------------------------------------------------------------------------

def seller_queues(session: so.Session, organisation_id: int) -> dict[str, Queue]:
    own = Project.seller_organisation_id == organisation_id
    has_document = sa.exists().where(ProjectDocument.project_id == Project.id)
    low = _low_listings(session, organisation_id)
    sales = sa.select(OrderLine, Order).join(Order, Order.id == OrderLine.order_id).join(
        Listing, Listing.id == OrderLine.listing_id).where(
        Listing.seller_organisation_id == organisation_id,
        Order.status.in_(("paid", "retiring", "completed"))).order_by(Order.paid_at.desc(), Order.id.desc()).options(
        so.contains_eager(OrderLine.listing).joinedload(Listing.batch).joinedload(CreditBatch.project),
        so.joinedload(Order.buyer))
    return {
        "drafts": _queue(session, sa.select(Project).where(own, Project.status.in_(("draft", "rejected")))
                         .order_by(Project.id.desc())),
        "documents_missing": _queue(session, sa.select(Project).where(
            own, Project.status.in_(("draft", "rejected", "submitted")), ~has_document).order_by(Project.id.desc())),
        "low_listings": low,
        "sales": _queue(session, sales),
    }


def _low_listings(session: so.Session, organisation_id: int) -> Queue:
    """Active listings with less than LOW_LISTING_UNITS available (the ledger folds each listing's balance)."""
    listings = session.scalars(sa.select(Listing).where(
        Listing.seller_organisation_id == organisation_id, Listing.status == "active")
        .order_by(Listing.id).options(so.joinedload(Listing.batch).joinedload(CreditBatch.project))).all()
    available = ledger.listings_available_units(session, [listing.id for listing in listings])
    low = sorted(((listing, available[listing.id]) for listing in listings
                  if available[listing.id] < LOW_LISTING_UNITS), key=lambda row: row[1])
    return Queue(low[:SHOWN], len(low))


# --- a buyer -------------------------------------------------------------------------------------

def buyer_queues(session: so.Session, organisation_id: int) -> dict[str, Queue]:
    ordered = sa.exists().where(Order.event_id == Event.id, Order.status.in_(
        ("pending_payment", "paid", "retiring", "completed")))
    # SUM of a bigint is numeric on PostgreSQL: cast back to integer units.
    footprint = (sa.select(sa.cast(sa.func.coalesce(sa.func.sum(ActivityLine.emissions_units), 0), sa.BigInteger))
                 .where(ActivityLine.event_id == Event.id).correlate(Event).scalar_subquery())
    since = utcnow() - timedelta(days=NEW_CERTIFICATE_DAYS)
    return {
        "events_without_order": _queue(session, sa.select(Event, footprint.label("units")).where(
            Event.organisation_id == organisation_id, ~ordered).order_by(Event.starts_on.desc(), Event.id.desc())),
        "awaiting_payment": _queue(session, sa.select(Order).where(
            Order.buyer_organisation_id == organisation_id, Order.status == "pending_payment")
            .order_by(Order.reserved_until, Order.id)),
        "certificates": _queue(session, sa.select(Certificate).where(
            Certificate.buyer_organisation_id == organisation_id, Certificate.issued_at >= since,
            Certificate.revoked_at.is_(None)).order_by(Certificate.issued_at.desc())),
    }
