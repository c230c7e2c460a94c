"""The transactional outbox.

``enqueue`` writes the task request in the caller's transaction, so work is asked for if and only if
the change that needs it commits. After the commit, the relay publishes the new rows to the broker
and marks them published; a crash or a broker outage in between leaves them unpublished, and the
sweeper (a beat task) publishes them later. Delivery is therefore at least once: every task
that is enqueued through here must be idempotent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app

from marketplace.core.db import utcnow
from marketplace.core.outbox_models import OutboxMessage
from marketplace.extensions import db

log = logging.getLogger(__name__)
_PENDING_KEY = "tanhui_outbox_pending"


def enqueue(session: so.Session, task_name: str, **kwargs) -> OutboxMessage:
    """Ask for a task to run after the current transaction commits. Pass ids and plain values only."""
    message = OutboxMessage(task_name=task_name, kwargs=kwargs)
    session.add(message)
    session.flush()
    session.info.setdefault(_PENDING_KEY, []).append(message.id)
    return message


def publish_messages(message_ids: list[int] | None = None, *, older_than_seconds: int | None = None,
                     limit: int = 500) -> int:
    """Publish unpublished outbox rows (these ids, or every row older than the age given).

    Runs on its own connection, outside any ORM session. Returns how many were published.
    """
    engine = db.engine
    table = OutboxMessage.__table__
    stmt = sa.select(table.c.id, table.c.task_name, table.c.kwargs).where(table.c.published_at.is_(None))
    if message_ids is not None:
        if not message_ids:
            return 0
        stmt = stmt.where(table.c.id.in_(message_ids))
    if older_than_seconds is not None:
        stmt = stmt.where(table.c.created_at <= utcnow() - timedelta(seconds=older_than_seconds))
    stmt = stmt.order_by(table.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        # Two sweepers never publish the same row at the same moment.
        stmt = stmt.with_for_update(skip_locked=True)

    celery_app = current_app.extensions["celery"]
    sent: list[int] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # The mark is not waited to disk: if a crash loses it, the row looks unpublished and the sweeper
            # publishes it again, which delivery at least once already allows. Saves a flush per publish.
            conn.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        for row in conn.execute(stmt).all():
            try:
                celery_app.send_task(row.task_name, kwargs=row.kwargs or {}, task_id=f"outbox-{row.id}")
            except Exception as exc:  # noqa: BLE001 — the broker may be down; the sweeper will retry
                log.warning("outbox %s: publish failed: %s", row.id, exc)
                conn.execute(table.update().where(table.c.id == row.id).values(
                    attempts=table.c.attempts + 1, last_error=str(exc)[:2000]))
                continue
            sent.append(row.id)
        if sent:  # one statement for the rows published
            conn.execute(table.update().where(table.c.id.in_(sent)).values(
                published_at=utcnow(), attempts=table.c.attempts + 1, last_error=None))
    return len(sent)


def sweep(older_than_seconds: int | None = None) -> int:
    """Publish whatever the relay did not (crash between commit and publish, broker outage)."""
    if older_than_seconds is None:
        older_than_seconds = current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"]
    return publish_messages(older_than_seconds=older_than_seconds)


def install_outbox_relay(app: Flask) -> None:
    """Publish a transaction's outbox rows right after it commits; forget them if it rolls back."""

    @sa.event.listens_for(db.session, "after_commit")
    def _after_commit(session):
        ids = session.info.pop(_PENDING_KEY, None)
        if not ids or not current_app.config.get("OUTBOX_PUBLISH_ON_COMMIT", True):
            return
        try:
            publish_messages(ids)
        except Exception:  # noqa: BLE001 — the change is committed; the sweeper will publish
            log.exception("outbox relay failed; the sweeper will publish %s", ids)

    @sa.event.listens_for(db.session, "after_soft_rollback")
    def _after_rollback(session, previous_transaction):
        if previous_transaction.parent is None:
            session.info.pop(_PENDING_KEY, None)
