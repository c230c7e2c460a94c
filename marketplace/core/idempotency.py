"""A request repeated with its key acts once: the one mechanism behind every form and create call.

A double click, a resend after a slow answer, a client's retry after a timeout: each carries the key of the
first request (a form's ``submission_key``, the order form's ``request_token``, an API client's
``Idempotency-Key``). The request's first write *claims* the key — a row whose key is unique in the
database, written in the same transaction as the change — so

- a repeat after the first request committed finds what the first did (looked up before writing);
- a repeat running at the same time waits on the unique index until the first commits, fails with an
  IntegrityError, rolls back and then finds what the first did;
- a refused request (a domain error; rolled back) leaves no key behind, so the corrected one goes through.

:func:`act_once` is that flow; the storage is the caller's: ``idempotency_keys`` rows for forms
(``core.once``) and the API's create calls (``core.api_idempotency``), the order row itself for orders
(``orders.idempotency_key``, unique per buyer). Keys are kept only as long as a repeat is plausible
(:func:`purge`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError

from marketplace.core.db import utcnow
from marketplace.core.errors import DomainError
from marketplace.core.models import IdempotencyKey

Done = TypeVar("Done")
Earlier = TypeVar("Earlier")


@dataclass(frozen=True)
class Once(Generic[Done, Earlier]):
    """What :func:`act_once` found: ``earlier``, what a request with the same key did before (this one did
    nothing), or ``done``, what this request's claim returned (the key is now claimed, in the open
    transaction: the caller commits)."""

    done: Done | None = None
    earlier: Earlier | None = None

    @property
    def repeated(self) -> bool:
        return self.earlier is not None


def act_once(session: so.Session, *, earlier: Callable[[], Earlier | None], claim: Callable[[], Done],
             look_first: bool = True) -> Once[Done, Earlier]:
    """Look up what an earlier request with the key did (``earlier()``); if nothing, ``claim()``: the write
    that claims the key, flushed (it may do the whole change too).

    If the claim collides with the key's unique constraint (a request with the key committed meanwhile)
    or is refused (a DomainError: the units sold since, the event neutralised by that very request), the
    transaction is rolled back and the earlier request looked up again: a repeat is answered with what it
    did, whatever would refuse it now. With nothing earlier, the error is raised as it is.

    ``look_first=False`` skips the first lookup where a new key is the common case and the unique
    constraint finds a used one anyway (the order API's hot path: one statement fewer). ``earlier`` may
    always answer None (a request without a key): the claim then simply runs.
    """
    if look_first:
        found = earlier()
        if found is not None:
            return Once(earlier=found)
    try:
        return Once(done=claim())
    except (IntegrityError, DomainError):
        session.rollback()
        found = earlier()
        if found is None:
            raise
        return Once(earlier=found)


def find_key(session: so.Session, user_id: int, key: str) -> IdempotencyKey | None:
    """The ``idempotency_keys`` row of this user's key, if a request claimed it."""
    return session.scalar(sa.select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                          IdempotencyKey.key == key))


def claim_key(session: so.Session, *, user_id: int, key: str, endpoint: str,
              fingerprint: str | None = None) -> IdempotencyKey:
    """Write the user's key (flushed): waits while a request with the same key is still running, then
    raises IntegrityError if that one committed."""
    row = IdempotencyKey(user_id=user_id, key=key, endpoint=endpoint, fingerprint=fingerprint)
    session.add(row)
    session.flush()
    return row


def purge(session: so.Session, *, older_than_days: int) -> int:
    """Forget keys older than this; a request repeated after that acts again. The number removed."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff),
                             execution_options={"synchronize_session": False})
    return result.rowcount or 0
