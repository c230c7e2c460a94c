"""Shared column types and helpers for the typed models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

M = TypeVar("M")


def utcnow() -> datetime:
    """Now, timezone-aware in UTC. Pass the function itself as a column default, never its result."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def insert(session: so.Session, target):
    """``INSERT`` for the session's database, able to say ``ON CONFLICT`` (PostgreSQL and SQLite, the
    two databases Tanhui runs on): ``.on_conflict_do_nothing(…)`` or ``.on_conflict_do_update(…)``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(target)
    if dialect == "sqlite":
        return sqlite.insert(target)
    raise NotImplementedError(f"no INSERT … ON CONFLICT for {dialect}")


def max_length(attribute) -> int:
    """The most characters a text column takes, named once on the model for the forms, services and API
    schemas that check it first: a String column's length, or a Text column's ``info["max_length"]``
    (a limit the application sets, not the database)."""
    column = attribute.class_.__table__.c[attribute.key]
    return column.info.get("max_length") or column.type.length
def reload(session: so.Session, row: M, *options) -> M:
    """The row again, with the relationships named by ``options`` (loader options) loaded in the same load:
    for an answer built after a commit expired the row, instead of a lazy load per relationship."""
    return session.get(type(row), sa.inspect(row).identity, options=options, populate_existing=True)
