"""The public retirement registry: every completed retirement, searchable, each linking to its certificate.

The rows come from the certificates (their signed facts are what the public may see) joined to the
order for filtering by project, village, date, purpose, event and the period covered. A certificate signed
before its facts carried the purpose, the event's id or the period shows the order's (``attribution``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.accounts.models import Organisation
from marketplace.certificates.models import Certificate
from marketplace.core.dates import within_calendar
from marketplace.core.i18n import platform_zone
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import CreditBatch, Listing, Project, Region

MAX_PER_PAGE = 100


@dataclass
class Filters:
    beneficiary: str = ""
    buyer: str = ""
    project: str = ""
    village: str = ""
    date_from: date | None = None
    date_to: date | None = None
    #: orders.models.RETIREMENT_PURPOSES, or "" for all
    purpose: str = ""
    #: retirements whose period covers at least one day of [period_from, period_to] (either may be open)
    period_from: date | None = None
    period_to: date | None = None
    #: retirements for this event
    event_id: int | None = None


def _like(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def query(filters: Filters) -> sa.Select:
    stmt = (sa.select(Certificate, Order.completed_at, Order.purpose, Order.event_id, Order.period_start,
                      Order.period_end)
            .join(Order, Order.id == Certificate.order_id)
            .join(Organisation, Organisation.id == Order.buyer_organisation_id)
            .where(Order.status == "completed"))
    if filters.beneficiary.strip():
        stmt = stmt.where(Certificate.beneficiary.ilike(_like(filters.beneficiary), escape="\\"))
    if filters.purpose:
        stmt = stmt.where(Order.purpose == filters.purpose)
    if filters.event_id is not None:
        stmt = stmt.where(Order.event_id == filters.event_id)
    if filters.period_from or filters.period_to:
        # Overlap of two closed ranges: it starts by the filter's end and ends on or after its start.
        stmt = stmt.where(Order.period_start.is_not(None))
        if filters.period_to:
            stmt = stmt.where(Order.period_start <= filters.period_to)
        if filters.period_from:
            stmt = stmt.where(Order.period_end >= filters.period_from)
    if filters.buyer.strip():
        stmt = stmt.where(Organisation.name.ilike(_like(filters.buyer), escape="\\"))
    if filters.project.strip() or filters.village.strip():
        lines = (sa.select(OrderLine.id).join(Listing, Listing.id == OrderLine.listing_id)
                 .join(CreditBatch, CreditBatch.id == Listing.batch_id).join(Project, Project.id == CreditBatch.project_id)
                 .join(Region, Region.id == Project.village_id).where(OrderLine.order_id == Order.id))
        if filters.project.strip():
            lines = lines.where(Project.name.ilike(_like(filters.project), escape="\\"))
        if filters.village.strip():
            lines = lines.where(Region.name.ilike(_like(filters.village), escape="\\"))
        stmt = stmt.where(lines.exists())
    if not all(within_calendar(day) for day in (filters.date_from, filters.date_to, filters.period_from,
                                                  filters.period_to)):
        return stmt.where(sa.false())  # no retirement lies beyond the calendar (and the arithmetic would overflow)
    if filters.date_from:
        stmt = stmt.where(Order.completed_at >= datetime.combine(filters.date_from, time.min, platform_zone()))
    if filters.date_to:
        stmt = stmt.where(Order.completed_at < datetime.combine(filters.date_to + timedelta(days=1), time.min, platform_zone()))
    return stmt.order_by(Order.completed_at.desc(), Certificate.id.desc())


def attribution(facts: dict, *, purpose: str | None = None, event_id: int | None = None,
                period_start: date | None = None, period_end: date | None = None) -> dict:
    """What the retirement is for, for which event and which days: the signed facts, or for a certificate
    signed before they carried a fact, the order's value (given here)."""
    period = facts.get("period") if isinstance(facts.get("period"), dict) else None
    if period is None and period_start and period_end:
        period = {"start": period_start.isoformat(), "end": period_end.isoformat()}
    signed_id = facts.get("event_id")
    return {
        "purpose": facts.get("purpose") or purpose,
        "event": facts.get("event"),
        "event_id": signed_id if signed_id is not None else (event_id if facts.get("event") else None),
        "period_start": period["start"] if period else None, "period_end": period["end"] if period else None,
    }


def row(certificate: Certificate, purpose: str | None = None, event_id: int | None = None,
        period_start: date | None = None, period_end: date | None = None) -> dict:
    """A public row; the order's purpose, event id and period for certificates signed before the facts
    carried them (``attribution``)."""
    facts = json.loads(certificate.facts_json)
    return {
        **attribution(facts, purpose=purpose, event_id=event_id, period_start=period_start, period_end=period_end),
        "certificate_number": certificate.number, "beneficiary": facts["beneficiary"],
        "buyer": facts["buyer"]["name"], "quantity_tonnes": facts["quantity_tonnes"],
        "retirement_reason": facts["retirement_reason"],
        "projects": [p["name"] for p in facts["projects"]],
        "villages": [" › ".join(x for x in (p["county"], p["township"], p["village"]) if x) for p in facts["projects"]],
        "serial_ranges": [{"serial_block": b["serial_block"], "vintage": b.get("vintage"),
                           "first": start, "last": end - 1, "units": end - start}
                          for p in facts["projects"] for b in p["batches"] for start, end in b["ranges"]],
        "retired_at": facts["retired_at"], "revoked": certificate.revoked,
    }


def certificate_attribution(session: so.Session, certificate: Certificate) -> dict:
    """``attribution`` of one certificate, with its order's values as the fallback."""
    values = session.execute(sa.select(Order.purpose, Order.event_id, Order.period_start, Order.period_end)
                             .where(Order.id == certificate.order_id)).one_or_none()
    purpose, event_id, period_start, period_end = values or (None, None, None, None)
    return attribution(json.loads(certificate.facts_json), purpose=purpose, event_id=event_id,
                       period_start=period_start, period_end=period_end)


def search(session: so.Session, filters: Filters, *, page: int = 1, per_page: int = 20) -> tuple[list[dict], int]:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    stmt = query(filters)
    # Counted without the order and the columns (a million certificates' facts are not sorted to be counted).
    total = session.scalar(stmt.with_only_columns(sa.func.count(), maintain_column_froms=True).order_by(None))
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return [row(certificate, purpose, event_id, period_start, period_end)
            for certificate, _completed, purpose, event_id, period_start, period_end in rows], total
