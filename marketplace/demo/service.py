"""The story of the Lishui zero-carbon summit as demo data. Idempotent: running it twice changes nothing.

Each later capability adds its own step to steps() (projects, events, orders …), built through the
same services the product uses, never by writing tables directly.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy.orm as so

from marketplace.demo import neutrality as demo_neutrality
from marketplace.demo import orders as demo_orders
from marketplace.demo import parcels as demo_parcels
from marketplace.demo import registry as demo_registry
from marketplace.demo import settlement as demo_settlement
from marketplace.demo.events import DEMO_EVENT_TOTALS, DEMO_EVENTS, seed_emission_factors, seed_events
from marketplace.demo.people import DEMO_PASSWORD, ORGANISATIONS, DemoContext, seed_people

__all__ = ["DEMO_EVENTS", "DEMO_EVENT_TOTALS", "DEMO_PASSWORD", "demo_logins", "seed_demo", "steps"]


def steps() -> list[Callable[[DemoContext], None]]:
    """Steps run in order; each must be idempotent. Each feature adds its own."""
    return [seed_people, demo_registry.seed_regions, demo_registry.seed_projects, demo_parcels.seed_parcels,
            seed_emission_factors, seed_events, demo_settlement.seed_fee_rule, demo_orders.seed_orders,
            demo_settlement.seed_settlement, demo_neutrality.seed_neutrality]


def seed_demo(session: so.Session, say: Callable[[str], None] = lambda _m: None) -> DemoContext:
    """Run every step, committing after each, so a failure leaves the earlier steps in place."""
    ctx = DemoContext(session=session, organisations={}, users={}, say=say)
    for step in steps():
        step(ctx)
        session.commit()
    return ctx


def demo_logins() -> list[tuple[str, str, str]]:
    return [(spec.kind, spec.email, spec.name) for spec in ORGANISATIONS]
