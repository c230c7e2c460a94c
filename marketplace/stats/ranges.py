"""Which aggregate rows answer a range of local days, so reading a range does not grow with it.

Partial months at either end come from the daily rows: the days inside, or, when fewer, the whole
month minus the days outside (so at most ~15 days an end). Whole months up to a year boundary come
from the monthly rollups the same way (the months, or the year minus the months outside); whole
years, and all time, from ``retirement_totals``. Figures are integers, so adding and taking away is
exact.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa

#: A closed range of periods (None = open) read with a sign: +1 to add, -1 to take away.
Piece = tuple[date | None, date | None, int]


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(month: date, n: int) -> date:
    year, index = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(year, index + 1, 1)


class _MonthOfDays:
    """A month as a run of days; a month is named by its first day."""

    @staticmethod
    def first(day: date) -> date:
        return day.replace(day=1)

    @staticmethod
    def last(day: date) -> date:
        return month_end(day)

    @staticmethod
    def shift(day: date, n: int) -> date:
        return day + timedelta(days=n)

    @staticmethod
    def count(low: date, high: date) -> int:
        return (high - low).days + 1


class _YearOfMonths:
    """A year as a run of months (first days); a year is named by its first of January."""

    @staticmethod
    def first(month: date) -> date:
        return date(month.year, 1, 1)

    @staticmethod
    def last(month: date) -> date:
        return date(month.year, 12, 1)

    @staticmethod
    def shift(month: date, n: int) -> date:
        return add_months(month, n)

    @staticmethod
    def count(low: date, high: date) -> int:
        return (high.year - low.year) * 12 + high.month - low.month + 1


@dataclass
class Plan:
    """How a range of local days is read from the aggregates (see the module's docstring). The month
    series takes the whole months' total rows (one a month) and the partial months' pieces."""

    days: list[Piece] = field(default_factory=list)
    #: monthly rollups counted in the dimensions and in the month series (partial months' complements)
    months: list[Piece] = field(default_factory=list)
    #: monthly rollups counted in the dimensions only (partial years)
    year_months: list[Piece] = field(default_factory=list)
    #: years (first days of January) read from retirement_totals; never open at both ends
    years: list[Piece] = field(default_factory=list)
    #: no date filter: the all-time rows of retirement_totals
    all_time: bool = False
    #: whole months [from, to] of the month series, read from the monthly total rows
    series: tuple[date | None, date | None] | None = None


def plan(date_from: date | None, date_to: date | None) -> Plan:
    result = Plan()
    if date_from and date_to and date_from > date_to:
        return result
    result.days, result.months, whole_months = _split(date_from, date_to, _MonthOfDays)
    if whole_months is None:
        return result
    result.series = whole_months
    if whole_months == (None, None):
        result.all_time = True
        return result
    result.year_months, result.years, whole_years = _split(*whole_months, _YearOfMonths)
    if whole_years is not None:
        result.years.append((*whole_years, 1))
    return result


def _split(low: date | None, high: date | None, unit) -> tuple[list[Piece], list[Piece], tuple | None]:
    """A range of small periods (days; months) → signed pieces of small periods, signed whole units
    (months; years) that cover a partial end more cheaply, and the whole units left in between (as
    their first small periods; None when there are none)."""
    small: list[Piece] = []
    whole: list[Piece] = []
    if low:
        first, last = unit.first(low), unit.last(low)
        if high and high <= last:  # both ends in one unit
            if low == first and high == last:
                return small, whole, (first, first)
            _cover(small, whole, low, high, first, last, unit)
            return small, whole, None
        if low != first:
            _cover(small, whole, low, last, first, last, unit)
            low = unit.shift(last, 1)
    if high:
        first, last = unit.first(high), unit.last(high)
        if high != last:
            _cover(small, whole, first, high, first, last, unit)
            first = unit.first(unit.shift(first, -1))
        high = first
    if low and high and low > high:
        return small, whole, None
    return small, whole, (low, high)


def _cover(small: list[Piece], whole: list[Piece], low: date, high: date, first: date, last: date, unit) -> None:
    """Part [low, high] of the unit [first, last]: its small periods, or, when fewer, the unit less
    the small periods outside the part."""
    inside = unit.count(low, high)
    if inside <= unit.count(first, last) - inside:
        small.append((low, high, 1))
        return
    whole.append((first, first, 1))
    if low > first:
        small.append((first, unit.shift(low, -1), -1))
    if high < last:
        small.append((unit.shift(high, 1), last, -1))


# --- pieces in SQL ------------------------------------------------------------------------------

def _bounds(column, low, high) -> list:
    return ([column >= low] if low is not None else []) + ([column <= high] if high is not None else [])


def within(column, pieces: list[Piece]):
    """SQL: the column falls in one of the pieces."""
    return sa.or_(*(sa.and_(sa.true(), *_bounds(column, low, high)) for low, high, _sign in pieces))


def sign_of(value, pieces: list[Piece]) -> int:
    """The net sign of the pieces a value falls in."""
    return sum(sign for low, high, sign in pieces if (low is None or value >= low) and (high is None or value <= high))


def sign_case(column, pieces: list[Piece]):
    """SQL: the net sign of the pieces the column falls in."""
    if len(pieces) == 1:
        return sa.literal(pieces[0][2])
    return sum((sa.case((sa.and_(sa.true(), *_bounds(column, low, high)), sign), else_=0)
                for low, high, sign in pieces), sa.literal(0))
