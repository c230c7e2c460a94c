"""Idempotency keys: a request repeated with the same key (a double click, a client's retry) acts once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db


class IdempotencyKey(db.Model):
    """One row per request that changed something under a key, written in the same transaction as the
    change (unique per user), so that the same request again is answered with what the first one did:

    - a page's form carries a random ``submission_key`` (marketplace.web.once); the row remembers the page
      the first submission led to (``location``);
    - an API client sends ``Idempotency-Key`` on a create call (marketplace.api.idempotency); the row
      remembers a digest of the call (``fingerprint``) and the object it created (``object_id``).

    Orders keep their own key on the order row (``orders.idempotency_key``)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    #: the form's submission key (32 hex characters) or the client's Idempotency-Key (at most 200 characters)
    key: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: the view it was sent to
    endpoint: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: API: SHA-256 of the endpoint and the request body, to tell a repeat from another request
    fingerprint: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    #: API: the id of the object the first request created
    object_id: so.Mapped[int | None] = so.mapped_column()
    #: web: the page the first submission redirected to
    location: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class PublicVersion(db.Model):
    """How many times the data behind a kind of public page has changed (marketplace.core.public_cache).

    Database triggers bump ``n`` in the transaction that changes a watched table, whatever wrote it (ORM,
    Core statements, the shell); ``token`` is drawn when the row is first written, so a version read after
    the table was emptied never equals one read before. A scope is kept in up to ``SHARDS`` rows (on
    PostgreSQL a writing connection bumps the row of its backend process id modulo that), so writers on
    different connections do not queue on one row lock until they commit; its version is all of its rows."""

    __tablename__ = "public_versions"

    scope: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    shard: so.Mapped[int] = so.mapped_column(sa.SmallInteger, primary_key=True, default=0, autoincrement=False)
    token: so.Mapped[str] = so.mapped_column(sa.String(40))
    n: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
