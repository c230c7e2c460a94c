"""Certificate tasks: retirement, the signed certificate, the e-mail, re-driving stalled orders."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from marketplace.certificates import notifications, retirement
from marketplace.extensions import db
from marketplace.orders import service as orders
from workers.tasks.core import task


@task(orders.RETIRE_TASK)
def retire_order(self, order_id: int) -> str:  # noqa: ARG001
    """Retire, sign, draw and complete in one run (no queue hop between retirement and certificate)."""
    return retirement.retire_and_certify(db.session, order_id)


@task(retirement.CERTIFICATE_TASK)
def generate_certificate(self, order_id: int) -> str:  # noqa: ARG001
    """The certificate alone: asked for by the re-drive of orders stuck in retiring (and by older messages)."""
    return retirement.generate_certificate(db.session, order_id)


@task(retirement.NOTIFY_TASK)
def notify_certificate_ready(self, order_id: int) -> int:  # noqa: ARG001
    return notifications.certificate_ready(db.session, order_id)


@shared_task(name="tanhui.redrive_orders")
def redrive_orders() -> int:
    """Paid or retiring orders that have not moved for a while: ask again (the tasks are idempotent)."""
    count = retirement.redrive_stalled(db.session, current_app.config["ORDER_REDRIVE_AFTER_SECONDS"])
    db.session.commit()
    return count
