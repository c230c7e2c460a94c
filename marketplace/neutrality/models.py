"""The neutrality dossier of an event: its plan (boundary, footprint versions, route, deadline, evaluation),
the reminders sent before its deadline, and its signed declaration or evaluation.

Footprint versions: the event's activity lines (footprint feature) are the working footprint. The plan
keeps the version it was made with (``planned``); after the event the organiser records the ``actual``
version. Each is a snapshot per category, in integer units (1 unit = 0.0001 tCO2e), so plan and actual
can be compared whatever happens to the lines later.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.footprint.models import Event

EVALUATION_MODES = ("self", "third_party")
DECLARATION_KINDS = ("self", "evaluation")
CONCLUSIONS = ("conforms", "does_not_conform")
#: Days before the deadline at which the organiser is reminded while coverage is below 100 %.
REMINDER_DAYS = (90, 30, 7)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class NeutralityPlan(db.Model):
    """An event's carbon-neutrality plan (实施计划) and its wrap-up: one per event."""

    __tablename__ = "neutrality_plans"
    __table_args__ = (
        sa.CheckConstraint(_in("evaluation", EVALUATION_MODES), name="evaluation"),
        sa.CheckConstraint("planned_units > 0", name="planned_positive"),
        sa.CheckConstraint("actual_units IS NULL OR actual_units > 0", name="actual_positive"),
        # A third-party evaluation names its evaluator; a self-declaration names none.
        sa.CheckConstraint("(evaluation = 'self' AND evaluator_organisation_id IS NULL) OR "
                           "(evaluation = 'third_party' AND evaluator_organisation_id IS NOT NULL)",
                           name="evaluator_named"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("events.id"), unique=True)
    #: the event's organisation (copied from the event, so the plan is scoped like everything else)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    #: source code (footprint.sources.SOURCES) → {"included": bool, "reason": str}
    boundary: so.Mapped[dict] = so.mapped_column(sa.JSON)
    #: the planned footprint version: category → units, and its total
    planned_by_category: so.Mapped[dict] = so.mapped_column(sa.JSON)
    planned_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: the same version by the guideline's source: source code → units (None for plans made before sources
    #: were recorded on lines, whose lines no longer match the version)
    planned_by_source: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    #: the actual footprint version, recorded after the event (None until then)
    actual_by_category: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    actual_units: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    actual_by_source: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    actual_recorded_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: the credit schemes the organiser intends to offset with (registry.models.CREDIT_SCHEMES)
    offsetting_route: so.Mapped[list] = so.mapped_column(sa.JSON)
    #: neutralisation must be complete by this day (default: one year after the event ends)
    deadline: so.Mapped[date] = so.mapped_column(sa.Date, index=True)
    #: self | third_party
    evaluation: so.Mapped[str] = so.mapped_column(sa.String(16))
    #: the evaluator the organiser assigned (an organisation of kind ``evaluator``)
    evaluator_organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisations.id"),
                                                                        index=True)
    #: when its main contents were published (the public disclosure page exists from then on)
    published_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: when the deadline passed with coverage below 100 % (the bureau's overdue list)
    overdue_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: so.Mapped[Event] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        """Its organiser's, and its assigned evaluator's (who may read the dossier, not change the plan)."""
        return sa.or_(cls.organisation_id == organisation_id, cls.evaluator_organisation_id == organisation_id)


class NeutralityReminder(db.Model):
    """A deadline reminder sent (or the overdue mark made): at most one per plan and threshold."""

    __tablename__ = "neutrality_reminders"
    __table_args__ = (sa.UniqueConstraint("plan_id", "days_before", name="uq_neutrality_reminders_plan_days"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("neutrality_plans.id"), index=True)
    #: 90, 30 or 7 days before the deadline; 0 for the overdue notice
    days_before: so.Mapped[int] = so.mapped_column(sa.Integer)
    #: how many people it was sent to
    recipients: so.Mapped[int] = so.mapped_column(sa.Integer, default=0)
    sent_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Declaration(db.Model):
    """The signed carbon-neutrality declaration (碳中和声明, kind ``self``) or third-party evaluation
    (第三方评价, kind ``evaluation``) of an event, numbered like certificates and signed with the same keys."""

    __tablename__ = "neutrality_declarations"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", DECLARATION_KINDS), name="kind"),
        sa.CheckConstraint("conclusion IS NULL OR " + _in("conclusion", CONCLUSIONS), name="conclusion"),
        sa.CheckConstraint("(kind = 'self' AND evaluator_organisation_id IS NULL AND conclusion IS NULL) OR "
                           "(kind = 'evaluation' AND evaluator_organisation_id IS NOT NULL AND conclusion IS NOT NULL)",
                           name="kind_fields"),
        sa.UniqueConstraint("plan_id", "kind", name="uq_neutrality_declarations_plan_kind"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: public number, e.g. THN-2026-000001 (a counter per year, shared with nothing else)
    number: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("neutrality_plans.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    evaluator_organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisations.id"))
    #: evaluation: conforms | does_not_conform
    conclusion: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    findings: so.Mapped[str] = so.mapped_column(sa.Text, default="", info={"max_length": 4000})
    #: the signed facts, exactly as signed (certificates.signing.canonical_json)
    facts_json: so.Mapped[str] = so.mapped_column(sa.Text)
    signature: so.Mapped[str] = so.mapped_column(sa.String(100))
    key_id: so.Mapped[str] = so.mapped_column(sa.ForeignKey("signing_keys.key_id"), index=True)
    issued_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    plan: so.Mapped[NeutralityPlan] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.plan_id.in_(sa.select(NeutralityPlan.id).where(NeutralityPlan.owned_by(organisation_id)))


class DeclarationCounter(db.Model):
    """The last declaration number handed out in a year."""

    __tablename__ = "neutrality_declaration_counters"
    __table_args__ = (sa.CheckConstraint("last_number >= 1", name="last_number_positive"),)

    year: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    last_number: so.Mapped[int] = so.mapped_column(sa.Integer)
