"""Demo orders: each story buyer neutralises its event, pays by bank transfer (confirmed by the bureau),
and its credits are retired with a signed certificate — through the same services the workers run.

Idempotent: each order carries a fixed idempotency key; a second run finds it and only drives it
forward if an earlier run stopped half-way.
"""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.certificates import retirement
from marketplace.core.quantities import display_tonnes
from marketplace.demo.events import DEMO_EVENTS
from marketplace.footprint import service as footprint
from marketplace.footprint.models import Event
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry.models import Listing, Project

#: buyer key → the village project its credits come from (the story: the summit bought Guanpuyang's).
SOURCES = {
    "summit": "官埔垟村森林经营碳汇项目",
    "province": "官埔垟村森林经营碳汇项目",
    "hangzhou": "桥西村竹林经营碳汇项目",
    "jinhua": "官埔垟村森林经营碳汇项目",
    "jiaxing": "斋郎村森林经营碳汇项目",
}


def _listing_of(session, project_name: str) -> Listing:
    return session.scalar(sa.select(Listing).join(Listing.batch).join(Project)
                          .where(Project.name == project_name, Listing.status == "active").order_by(Listing.id))


def seed_orders(ctx) -> None:

    s = ctx.session
    total = 0
    for spec in DEMO_EVENTS:
        buyer = ctx.users[spec.key]
        event = s.scalar(sa.select(Event).where(Event.organisation_id == buyer.organisation_id,
                                                Event.name == spec.name))
        key = f"demo-{spec.key}"
        order = orders.find_by_idempotency_key(s, buyer.organisation_id, key)
        if order is None:
            order = orders.place_order(
                s, actor=buyer, units=footprint.event_total_units(s, event.id), payment_method="bank_transfer",
                beneficiary=spec.name, retirement_reason=f"{spec.name}碳中和（零碳会议）",
                listing_id=_listing_of(s, SOURCES[spec.key]).id, event_id=event.id, idempotency_key=key)
            s.commit()
        if order.status == "pending_payment":
            orders.confirm_bank_transfer(s, order, actor=ctx.users["bureau"],
                                         reference=f"NBS{order.created_at:%Y%m%d}{order.id:06d}")
            s.commit()
        if order.status in ("paid", "retiring"):
            retirement.retire_order(s, order.id)
            s.commit()
        if order.status == "retiring":
            retirement.generate_certificate(s, order.id)
        s.refresh(order)
        total += order.quantity_units if order.status == "completed" else 0
    done = s.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == "completed"))
    ctx.say(f"completed orders with certificates: {done}, {display_tonnes(total)} t retired")
