"""Coverage: the eligible units retired for an event against its actual footprint, exactly.

Counted: the serial ranges retired for the event's completed orders whose purpose is ``event``, from
batches the bureau labelled ``event_eligible``, minus any whose certificate was revoked. Orders still
pending, paid or retiring, and cancelled, expired or refunded ones, count nothing. Several orders and
top-ups add up. Coverage is a ratio of integers; its percentage is cut (never rounded up) to 0.01 %, so
"100.00" is shown only when the retired units really reach the footprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.certificates.models import Certificate
from marketplace.orders.models import Order
from marketplace.registry.models import CreditBatch, SerialRange


@dataclass(frozen=True)
class Coverage:
    #: the actual footprint in units (None: not recorded yet)
    footprint_units: int | None
    #: eligible units retired for the event
    eligible_units: int
    #: units retired for the event from batches not eligible for a large-event claim (they do not count)
    ineligible_units: int

    @property
    def ratio(self) -> Fraction | None:
        if not self.footprint_units:
            return None
        return Fraction(self.eligible_units, self.footprint_units)

    @property
    def percent(self) -> Decimal | None:
        """Coverage in %, cut to 2 places: 99.999… % is 99.99, never 100.00."""
        ratio = self.ratio
        if ratio is None:
            return None
        hundredths = (ratio.numerator * 10000) // ratio.denominator
        return (Decimal(hundredths) / 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN)

    @property
    def percent_text(self) -> str | None:
        percent = self.percent
        return None if percent is None else f"{percent:.2f}"

    @property
    def complete(self) -> bool:
        return bool(self.footprint_units) and self.eligible_units >= self.footprint_units

    @property
    def shortfall_units(self) -> int:
        """What a top-up order must retire so that coverage reaches exactly 100 %."""
        if not self.footprint_units:
            return 0
        return max(0, self.footprint_units - self.eligible_units)


def counted_orders(event_id: int) -> sa.Select:
    """Ids of the event's orders whose retirements count towards its claim."""
    revoked = sa.select(Certificate.order_id).where(Certificate.revoked_at.is_not(None))
    return sa.select(Order.id).where(Order.event_id == event_id, Order.status == "completed",
                                     Order.purpose == "event", Order.id.not_in(revoked))


def retired_units(session: so.Session, event_id: int) -> tuple[int, int]:
    """(eligible, ineligible) units retired for the event, from the ledger's serial ranges."""
    counted = counted_orders(event_id).subquery()
    rows = session.execute(
        sa.select(CreditBatch.event_eligible, sa.func.sum(SerialRange.end - SerialRange.start))
        .select_from(SerialRange).join(CreditBatch, CreditBatch.id == SerialRange.batch_id)
        .join(counted, SerialRange.ref == sa.literal("order:") + sa.cast(counted.c.id, sa.String))
        .where(SerialRange.kind == "retirement").group_by(CreditBatch.event_eligible)).all()
    totals = {bool(eligible): int(units or 0) for eligible, units in rows}
    return totals.get(True, 0), totals.get(False, 0)


def coverage(session: so.Session, *, event_id: int, footprint_units: int | None) -> Coverage:
    eligible, ineligible = retired_units(session, event_id)
    return Coverage(footprint_units=footprint_units, eligible_units=eligible, ineligible_units=ineligible)


def of_plan(session: so.Session, plan) -> Coverage:
    return coverage(session, event_id=plan.event_id, footprint_units=plan.actual_units)
