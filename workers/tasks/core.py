"""What every task module shares (retries, dead letters), and the shared parts' own tasks: the outbox
sweeper, the queue probe and the purge of old idempotency keys.

Every task is idempotent: ``acks_late`` redelivery, the outbox sweeper and the re-drive can all run a
task twice, and the second run changes nothing. Transient database errors are retried with backoff;
after the last retry the task is recorded as a dead letter, which the bureau sees on its home page.
"""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from marketplace.core import idempotency, outbox, probes
from marketplace.core.outbox_models import DeadLetter
from marketplace.extensions import db

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


def task(name: str, **options):
    """A task retried on transient errors that becomes a dead letter when it fails for good."""
    return shared_task(name=name, bind=True, on_failure=_on_failure, **RETRY, **options)


@shared_task(name="tanhui.sweep_outbox")
def sweep_outbox() -> int:
    """Publish outbox rows the after-commit relay did not (idempotent: tasks tolerate duplicates)."""
    return outbox.sweep()


@shared_task(name="tanhui.record_probe")
def record_probe(key: str) -> None:
    """Proves the queue end to end: records that it ran, once per key."""
    probes.record(db.session, key)
    db.session.commit()


@shared_task(name="tanhui.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    count = idempotency.purge(db.session, older_than_days=current_app.config["IDEMPOTENCY_KEY_DAYS"])
    db.session.commit()
    return count
