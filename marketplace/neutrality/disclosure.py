"""The public disclosure of a published event: what its page and ``GET /api/v1/public/events[/<id>]`` show
(DESIGN §5), and the public list of events with its filters (year, organiser, county of the credits)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.accounts.models import Organisation
from marketplace.certificates import public_retirements
from marketplace.certificates.models import Certificate
from marketplace.core.quantities import format_tonnes
from marketplace.footprint.models import Event, ReductionEvidence, ReductionMeasure
from marketplace.footprint.sources import BY_CODE, SOURCES
from marketplace.neutrality import coverage as coverage_of
from marketplace.neutrality import declarations
from marketplace.neutrality.models import NeutralityPlan
from marketplace.neutrality.service import plan_vs_actual, reductions
from marketplace.orders.models import Order
from marketplace.registry.models import CreditBatch, Project, SerialRange
from marketplace.registry.service import village_ids_under

MAX_PER_PAGE = 100


@dataclass
class Filters:
    year: int | None = None
    organiser: str = ""
    #: region id of a county: events whose counted credits came from its villages
    county_id: int | None = None


def _like(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def published(session: so.Session, filters: Filters) -> list[NeutralityPlan]:
    """Published plans, newest event first, with their events loaded."""
    stmt = (sa.select(NeutralityPlan).join(Event, Event.id == NeutralityPlan.event_id)
            .join(Organisation, Organisation.id == NeutralityPlan.organisation_id)
            .where(NeutralityPlan.published_at.is_not(None))
            .options(so.contains_eager(NeutralityPlan.event)))
    if filters.year:
        stmt = stmt.where(Event.starts_on >= date(filters.year, 1, 1), Event.starts_on <= date(filters.year, 12, 31))
    if filters.organiser.strip():
        stmt = stmt.where(sa.or_(Event.organiser.ilike(_like(filters.organiser), escape="\\"),
                                 Organisation.name.ilike(_like(filters.organiser), escape="\\")))
    if filters.county_id:
        villages = village_ids_under(session, filters.county_id)
        from_county = (sa.select(Order.event_id).join(SerialRange, SerialRange.ref == sa.literal("order:")
                                                      + sa.cast(Order.id, sa.String))
                       .join(CreditBatch, CreditBatch.id == SerialRange.batch_id)
                       .join(Project, Project.id == CreditBatch.project_id)
                       .where(Order.status == "completed", Project.village_id.in_(villages)))
        stmt = stmt.where(NeutralityPlan.event_id.in_(from_county))
    return list(session.scalars(stmt.order_by(Event.starts_on.desc(), NeutralityPlan.id.desc()).limit(MAX_PER_PAGE)))


def published_plan(session: so.Session, event_id: int) -> NeutralityPlan | None:
    return session.scalar(sa.select(NeutralityPlan).where(NeutralityPlan.event_id == event_id,
                                                          NeutralityPlan.published_at.is_not(None))
                          .options(so.joinedload(NeutralityPlan.event)))


def _declaration(session: so.Session, plan: NeutralityPlan) -> dict | None:
    """The evaluation if there is one (it weighs more), else the self-declaration."""
    found = {d.kind: d for d in session.scalars(sa.select(declarations.Declaration)
                                                 .where(declarations.Declaration.plan_id == plan.id))}
    chosen = found.get("evaluation") or found.get("self")
    if chosen is None:
        return None
    return {"number": chosen.number, "kind": chosen.kind, "valid": declarations.is_valid(session, chosen),
            "conclusion": chosen.conclusion, "issued_at": chosen.issued_at.isoformat(),
            "others": [d.number for d in found.values() if d.id != chosen.id]}


def evidence_row(document: ReductionEvidence) -> dict:
    return {"id": document.id, "title": document.title, "content_type": document.content_type,
            "size_bytes": document.size_bytes, "uploaded_at": document.uploaded_at.isoformat(),
            "download": f"/neutrality/events/{document.measure.event_id}/evidence/{document.id}"}


def reduction_row(measure: ReductionMeasure) -> dict:
    return {"id": measure.id, "category": measure.category, "description": measure.description,
            "estimated_tco2e": format_tonnes(measure.estimated_units) if measure.estimated_units else None,
            "achieved_tco2e": format_tonnes(measure.achieved_units) if measure.achieved_units is not None else None,
            "evidence": [evidence_row(document) for document in measure.evidence]}


def summary(session: so.Session, plan: NeutralityPlan, *, detail: bool = False) -> dict:
    """An event as the public sees it (DESIGN §5 fields; with ``detail`` also sources, reductions and the
    retirements with their projects, villages and serial ranges)."""
    event = plan.event
    cover = coverage_of.of_plan(session, plan)
    comparison = plan_vs_actual(plan)
    by_category = {category: {"planned_tco2e": format_tonnes(planned),
                              "actual_tco2e": format_tonnes(actual) if actual is not None else None}
                   for category, planned, actual in comparison.rows}
    organiser = event.organiser or session.scalar(sa.select(Organisation.name)
                                                  .where(Organisation.id == plan.organisation_id))
    data = {
        "id": event.id, "name": event.name, "organiser": organiser, "location": event.location,
        "starts_on": event.starts_on.isoformat(), "ends_on": event.ends_on.isoformat(),
        "boundary": [{"source": source.code, "category": source.category, "name": str(source.name),
                      "accounting_basis": str(source.basis), "included": plan.boundary[source.code]["included"],
                      "reason": plan.boundary[source.code]["reason"]} for source in SOURCES
                     if source.code in plan.boundary],
        "planned_tco2e": format_tonnes(plan.planned_units),
        "actual_tco2e": format_tonnes(plan.actual_units) if plan.actual_units is not None else None,
        "by_category": by_category,
        "by_source": [{"source": row.code, "category": category, "name": str(BY_CODE[row.code].name),
                       "accounting_basis": str(BY_CODE[row.code].basis),
                       "planned_tco2e": format_tonnes(row.planned) if row.planned is not None else None,
                       "actual_tco2e": format_tonnes(row.actual) if row.actual is not None else None,
                       "in_boundary": row.in_boundary}
                      for category, _planned, _actual in comparison.rows for row in comparison.sources_in(category)],
        "retired_tonnes": format_tonnes(cover.eligible_units),
        "coverage_percent": cover.percent_text,
        "deadline": plan.deadline.isoformat(),
        "offsetting_route": list(plan.offsetting_route),
        "evaluation": plan.evaluation,
        "overdue": plan.overdue_at is not None,
        "certificates": declarations.certificate_numbers(session, plan.event_id),
        "declaration": _declaration(session, plan),
    }
    if detail:
        data["reductions"] = [reduction_row(r) for r in reductions(session, plan.event_id)]
        rows = session.execute(sa.select(Certificate, Order.purpose, Order.event_id, Order.period_start,
                                         Order.period_end).join(Order, Order.id == Certificate.order_id)
                               .where(Order.id.in_(coverage_of.counted_orders(plan.event_id)))
                               .order_by(Certificate.number)).all()
        data["retirements"] = [public_retirements.row(*values) for values in rows]
    return data
