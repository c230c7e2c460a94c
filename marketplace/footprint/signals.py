"""What the footprint feature asks of later features."""

from __future__ import annotations

from marketplace.core.signals import signals

#: ``ask(event_locking_orders, session=…, event_id=…)`` → the orders that fix an event's footprint (paid,
#: retiring or completed), oldest first. The orders feature answers.
event_locking_orders = signals.signal("footprint.event-locking-orders")
