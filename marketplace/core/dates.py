"""The calendar that date filters accept.

Python's dates run from year 1 to 9999, and a filter's day is turned into an instant in the platform's
zone and a day after it: ``9999-12-31`` + 1 day and ``0001-01-01`` in UTC+8 → UTC both overflow. Filters
(the public retirement registry, its API, dashboards, exports, the stats API) accept these years only;
outside them a date is refused with a message (or, on the public registry page, ignored like any
unreadable date) instead of reaching the arithmetic.
"""

from __future__ import annotations

from datetime import date

FIRST_YEAR, LAST_YEAR = 1900, 2999
FIRST_DAY, LAST_DAY = date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31)


def within_calendar(day: date | None) -> bool:
    """Is this a day a filter may name (None, no filter, is)?"""
    return day is None or FIRST_DAY <= day <= LAST_DAY
