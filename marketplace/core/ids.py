"""Row ids as they may come from outside (paths, query strings, JSON bodies).

Ids are PostgreSQL ``integer`` columns. A number outside 1 … 2³¹−1 can name no row; sent to the
database it would be an error (PostgreSQL: integer out of range; SQLite: too large to bind), so it is
answered before any query: a path with such an id is a 404, a field or filter with one a 422.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2_147_483_647


def is_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


class IdConverter(IntegerConverter):
    """``<int:…>`` in routes: digits only, and at most MAX_ID (a larger number matches no route: 404)."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 — Werkzeug's parameter name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
