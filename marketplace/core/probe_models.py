"""Queue probes: proof that a worker ran a task (see services.probes)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db


class QueueProbe(db.Model):
    __tablename__ = "queue_probes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: the caller's key
    key: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)
    #: how many times a worker ran it (more than 1 means a redelivery)
    runs: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
