"""Plans: the boundary by the guideline's sources, the planned and actual footprint versions, the offsetting
route, the deadline and who evaluates; publishing the plan's main contents.

Plain functions over a session, ids and an explicit actor. They flush; the caller commits. Every refusal
raises before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core.access import get_scoped, scoped_select
from marketplace.core.db import utcnow
from marketplace.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from marketplace.core.i18n import platform_zone
from marketplace.footprint import service as footprint
from marketplace.footprint.models import CATEGORIES, Event, ReductionEvidence, ReductionMeasure
from marketplace.footprint.sources import SOURCE_CODES, SOURCES
from marketplace.neutrality.models import EVALUATION_MODES, Declaration, NeutralityPlan
from marketplace.registry.models import CREDIT_SCHEMES

MAX_REASON = 300


def today() -> date:
    """Today in the platform's zone (Asia/Shanghai): deadlines are calendar days there."""
    return utcnow().astimezone(platform_zone()).date()


def default_deadline(event: Event) -> date:
    """One year after the event ends by default (provincial rules, ISO 14068-1), configurable."""
    return event.ends_on + timedelta(days=int(current_app.config["NEUTRALITY_DEADLINE_DAYS"]))


def _require_organiser(actor) -> None:
    if actor.role != "buyer":
        raise Forbidden(_l("Only the event's organiser plans its neutralisation."))


def plan_for(session: so.Session, event_id: int) -> NeutralityPlan | None:
    return session.scalar(sa.select(NeutralityPlan).where(NeutralityPlan.event_id == event_id))


def scoped_plans(actor) -> sa.Select:
    """The plans the actor may see (organiser, assigned evaluator, the bureau all), with their events."""
    return scoped_select(NeutralityPlan, actor).options(so.joinedload(NeutralityPlan.event))


def visible_plan(session: so.Session, actor, plan_id) -> NeutralityPlan:
    """The plan if the actor's organisation organises it, evaluates it, or is the bureau; else NotFound."""
    return get_scoped(session, NeutralityPlan, plan_id, actor, options=[so.joinedload(NeutralityPlan.event)])


def own_plan(session: so.Session, actor, plan_id) -> NeutralityPlan:
    """The plan if the actor's organisation organises it (an evaluator of it may read, not change it)."""
    _require_organiser(actor)
    plan = visible_plan(session, actor, plan_id)
    if plan.organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    return plan


@dataclass(frozen=True)
class PlanInput:
    """A plan as the organiser enters it."""

    #: source code → (included, reason for leaving it out)
    boundary: dict[str, tuple[bool, str]]
    offsetting_route: list[str]
    deadline: date | None
    evaluation: str
    evaluator_organisation_id: int | None = None


def _clean_boundary(boundary: dict[str, tuple[bool, str]]) -> dict:
    unknown = set(boundary) - set(SOURCE_CODES)
    if unknown:
        raise ValidationFailed(_l("Unknown emission source: %(code)s.", code=sorted(unknown)[0]), "boundary")
    cleaned = {}
    for code in SOURCE_CODES:
        included, reason = boundary.get(code, (False, ""))
        reason = (reason or "").strip()
        if not included and not reason:
            raise ValidationFailed(_l("Say why this source is left out of the boundary."), f"reason-{code}")
        if len(reason) > MAX_REASON:
            raise ValidationFailed(_l("At most %(n)s characters.", n=MAX_REASON), f"reason-{code}")
        cleaned[code] = {"included": bool(included), "reason": "" if included else reason}
    if not any(entry["included"] for entry in cleaned.values()):
        raise ValidationFailed(_l("A plan needs a boundary: include at least one emission source."), "boundary")
    return cleaned


def _reductions_units(session: so.Session, event_id: int) -> int:
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(ReductionMeasure.estimated_units), 0))
                              .where(ReductionMeasure.event_id == event_id)) or 0)


def _evaluator(session: so.Session, data: PlanInput) -> int | None:
    if data.evaluation not in EVALUATION_MODES:
        raise ValidationFailed(_l("Choose a self-declaration or a third-party evaluation."), "evaluation")
    if data.evaluation == "self":
        return None
    evaluator = session.get(Organisation, data.evaluator_organisation_id) if data.evaluator_organisation_id else None
    if evaluator is None or evaluator.kind != "evaluator":
        raise ValidationFailed(_l("Choose the accredited evaluator."), "evaluator_organisation_id")
    return evaluator.id


def save_plan(session: so.Session, actor, event_id, data: PlanInput) -> NeutralityPlan:
    """Make or change the event's plan. The planned footprint version is the event's footprint now.

    Refused: no boundary, an excluded source without a reason, no footprint, reductions larger than the
    estimate, no offsetting route, a deadline in the past or before the event ends, an evaluator that is
    not one; and any change once the actual footprint is recorded."""
    _require_organiser(actor)
    event = footprint.own_event(session, actor, event_id)
    plan = plan_for(session, event.id)
    if plan is not None and plan.actual_units is not None:
        raise InvalidTransition(_l("The actual footprint is recorded; the plan can no longer change."))
    boundary = _clean_boundary(data.boundary)
    breakdown = footprint.event_breakdown(session, event.id)
    if breakdown.total_units <= 0:
        raise ValidationFailed(_l("Estimate the footprint first: add the event's activities."), "boundary")
    reductions = _reductions_units(session, event.id)
    if reductions > breakdown.total_units:
        raise ValidationFailed(_l("The reduction measures save more than the estimated footprint; check their "
                                  "estimates."), "reductions")
    route = [scheme for scheme in CREDIT_SCHEMES if scheme in set(data.offsetting_route or ())]
    if not route or set(data.offsetting_route) - set(CREDIT_SCHEMES):
        raise ValidationFailed(_l("Choose the credits you intend to offset with."), "offsetting_route")
    deadline = data.deadline or default_deadline(event)
    if deadline < today():
        raise ValidationFailed(_l("The deadline is in the past."), "deadline")
    if deadline < event.ends_on:
        raise ValidationFailed(_l("The deadline cannot be before the event ends."), "deadline")
    evaluator_id = _evaluator(session, data)
    values = {"boundary": boundary, "planned_by_category": dict(breakdown.by_category),
              "planned_by_source": dict(breakdown.by_source), "planned_units": breakdown.total_units, "offsetting_route": route, "deadline": deadline,
              "evaluation": data.evaluation, "evaluator_organisation_id": evaluator_id}
    if plan is None:
        plan = NeutralityPlan(event_id=event.id, organisation_id=event.organisation_id, created_by_id=actor.id,
                              **values)
        session.add(plan)
    else:
        for key, value in values.items():
            setattr(plan, key, value)
        plan.updated_at = utcnow()
    session.flush()
    return plan


