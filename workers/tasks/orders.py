"""Order tasks: retirement, certificates, notifications, refunds, expiry, payment re-reads, re-drives.

Every task is idempotent (see services.retirement and services.orders): ``acks_late`` redelivery,
the outbox sweeper and the re-drive can all run a task twice, and the second run changes nothing.
Transient database errors are retried with backoff; after the last retry the task is recorded as a
dead letter, which the bureau sees on its home page.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from marketplace.extensions import db
from marketplace.models import DeadLetter, Order
from marketplace.models.base import utcnow
from marketplace.services import idempotency, notifications, order_payments, orders, outbox, retirement

log = logging.getLogger(__name__)

#: Lost connections, deadlocks, serialisation failures: worth another try. Anything else is a bug or bad
#: data and goes straight to the dead letters.
TRANSIENT = (OperationalError,)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 5}


def _dead_letter(task, exc, kwargs) -> None:
    with task.flask_app.app_context():
        db.session.add(DeadLetter(task_name=task.name, kwargs=dict(kwargs or {}),
                                  error=f"{type(exc).__name__}: {exc}"[:4000], attempts=task.request.retries + 1))
        db.session.commit()
        db.session.remove()


def _on_failure(self, exc, task_id, args, kwargs, einfo):  # noqa: ARG001 — Celery's signature
    log.error("task %s failed for good: %s", self.name, exc)
    _dead_letter(self, exc, kwargs)


def _task(name: str, **options):
    return shared_task(name=name, bind=True, on_failure=_on_failure, **RETRY, **options)


@_task(orders.RETIRE_TASK)
def retire_order(self, order_id: int) -> str:  # noqa: ARG001
    result = retirement.retire_order(db.session, order_id)
    db.session.commit()
    return result


@_task(retirement.CERTIFICATE_TASK)
def generate_certificate(self, order_id: int) -> str:  # noqa: ARG001
    return retirement.generate_certificate(db.session, order_id)


@_task(retirement.NOTIFY_TASK)
def notify_certificate_ready(self, order_id: int) -> int:  # noqa: ARG001
    return notifications.certificate_ready(db.session, order_id)


@_task(orders.REFUND_TASK)
def refund_order(self, order_id: int) -> str:  # noqa: ARG001
    result = order_payments.refund(db.session, order_id)
    db.session.commit()
    return result


@_task(orders.CANCEL_PAYMENT_TASK)
def cancel_payment(self, order_id: int) -> str:  # noqa: ARG001
    result = order_payments.cancel_open_payment(db.session, order_id)
    db.session.commit()
    return result


@shared_task(name="tanhui.expire_reservations")
def expire_reservations() -> int:
    count = orders.expire_due(db.session)
    db.session.commit()
    return count


@shared_task(name="tanhui.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    count = idempotency.purge(db.session, older_than_days=current_app.config["IDEMPOTENCY_KEY_DAYS"])
    db.session.commit()
    return count


@shared_task(name="tanhui.reconcile_payments")
def reconcile_payments() -> int:
    return order_payments.reconcile(db.session)


@shared_task(name="tanhui.redrive_orders")
def redrive_orders() -> int:
    """Paid or retiring orders that have not moved for a while: their task was lost (a killed worker,
    a broker restart). Ask again; the tasks are idempotent."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["ORDER_REDRIVE_AFTER_SECONDS"])
    stuck = db.session.execute(sa.select(Order.id, Order.status).where(
        Order.status.in_(("paid", "retiring")), Order.updated_at <= cutoff)).all()
    for order_id, status in stuck:
        task = orders.RETIRE_TASK if status == "paid" else retirement.CERTIFICATE_TASK
        outbox.enqueue(db.session, task, order_id=order_id)
    if stuck:
        # Asked again now: the next ask, if it is still stuck, comes one interval later, not every minute.
        db.session.execute(sa.update(Order).where(Order.id.in_([order_id for order_id, _s in stuck]))
                           .values(updated_at=utcnow()), execution_options={"synchronize_session": False})
    db.session.commit()
    return len(stuck)
