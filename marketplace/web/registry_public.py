"""The public registry: projects, batches with their serial blocks, and listings, for anyone."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request

from marketplace.extensions import db
from marketplace.models import CreditBatch, Listing, Project
from marketplace.services import ledger, registry

bp = Blueprint("registry", __name__, url_prefix="/registry")


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get("/")
def index():
    county_id, village_id, vintage = _int_arg("county"), _int_arg("village"), _int_arg("vintage")
    stmt = sa.select(Project).where(Project.status == "verified").order_by(Project.id)
    if village_id:
        stmt = stmt.where(Project.village_id == village_id)
    elif county_id:
        stmt = stmt.where(Project.village_id.in_(registry.village_ids_under(db.session, county_id)))
    if vintage:
        stmt = stmt.where(Project.id.in_(sa.select(CreditBatch.project_id).where(
            sa.extract("year", CreditBatch.vintage_end) == vintage)))
    projects = db.session.scalars(stmt).all()
    batches = db.session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id.in_([p.id for p in projects]))
                                 .order_by(CreditBatch.project_id, CreditBatch.vintage_start)).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    listings = db.session.execute(registry.public_listings_query(
        county_id=county_id, village_id=village_id, vintage=vintage, session=db.session)).all()
    vintages = sorted({y for (y,) in db.session.execute(
        sa.select(sa.extract("year", CreditBatch.vintage_end)).distinct())}, reverse=True)
    return render_template("public/registry.html", projects=projects, batches=batches, balances=balances,
                           listings=listings, counties=registry.counties(db.session),
                           villages=registry.villages(db.session), vintages=[int(v) for v in vintages],
                           selected={"county": county_id, "village": village_id, "vintage": vintage})


@bp.get("/projects/<int:project_id>")
def project(project_id: int):
    row = db.session.get(Project, project_id)
    if row is None or row.status != "verified":
        abort(404)
    batches = db.session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id == row.id)
                                 .order_by(CreditBatch.vintage_start)).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    listings = db.session.scalars(sa.select(Listing).where(Listing.batch_id.in_([b.id for b in batches]),
                                                           Listing.status != "withdrawn")).all()
    available = ledger.listings_available_units(db.session, [listing.id for listing in listings])
    return render_template("public/project.html", project=row, batches=batches, balances=balances,
                           listings=[(listing, available[listing.id],
                                      registry.listing_status(listing, available[listing.id])) for listing in listings])




@bp.get("/retirements")
def retirements():
    """The public retirement registry: who retired what, from which village, with which certificate."""
    from datetime import date

    from marketplace.services import retirements_registry

    def _date(name):
        try:
            return date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None

    filters = retirements_registry.Filters(
        beneficiary=request.args.get("beneficiary", "")[:100], buyer=request.args.get("buyer", "")[:100],
        project=request.args.get("project", "")[:100], village=request.args.get("village", "")[:100],
        date_from=_date("from"), date_to=_date("to"))
    page = _int_arg("page") or 1
    rows, total = retirements_registry.search(db.session, filters, page=page, per_page=20)
    return render_template("public/retirements.html", rows=rows, total=total, page=page, per_page=20,
                           filters=filters, args=request.args)
