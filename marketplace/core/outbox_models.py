"""The transactional outbox: tasks to enqueue, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.Index("ix_outbox_messages_unpublished", "created_at", postgresql_where=sa.text("published_at IS NULL"),
                 sqlite_where=sa.text("published_at IS NULL")),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: registered Celery task name, e.g. "tanhui.retire_order"
    task_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: keyword arguments of the task: ids and plain values only, never ORM objects
    kwargs: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    #: set once the broker accepted the message; NULL rows are re-driven by the sweeper
    published_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: publish attempts so far (the relay and the sweeper both count)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)

    @property
    def celery_task_id(self) -> str:
        """Stable task id, so a re-driven message is recognisable as the same work."""
        return f"outbox-{self.id}"


class DeadLetter(db.Model):
    """A task that failed after its last retry: kept for the bureau to see and re-run."""

    __tablename__ = "dead_letters"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    task_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    kwargs: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    error: so.Mapped[str] = so.mapped_column(sa.Text)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    resolved_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