def publish(session: so.Session, actor, plan_id) -> NeutralityPlan:
    """Publish the plan's main contents (the public disclosure page). Publishing twice changes nothing."""
    plan = own_plan(session, actor, plan_id)
    if plan.published_at is None:
        session.execute(sa.update(NeutralityPlan).where(NeutralityPlan.id == plan.id,
                                                        NeutralityPlan.published_at.is_(None))
                        .values(published_at=utcnow()), execution_options={"synchronize_session": False})
        session.flush()
        session.refresh(plan, ["published_at"])
    return plan


def record_actual(session: so.Session, actor, plan_id) -> NeutralityPlan:
    """After the event: the event's footprint now becomes the actual version (again, until declared)."""
    plan = own_plan(session, actor, plan_id)
    if plan.event.starts_on > today():
        raise InvalidTransition(_l("The actual footprint is recorded after the event has taken place."))
    if declaration_of(session, plan.id, "self") is not None:
        raise InvalidTransition(_l("The event is declared carbon neutral; its footprint can no longer change."))
    breakdown = footprint.event_breakdown(session, plan.event_id)
    if breakdown.total_units <= 0:
        raise ValidationFailed(_l("The event has no footprint yet; add its activities first."), "actual")
    plan.actual_by_category = dict(breakdown.by_category)
    plan.actual_by_source = dict(breakdown.by_source)
    plan.actual_units = breakdown.total_units
    plan.actual_recorded_at = utcnow()
    session.flush()
    return plan


def declaration_of(session: so.Session, plan_id: int, kind: str) -> Declaration | None:
    return session.scalar(sa.select(Declaration).where(Declaration.plan_id == plan_id, Declaration.kind == kind))


@dataclass(frozen=True)
class SourceRow:
    """One source under a category: planned and actual units (None where that version was not recorded by
    source, or the actual not at all), and whether the plan's boundary includes it."""

    code: str
    planned: int | None
    actual: int | None
    in_boundary: bool


@dataclass
class Comparison:
    """Plan against actual, per category (in the guideline's order) and in total, in units; under each
    category the sources that have emissions in either version."""

    rows: list[tuple[str, int, int | None]]
    planned_total: int
    actual_total: int | None
    sources: dict[str, list[SourceRow]] = field(default_factory=dict)

    def sources_in(self, category: str) -> list[SourceRow]:
        return self.sources.get(category, [])

    @property
    def outside_boundary(self) -> list[str]:
        """Sources with emissions that the boundary leaves out."""
        return [row.code for rows in self.sources.values() for row in rows if not row.in_boundary]


def included_sources(plan: NeutralityPlan) -> frozenset[str]:
    return frozenset(code for code, entry in (plan.boundary or {}).items() if entry.get("included"))


def plan_vs_actual(plan: NeutralityPlan) -> Comparison:
    actual = plan.actual_by_category or {}
    rows = [(category, int(plan.planned_by_category.get(category, 0)),
             int(actual.get(category, 0)) if plan.actual_by_category is not None else None)
            for category in CATEGORIES]
    planned_sources, actual_sources = plan.planned_by_source, plan.actual_by_source
    included = included_sources(plan)
    sources: dict[str, list[SourceRow]] = {}
    for source in SOURCES:
        planned = int(planned_sources.get(source.code, 0)) if planned_sources is not None else None
        recorded = int(actual_sources.get(source.code, 0)) if actual_sources is not None else None
        if not planned and not recorded:
            continue
        sources.setdefault(source.category, []).append(
            SourceRow(source.code, planned, recorded, source.code in included))
    return Comparison(rows=rows, planned_total=plan.planned_units, actual_total=plan.actual_units, sources=sources)


def boundary_of_event(_sender=None, *, session: so.Session, event_id: int) -> frozenset[str] | None:
    """The footprint feature's question: the sources the event's plan includes (None without a plan)."""
    plan = plan_for(session, event_id)
    return included_sources(plan) if plan is not None else None


def reductions(session: so.Session, event_id: int) -> list[ReductionMeasure]:
    return list(session.scalars(sa.select(ReductionMeasure).where(ReductionMeasure.event_id == event_id)
                                .order_by(ReductionMeasure.id)
                                .options(so.selectinload(ReductionMeasure.evidence)
                                         .joinedload(ReductionEvidence.measure))))


def evaluators(session: so.Session) -> list[Organisation]:
    return list(session.scalars(sa.select(Organisation).where(Organisation.kind == "evaluator")
                                .order_by(Organisation.name)))
