"""What the orders feature tells, and asks, later features."""

from __future__ import annotations

from marketplace.core.signals import signals

#: Sent with ``session`` and ``order`` inside the transaction that completes an order (only the winner of
#: the status change sends it). The stats feature records the order in its aggregates.
order_completed = signals.signal("orders.order-completed")

#: ``ask(certificate_number_wanted, session=…, order_id=…)`` → the number of the order's certificate, or
#: None. The certificates feature answers.
certificate_number_wanted = signals.signal("orders.certificate-number-wanted")
