"""Queue probes: a row per key proves that a task enqueued through the outbox really ran (health checks, tests)."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core import outbox
from marketplace.core.probe_models import QueueProbe


def request(session: so.Session, key: str) -> None:
    """Ask a worker, through the outbox, to record that it saw this key."""
    outbox.enqueue(session, "tanhui.record_probe", key=key)


def record(session: so.Session, key: str) -> None:
    """Idempotent: a redelivered probe counts its runs but keeps one row."""
    probe = session.scalar(sa.select(QueueProbe).where(QueueProbe.key == key))
    if probe is None:
        session.add(QueueProbe(key=key, runs=1))
    else:
        probe.runs += 1
    session.flush()
