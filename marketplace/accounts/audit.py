"""The account audit log: what happened to an account, when, from where and by whom."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.accounts.models import ACCOUNT_EVENT_KINDS, AccountEvent


def record_event(session: so.Session, user_id: int, kind: str, *, actor_id: int | None = None,
                 address: str | None = None, detail: str = "") -> None:
    """Add one line to the user's audit log (in the caller's transaction)."""
    if kind not in ACCOUNT_EVENT_KINDS:
        raise ValueError(f"unknown account event {kind!r}")
    session.add(AccountEvent(user_id=user_id, actor_id=actor_id, kind=kind, address=(address or None) and address[:45],
                             detail=(detail or "")[:200]))


def recent_events(session: so.Session, user_id: int, limit: int = 50) -> list[AccountEvent]:
    """The user's latest audit lines, newest first."""
    return list(session.scalars(sa.select(AccountEvent).where(AccountEvent.user_id == user_id)
                                .order_by(AccountEvent.created_at.desc(), AccountEvent.id.desc()).limit(limit)))
