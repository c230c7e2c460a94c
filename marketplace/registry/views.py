"""The public registry: projects, batches with their serial blocks, and listings, for anyone."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.quantities import format_tonnes
from marketplace.core.web import public_read
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry import parcels as parcel_service
from marketplace.registry import service as registry
from marketplace.registry.models import (
    CREDIT_SCHEMES,
    PROJECT_SHOWN,
    CreditBatch,
    Listing,
    Project,
    ProjectDocument,
)

bp = Blueprint("registry", __name__, url_prefix="/registry")

#: Projects per page of the public registry (then "Next": ?after=<the last id shown>).
PROJECTS_PER_PAGE = 20
#: The cheapest listings shown on the registry's first page.
LISTINGS_SHOWN = 20


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


@bp.get("/")
@public_read("registry")
def index():
    county_id, village_id, vintage = _int_arg("county"), _int_arg("village"), _int_arg("vintage")
    scheme = request.args.get("scheme") if request.args.get("scheme") in CREDIT_SCHEMES else None
    event_eligible = True if request.args.get("event_eligible") == "1" else None
    stmt = (sa.select(Project).where(Project.status == "verified").order_by(Project.id)
            .options(*PROJECT_SHOWN))
    if village_id:
        stmt = stmt.where(Project.village_id == village_id)
    elif county_id:
        stmt = stmt.where(Project.village_id.in_(registry.village_ids_under(db.session, county_id)))
    if vintage:
        stmt = stmt.where(Project.id.in_(sa.select(CreditBatch.project_id).where(
            sa.extract("year", CreditBatch.vintage_end) == vintage)))
    if scheme or event_eligible:
        stmt = stmt.where(Project.id.in_(registry.label_filters(
            sa.select(CreditBatch.project_id), scheme=scheme, event_eligible=event_eligible)))
    # One page of projects (keyset on the id: ?after=<last id shown>), and the batches of those.
    after = _int_arg("after")
    page = db.session.scalars((stmt.where(Project.id > after) if after else stmt).limit(PROJECTS_PER_PAGE + 1)).all()
    projects, more = page[:PROJECTS_PER_PAGE], len(page) > PROJECTS_PER_PAGE
    batches = db.session.scalars(registry.label_filters(
        sa.select(CreditBatch).where(CreditBatch.project_id.in_([p.id for p in projects])),
        scheme=scheme, event_eligible=event_eligible)
        .order_by(CreditBatch.project_id, CreditBatch.vintage_start)).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    # The cheapest listings of the selection (each project's page lists all of its own).
    listings = db.session.execute(registry.public_listings_query(
        county_id=county_id, village_id=village_id, vintage=vintage, session=db.session, scheme=scheme,
        event_eligible=event_eligible, places=True).limit(LISTINGS_SHOWN)).all()
    vintages = sorted({y for (y,) in db.session.execute(
        sa.select(sa.extract("year", CreditBatch.vintage_end)).distinct())}, reverse=True)
    counties = registry.counties(db.session)
    # The map's counties sum every project of the selection (in SQL); its points are this page's projects.
    county_figures = parcel_service.county_figures(
        db.session, stmt.with_only_columns(Project.id).order_by(None), counties, scheme=scheme,
        event_eligible=event_eligible)
    points = parcel_service.project_points(db.session, projects, batches, balances)
    county_map = json.dumps({
        "label": _("Unsold (t)"), "points_label": _("Unsold (t)"), "unit": "t",
        "counties": [{"name": f.county.name, "value": format_tonnes(f.available_units)} for f in county_figures],
        "points": [{"name": p.name, "lonlat": list(centre), "value": format_tonnes(units),
                    "url": url_for("registry.project", project_id=p.id)} for p, centre, units in points],
    }, ensure_ascii=False)
    return render_template("registry/index.html", projects=projects, batches=batches, balances=balances,
                           county_figures=county_figures, registry_map_json=county_map,
                           listings=listings, counties=counties,
                           villages=registry.villages(db.session), vintages=[int(v) for v in vintages],
                           schemes=CREDIT_SCHEMES,
                           next_after=projects[-1].id if more and projects else None,
                           first_page=bool(after), listings_shown=LISTINGS_SHOWN,
                           selected={"county": county_id, "village": village_id, "vintage": vintage,
                                     "scheme": scheme, "event_eligible": event_eligible})


@bp.get("/projects/<int:project_id>")
def project(project_id: int):
    row = db.session.get(Project, project_id, options=PROJECT_SHOWN)
    if row is None or row.status != "verified":
        abort(404)
    batches = db.session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id == row.id)
                                 .order_by(CreditBatch.vintage_start)).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    listings = db.session.scalars(sa.select(Listing).where(Listing.batch_id.in_([b.id for b in batches]),
                                                           Listing.status != "withdrawn")).all()
    available = ledger.listings_available_units(db.session, [listing.id for listing in listings])
    return render_template("registry/project.html", project=row, batches=batches, balances=balances,
                           parcel_collection=parcel_service.project_feature_collection(db.session, row),
                           listings=[(listing, available[listing.id],
                                      registry.listing_status(listing, available[listing.id])) for listing in listings])


def send_project_document(document_id: int):
    """A project document as a PDF download, if the signed-in user may see it (else 404)."""
    row = get_scoped(db.session, ProjectDocument, document_id, current_user)
    return send_file(registry.document_path(row), mimetype="application/pdf", as_attachment=True,
                     download_name=registry.safe_display_name(row.original_name))  # names stored before CR/LF were refused too
