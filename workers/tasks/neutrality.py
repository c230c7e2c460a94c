"""Neutrality tasks: deadline reminders and the overdue mark (thin: the neutrality services act)."""

from __future__ import annotations

from celery import shared_task

from marketplace.extensions import db
from marketplace.neutrality import reminders


@shared_task(name=reminders.TASK)
def neutrality_reminders() -> dict:
    return reminders.run(db.session)
