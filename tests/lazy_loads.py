"""Catch lazy loads and count queries.

A relationship read that the query did not load, and whose object is not already in the session,
costs one more SELECT, per row when it happens in a loop: the N+1. Queries load what they need with
loader options where they are written (selectinload/joinedload). ``forbid_lazy_loads`` turns every
lazy load that would reach the database while a request is handled into an error naming the
relationship: always in tests/test_query_budget.py, and in every test with ``pytest --forbid-lazy-loads``.
Outside requests (a test's own setup, a service called directly on one object) a lazy load stays allowed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import has_request_context


class LazyLoadError(AssertionError):
    """A relationship was loaded lazily (one more query) where the query should have loaded it."""


def _eager_load_in_progress() -> bool:
    """An eager load that SQLAlchemy runs through its lazy loader: a refresh() re-runs the selectinload
    options an object was loaded with as "immediate" loads, which look like lazy loads but are not."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_load_for_path" and code.co_filename.endswith("strategies.py"):
            return True
        frame = frame.f_back
    return False


def _relationship_of(state: so.ORMExecuteState) -> str:
    path = state.loader_strategy_path
    prop = path[-1] if path is not None and len(path) else None
    return str(prop) if prop is not None else f"a relationship of {state.lazy_loaded_from.class_.__name__}"


@contextmanager
def forbid_lazy_loads() -> Iterator[list[str]]:
    """Inside the block, a lazy load that would emit SQL while a request is handled raises LazyLoadError.
    Yields the list of the relationships refused, for a test to report after a view turned the error
    into a 500."""
    refused: list[str] = []

    def refuse(state: so.ORMExecuteState) -> None:
        if not state.is_select or state.lazy_loaded_from is None:  # a query, a write or an eager load
            return
        if not has_request_context() or _eager_load_in_progress():
            return
        name = _relationship_of(state)
        refused.append(name)
        raise LazyLoadError(f"lazy load of {name}: load it in the query (selectinload/joinedload)")

    sa.event.listen(so.Session, "do_orm_execute", refuse)
    try:
        yield refused
    finally:
        sa.event.remove(so.Session, "do_orm_execute", refuse)


@contextmanager
def count_queries(engine: sa.Engine) -> Iterator[list[str]]:
    """Yields the list of the SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
