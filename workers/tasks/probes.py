"""A task that proves the queue end to end: it records that it ran, once per key."""

from __future__ import annotations

from celery import shared_task

from marketplace.extensions import db
from marketplace.services import probes


@shared_task(name="tanhui.record_probe")
def record_probe(key: str) -> None:
    probes.record(db.session, key)
    db.session.commit()
