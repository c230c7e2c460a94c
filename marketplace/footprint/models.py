"""Event footprints: the emission factor library, events, their activity lines and reduction measures."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db

#: The six categories of the MEE large-event guideline (大型活动碳中和实施指南（试行）, 2019), in its order.
CATEGORIES = ("transport", "catering", "accommodation", "venue", "materials", "waste")
_CATEGORY_CHECK = "category IN ('transport', 'catering', 'accommodation', 'venue', 'materials', 'waste')"


class EmissionFactor(db.Model):
    """One published version of a factor. A version never changes; the bureau adds a new one instead."""

    __tablename__ = "emission_factors"
    __table_args__ = (
        sa.UniqueConstraint("code", "version", name="uq_emission_factors_code_version"),
        sa.CheckConstraint(_CATEGORY_CHECK, name="category"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("kgco2e_per_unit >= 0", name="factor_not_negative"),
        # At most one version of a code is current (not retired): new activity lines use it.
        sa.Index("uq_emission_factors_current_code", "code", unique=True,
                 postgresql_where=sa.text("retired_at IS NULL"), sqlite_where=sa.text("retired_at IS NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: stable code across versions, e.g. "venue.grid_east_2023"; the prefix is the category
    code: so.Mapped[str] = so.mapped_column(sa.String(64))
    #: 1, 2, 3 … per code
    version: so.Mapped[int] = so.mapped_column(sa.Integer)
    #: one of CATEGORIES; an activity line's category must equal its factor's
    category: so.Mapped[str] = so.mapped_column(sa.String(16))
    name_zh: so.Mapped[str] = so.mapped_column(sa.String(200))
    name_en: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: the activity unit the factor applies to: kWh, passenger-km, room-night, meal, kg, m³ …
    unit: so.Mapped[str] = so.mapped_column(sa.String(32))
    #: kg CO2e per unit of activity, exact (Numeric, never float)
    kgco2e_per_unit: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(18, 8))
    #: the publication the value comes from (title, table, issuer)
    source: so.Mapped[str] = so.mapped_column(sa.Text, info={"max_length": 2000})
    #: the data year of the value
    year: so.Mapped[int] = so.mapped_column(sa.Integer)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    #: set when replaced by a newer version or withdrawn; retired factors stay for old lines
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    def name(self, language: str) -> str:
        return self.name_zh if language == "zh" else self.name_en

    def __repr__(self) -> str:
        return f"<EmissionFactor {self.code} v{self.version} {self.kgco2e_per_unit}>"


class Event(db.Model):
    """An activity a buyer organisation wants to neutralise (a conference, a summit …)."""

    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        sa.CheckConstraint("attendees IS NULL OR attendees >= 0", name="attendees_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: the buyer organisation that owns the event
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    starts_on: so.Mapped[date] = so.mapped_column(sa.Date)
    ends_on: so.Mapped[date] = so.mapped_column(sa.Date)
    location: so.Mapped[str] = so.mapped_column(sa.String(200))
    attendees: so.Mapped[int | None] = so.mapped_column(sa.Integer)
    #: who runs the event (may differ from the buying organisation)
    organiser: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    #: the accounting boundary as disclosed in the report (what is in and out)
    boundary: so.Mapped[str] = so.mapped_column(sa.Text, default="", info={"max_length": 4000})
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    lines: so.Mapped[list[ActivityLine]] = so.relationship(
        back_populates="event", order_by="ActivityLine.id", cascade="all, delete-orphan")
    reductions: so.Mapped[list[ReductionMeasure]] = so.relationship(
        order_by="ReductionMeasure.id", cascade="all, delete-orphan")

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.name}>"


class ActivityLine(db.Model):
    """Activity data × one factor version = a line's emissions, fixed when the line is entered."""

    __tablename__ = "activity_lines"
    __table_args__ = (
        sa.CheckConstraint(_CATEGORY_CHECK, name="category"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("emissions_units >= 0", name="emissions_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    category: so.Mapped[str] = so.mapped_column(sa.String(16))
    #: the guideline's emission source under the category (footprint.sources.SOURCES), e.g. venue_electricity
    source: so.Mapped[str] = so.mapped_column(sa.String(32))
    #: the exact factor version used, so the line reproduces after the factor is replaced
    factor_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("emission_factors.id"), index=True)
    #: activity data in the factor's unit, at most 4 decimal places
    quantity: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(20, 4))
    description: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    #: the line's emissions: quantity × factor in kg, to tCO2e rounded half-up to 4 places, in units
    #: (1 unit = 0.0001 t). The event total is the sum of these, so the breakdown always adds up.
    emissions_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    event: so.Mapped[Event] = so.relationship(back_populates="lines")
    factor: so.Mapped[EmissionFactor] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.event_id.in_(sa.select(Event.id).where(Event.organisation_id == organisation_id))


class ReductionMeasure(db.Model):
    """What the buyer did to reduce emissions before offsetting (disclosed in the report)."""

    __tablename__ = "reduction_measures"
    __table_args__ = (
        sa.CheckConstraint(_CATEGORY_CHECK, name="category"),
        sa.CheckConstraint("estimated_units IS NULL OR estimated_units >= 0", name="estimate_not_negative"),
        sa.CheckConstraint("achieved_units IS NULL OR achieved_units >= 0", name="achieved_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    category: so.Mapped[str] = so.mapped_column(sa.String(16))
    description: so.Mapped[str] = so.mapped_column(sa.Text, info={"max_length": 2000})
    #: the buyer's estimate of emissions avoided (units); disclosed only, never subtracted: the measured
    #: footprint already reflects the measures
    estimated_units: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    #: what the measure achieved, recorded after the event (units); may exceed the estimate
    achieved_units: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    achieved_recorded_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    evidence: so.Mapped[list[ReductionEvidence]] = so.relationship(
        back_populates="measure", order_by="ReductionEvidence.id", cascade="all, delete-orphan")

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.event_id.in_(sa.select(Event.id).where(Event.organisation_id == organisation_id))


class ReductionEvidence(db.Model):
    """A document proving a reduction measure was carried out (a PDF: an invoice, a meter reading, a
    supplier's statement), stored outside the web root under a generated name like project documents."""

    __tablename__ = "reduction_evidence"
    __table_args__ = (sa.CheckConstraint("size_bytes > 0", name="size_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    measure_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("reduction_measures.id", ondelete="CASCADE"),
                                                  index=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: the uploader's file name, for display only (never used as a path)
    original_name: so.Mapped[str] = so.mapped_column(sa.String(255))
    #: the type checked from the content (application/pdf)
    content_type: so.Mapped[str] = so.mapped_column(sa.String(64))
    #: generated name under UPLOAD_FOLDER
    stored_name: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    size_bytes: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    uploaded_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    measure: so.Mapped[ReductionMeasure] = so.relationship(back_populates="evidence")


#: PostgreSQL refuses to change a published factor's value, unit, code or version (the service never
#: tries; this guards hand-written SQL). SQLite relies on the service alone.
FACTOR_IMMUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION emission_factors_immutable() RETURNS trigger AS $$
BEGIN
  IF NEW.kgco2e_per_unit <> OLD.kgco2e_per_unit OR NEW.unit <> OLD.unit OR NEW.code <> OLD.code
     OR NEW.version <> OLD.version OR NEW.category <> OLD.category THEN
    RAISE EXCEPTION 'a published emission factor cannot change; add a new version';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql"""
FACTOR_IMMUTABLE_TRIGGER = """
CREATE TRIGGER emission_factors_immutable BEFORE UPDATE ON emission_factors
  FOR EACH ROW EXECUTE FUNCTION emission_factors_immutable()"""
for _statement in (FACTOR_IMMUTABLE_FUNCTION, FACTOR_IMMUTABLE_TRIGGER):
    sa.event.listen(EmissionFactor.__table__, "after_create",
                    sa.DDL(_statement).execute_if(dialect="postgresql"))
