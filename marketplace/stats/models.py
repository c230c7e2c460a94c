"""Maintained aggregates of completed orders, so dashboards and the stats API stay fast at any size.

All three tables (by day, by month, by year and for all time) are written in the same transaction
that moves an order to ``completed`` (see stats/aggregates.record_completion) and can be rebuilt from the orders and the ledger at any time
(``marketplace stats rebuild``). Quantities are integer units (1 unit = 0.0001 t); money is integer
fen (0.01 CNY): sums of integers are exact on every database, sums of SQLite "decimals" are not.

Order and event counts are attributed to one row per order (its first project and vintage), so
they add up exactly across days, buyers and months; by village or project they are not counted.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.extensions import db

#: Dimensions of the monthly rollups. ``total`` has key 0; ``project`` keys by project and vintage.
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


class RetirementRollup(db.Model):
    """The same figures by month and one dimension, with and without the county: a handful of rows
    per month whatever the number of orders, so a year's dashboard reads a few thousand rows."""

    __tablename__ = "retirement_rollups"
    __table_args__ = (
        sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name="dimension"),
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.Index("ix_retirement_rollups_dimension_county_month", "dimension", "county_id", "month"),
    )

    #: the first day of the (local) month
    month: so.Mapped[date] = so.mapped_column(primary_key=True)
    #: 0 = every county; otherwise the village's county (each completion writes both)
    county_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    dimension: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    #: buyer organisation, village or project id; 0 for the total
    key_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the vintage for ``project``, else 0
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    orders: so.Mapped[int] = so.mapped_column(default=0)
    events: so.Mapped[int] = so.mapped_column(default=0)


class RetirementTotal(db.Model):
    """The same figures by year and for all time (``year`` 0), per dimension, with and without the
    county: one row per buyer, village or project and vintage, however many orders they hold, so an
    unfiltered or whole-year query reads a fixed number of rows."""

    __tablename__ = "retirement_totals"
    __table_args__ = (
        sa.CheckConstraint("dimension IN ('total', 'buyer', 'village', 'project')", name="dimension"),
        sa.CheckConstraint("units > 0", name="units_positive"),
    )

    #: the (local) year, or 0 for all time (each completion writes both)
    year: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: 0 = every county; otherwise the village's county (each completion writes both)
    county_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    dimension: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)
    #: buyer organisation, village or project id; 0 for the total
    key_id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    #: the vintage for ``project``, else 0
    vintage: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    orders: so.Mapped[int] = so.mapped_column(default=0)
    events: so.Mapped[int] = so.mapped_column(default=0)
