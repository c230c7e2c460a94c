"""What the footprint feature asks of later features."""

from __future__ import annotations

from marketplace.core.signals import signals

#: ``ask(event_locking_orders, session=…, event_id=…)`` → the orders that fix an event's footprint (paid,
#: retiring or completed), oldest first. The orders feature answers.
event_locking_orders = signals.signal("footprint.event-locking-orders")

#: ``ask(event_boundary, session=…, event_id=…)`` → the sources in the event's neutrality plan's boundary (a
#: frozenset of source codes), or None when the event has no plan. The neutrality feature answers; the event
#: page marks lines of sources the plan left out.
event_boundary = signals.signal("footprint.event-boundary")
