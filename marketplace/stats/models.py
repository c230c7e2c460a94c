"""Maintained aggregates of completed orders, so dashboards and the stats API cost the same for any range.

``retirement_stats`` holds one row per (local day, buyer, village, project, vintage): the seller's and
the buyer's dashboards read it through their indexed columns. The bureau's figures come from
cumulative rows per key (every county, or one county; the total, a buyer, a village, a project and
vintage), in two tiers so that a change on any day rewrites a bounded number of rows:

- ``retirement_months``: from the beginning through the end of each month (and the month's own);
- ``retirement_days``: from the first of the month through each day;
- ``retirement_keys``: every key's all-time figures and the months it has rows for.

A key's figure up to day D is its month row at the end of the month before D plus its day row on D,
so any range [A, B] is (that sum at B) − (that sum at A − 1): a fixed number of contiguous reads,
one row per key, whatever the range or the number of orders. A completion on day D changes the key's
day rows from D to the end of D's month (≤ 31) and its month rows from D's month on (one a month
since), never the whole history. All are written in the same transaction that moves an order to
``completed`` (stats/aggregates.record_completion) and can be rebuilt from the orders and the ledger
(``marketplace stats rebuild``). Quantities are integer units (1 unit = 0.0001 t); money is integer fen:
sums of integers are exact on every database.

Order and event counts are kept for the total and per buyer only (an order can buy from several
villages and projects); in retirement_stats they sit on the order's first project and vintage.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.extensions import db

#: Dimensions of the cumulative tables. ``total`` has key 0; ``project`` keys by project and vintage.
ROLLUP_DIMENSIONS = ("total", "buyer", "village", "project")


class RetirementStat(db.Model):
    """Completed orders by local day, buyer, village, project and vintage."""

    __tablename__ = "retirement_stats"
    __table_args__ = (
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        sa.CheckConstraint("orders >= 0 AND events >= 0", name="counts_not_negative"),
    )

    #: the day of completion in the platform's time zone (Asia/Shanghai)
    day: so.Mapped[date] = so.mapped_column(primary_key=True)
    buyer_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), primary_key=True,
                                                             index=True)
    village_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("regions.id"), primary_key=True)
    project_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("projects.id"), primary_key=True)
    #: the year the batch's vintage ends (as printed on certificates)
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the selling cooperative (the project's seller), for the seller's dashboard
    seller_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    #: the village's county, for the county filter (None if the village has no county above it)
    county_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("regions.id"), index=True)
    #: units retired (= sold) by the orders completed that day
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: their order lines' amounts, in fen; all of it goes to the selling cooperative
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: orders completed, counted on the order's first (project, vintage) row only
    orders: so.Mapped[int] = so.mapped_column(default=0)
    #: events neutralised for the first time by these orders, counted like ``orders``
    events: so.Mapped[int] = so.mapped_column(default=0)


class RetirementKey(db.Model):
    """One row per (county scope, dimension, key) ever counted: its all-time figures and the first and last
    months it has rows in :class:`RetirementMonth` (which are dense between the two). Every change to a
    key starts by locking its row here, so the cumulative rows of one key are written by one
    transaction at a time."""

    __tablename__ = "retirement_keys"
    __table_args__ = (sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name="dimension"),)

    #: 0 = every county; otherwise the village's county, for the total and buyers only
    county_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    dimension: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    #: buyer organisation, village or project id; 0 for the total
    key_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the vintage for ``project``, else 0
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the county of a village or project key, so that one county's villages and projects are read from
    #: the every-county rows (only the total and buyers have rows per county); None otherwise
    key_county_id: so.Mapped[int | None]
    #: first and last (local) months with a row in retirement_months; None until the first completion
    first_month: so.Mapped[date | None]
    last_month: so.Mapped[date | None]
    #: all-time figures
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    orders: so.Mapped[int] = so.mapped_column(default=0)
    events: so.Mapped[int] = so.mapped_column(default=0)


class RetirementMonth(db.Model):
    """Per key and month: the cumulative figures from the beginning through the end of the month, and
    the month's own. Dense: every month from the key's first to its last has a row (a month without a
    completion has ``first_day`` None), so "every key at the end of month M" is one contiguous read."""

    __tablename__ = "retirement_months"
    __table_args__ = (
        sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name="dimension"),
        sa.Index("ix_retirement_months_key_month", "county_id", "dimension", "key_id", "vintage", "month"),
    )

    county_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the first day of the (local) month
    month: so.Mapped[date] = so.mapped_column(primary_key=True)
    dimension: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    key_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: from the beginning through the end of the month
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    orders: so.Mapped[int] = so.mapped_column(default=0)
    events: so.Mapped[int] = so.mapped_column(default=0)
    #: the month's own figures
    month_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    month_amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    month_orders: so.Mapped[int] = so.mapped_column(default=0)
    month_events: so.Mapped[int] = so.mapped_column(default=0)
    #: first and last days of the month with rows in retirement_days (dense between the two); None if none
    first_day: so.Mapped[date | None]
    last_day: so.Mapped[date | None]


class RetirementDay(db.Model):
    """Per key and day: the cumulative figures from the first of the month through the day. Dense
    between the month's first and last days with completions (see RetirementMonth), so "every key on
    day D" is one contiguous read."""

    __tablename__ = "retirement_days"
    __table_args__ = (
        sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name="dimension"),
    )
    # No second index: a completion's rows from day D to the month's end are found through the primary
    # key (county, days D…end), a rebuild writes fewer index entries, and reads go by (county, day).

    county_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    day: so.Mapped[date] = so.mapped_column(primary_key=True)
    dimension: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    key_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    orders: so.Mapped[int] = so.mapped_column(default=0)
    events: so.Mapped[int] = so.mapped_column(default=0)
