"""Order tasks: refunds, cancelled payments, expiry, payment re-reads (thin: the orders services act)."""

from __future__ import annotations

from celery import shared_task

from marketplace.extensions import db
from marketplace.orders import order_payments
from marketplace.orders import service as orders
from workers.tasks.core import task


@task(orders.REFUND_TASK)
def refund_order(self, order_id: int) -> str:  # noqa: ARG001
    result = order_payments.refund(db.session, order_id)
    db.session.commit()
    return result


@task(orders.CANCEL_PAYMENT_TASK)
def cancel_payment(self, order_id: int) -> str:  # noqa: ARG001
    result = order_payments.cancel_open_payment(db.session, order_id)
    db.session.commit()
    return result


@shared_task(name="tanhui.expire_reservations")
def expire_reservations() -> int:
    count = orders.expire_due(db.session)
    db.session.commit()
    return count


@shared_task(name="tanhui.reconcile_payments")
def reconcile_payments() -> int:
    return order_payments.reconcile(db.session)
