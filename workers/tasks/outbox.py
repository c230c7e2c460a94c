"""The outbox sweeper."""

from __future__ import annotations

from celery import shared_task

from marketplace.services import outbox


@shared_task(name="tanhui.sweep_outbox")
def sweep_outbox() -> int:
    """Publish outbox rows the after-commit relay did not (idempotent: tasks tolerate duplicates)."""
    return outbox.sweep()
