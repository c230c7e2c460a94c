"""The public retirement registry: every completed retirement, searchable, each linking to its certificate.

The rows come from the certificates (their signed facts are what the public may see) joined to the
order for filtering by project, village and date.
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


def _like(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def query(filters: Filters) -> sa.Select:
    stmt = (sa.select(Certificate, Order.completed_at, Order.purpose)
            .join(Order, Order.id == Certificate.order_id)
            .join(Organisation, Organisation.id == Order.buyer_organisation_id)
            .where(Order.status == "completed"))
    if filters.beneficiary.strip():
        stmt = stmt.where(Certificate.beneficiary.ilike(_like(filters.beneficiary), escape="\\"))
    if filters.purpose:
        stmt = stmt.where(Order.purpose == filters.purpose)
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
    if not (within_calendar(filters.date_from) and within_calendar(filters.date_to)):
        return stmt.where(sa.false())  # no retirement lies beyond the calendar (and the arithmetic would overflow)
    if filters.date_from:
        stmt = stmt.where(Order.completed_at >= datetime.combine(filters.date_from, time.min, platform_zone()))
    if filters.date_to:
        stmt = stmt.where(Order.completed_at < datetime.combine(filters.date_to + timedelta(days=1), time.min, platform_zone()))
    return stmt.order_by(Order.completed_at.desc(), Certificate.id.desc())


def row(certificate: Certificate, purpose: str | None = None) -> dict:
    """A public row; ``purpose`` from the order for certificates signed before the facts carried it."""
    facts = json.loads(certificate.facts_json)
    return {
        "purpose": facts.get("purpose") or purpose,
        "certificate_number": certificate.number, "beneficiary": facts["beneficiary"],
        "buyer": facts["buyer"]["name"], "event": facts.get("event"), "quantity_tonnes": facts["quantity_tonnes"],
        "retirement_reason": facts["retirement_reason"],
        "projects": [p["name"] for p in facts["projects"]],
        "villages": [" › ".join(x for x in (p["county"], p["township"], p["village"]) if x) for p in facts["projects"]],
        "serial_ranges": [{"serial_block": b["serial_block"], "vintage": b.get("vintage"),
                           "first": start, "last": end - 1, "units": end - start}
                          for p in facts["projects"] for b in p["batches"] for start, end in b["ranges"]],
        "retired_at": facts["retired_at"], "revoked": certificate.revoked,
    }


def search(session: so.Session, filters: Filters, *, page: int = 1, per_page: int = 20) -> tuple[list[dict], int]:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    stmt = query(filters)
    # Counted without the order and the columns (a million certificates' facts are not sorted to be counted).
    total = session.scalar(stmt.with_only_columns(sa.func.count(), maintain_column_froms=True).order_by(None))
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return [row(certificate, purpose) for certificate, _completed, purpose in rows], total
