"""Idempotency keys kept only as long as a repeat is plausible (see models.idempotency)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import utcnow
from marketplace.core.models import IdempotencyKey


def purge(session: so.Session, *, older_than_days: int) -> int:
    """Forget keys older than this; a request repeated after that acts again. The number removed."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff),
                             execution_options={"synchronize_session": False})
    return result.rowcount or 0
