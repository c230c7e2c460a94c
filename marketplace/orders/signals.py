"""What the orders feature tells, and asks, later features."""

from __future__ import annotations

from marketplace.core.signals import signals

#: Sent with ``session`` and ``order`` inside the transaction that completes an order (only the winner of
#: the status change sends it). The stats feature records the order in its aggregates.
order_completed = signals.signal("orders.order-completed")

#: Sent with ``session`` and ``order`` inside the transaction that marks an order paid (card captured or
#: bank transfer confirmed; only the winner of the status change sends it). Settlement splits the money.
order_paid = signals.signal("orders.order-paid")

#: Sent with ``session`` and ``order`` inside the transaction that moves a paid order to ``refunded``
#: (only the winner sends it). Settlement reverses the order's split.
order_refunded = signals.signal("orders.order-refunded")

#: ``ask(certificate_number_wanted, session=…, order_id=…)`` → the number of the order's certificate, or
#: None. The certificates feature answers.
certificate_number_wanted = signals.signal("orders.certificate-number-wanted")
