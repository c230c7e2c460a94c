"""Registry API: public listings and projects; projects, review, issuance and listings for their owners."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import request, url_for
from flask_babel import lazy_gettext as _l

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.core import api_idempotency as idempotency
from marketplace.core.access import get_scoped
from marketplace.core.api import Blueprint
from marketplace.core.api_fields import Id, Year
from marketplace.core.db import reload
from marketplace.core.errors import NotFound
from marketplace.core.quantities import format_cny, format_tonnes, parse_cny, parse_tonnes
from marketplace.core.web import public_read
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry import service as registry
from marketplace.registry.models import (
    CREDIT_SCHEMES,
    LISTING_SHOWN,
    PROJECT_SHOWN,
    CreditBatch,
    Listing,
    Project,
)

blp = Blueprint("api_registry", __name__, url_prefix="/api/v1", description="Credit registry and listings")


# --- representations ----------------------------------------------------------------------------

def region_names(project: Project) -> dict:
    path = {r.level: r for r in project.village.path()}
    return {level: (path[level].name if level in path else None) for level in ("county", "township", "village")}


def batch_json(batch: CreditBatch, summary: dict[str, int] | None = None) -> dict:
    """A batch; with ``summary`` (ledger.batch_summaries) its folded balances too."""
    data = {
        "id": batch.id, "project_id": batch.project_id,
        "vintage_start": batch.vintage_start.isoformat(), "vintage_end": batch.vintage_end.isoformat(),
        "quantity_tonnes": format_tonnes(batch.quantity_units), "buffer_tonnes": format_tonnes(batch.buffer_units),
        "serial_block": batch.serial_block(), "serial_start": batch.serial_start, "serial_end": batch.serial_end,
        "verification_body": batch.verification_body, "report_reference": batch.report_reference,
        "issued_at": batch.issued_at.isoformat(), **batch_labels(batch),
    }
    if summary is not None:
        data["balances"] = {f"{k}_tonnes": format_tonnes(v) for k, v in summary.items()}
    return data


def batch_labels(batch: CreditBatch) -> dict:
    """The labels the bureau set at issuance (the monitoring period is the batch's vintage)."""
    return {"scheme": batch.scheme, "methodology_code": batch.methodology_code,
            "methodology_version": batch.methodology_version,
            "monitoring_period_start": batch.vintage_start.isoformat(),
            "monitoring_period_end": batch.vintage_end.isoformat(), "event_eligible": batch.event_eligible}


def listing_json(listing: Listing, available_units: int) -> dict:
    batch, project = listing.batch, listing.batch.project
    return {
        "id": listing.id, "status": registry.listing_status(listing, available_units),
        "batch_id": batch.id, "project_id": project.id, "project": project.name, **region_names(project),
        "vintage": batch.vintage_end.year, "available_tonnes": format_tonnes(available_units),
        "price_cny_per_tonne": format_cny(listing.price_cny_per_tonne),
        "min_order_tonnes": format_tonnes(listing.min_order_units), "seller": project.seller.name,
        **batch_labels(batch),
    }


def project_json(session, project: Project, *, with_batches: bool = True) -> dict:
    data = {
        "id": project.id, "code": project.code, "name": project.name, "name_en": project.name_en,
        "status": project.status, "seller": project.seller.name, **region_names(project),
        "area_hectares": str(project.area_hectares), "forest_type": project.forest_type,
        "methodology": project.methodology, "crediting_start": project.crediting_start.isoformat(),
        "crediting_end": project.crediting_end.isoformat(), "description": project.description,
        "location": project.location, "review_note": project.review_note,
    }
    if with_batches:
        data["batches"] = [batch_json(b, s) for b, s in batches_with_summaries(session, [project.id])[project.id]]
    return data


def batches_with_summaries(session, project_ids) -> dict[int, list]:
    """project id → [(batch, summary)], in two queries whatever the number of projects."""
    batches = session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id.in_(project_ids))
                              .order_by(CreditBatch.vintage_start)).all()
    summaries = ledger.batch_summaries(session, [b.id for b in batches])
    grouped = {project_id: [] for project_id in project_ids}
    for batch in batches:
        grouped[batch.project_id].append((batch, summaries[batch.id]))
    return grouped


# --- schemas (documentation and input validation) ------------------------------------------------

SCHEME_FIELD = {"description": "zhejiang_forestry (浙林碳汇) | lishui_inclusive (丽水碳普惠) | ccer | other"}


class LabelsOut(ma.Schema):
    """A batch's labels, set by the bureau at issuance."""

    scheme = ma.fields.String(metadata=SCHEME_FIELD)
    methodology_code = ma.fields.String(metadata={"example": "CCER-14-001"})
    methodology_version = ma.fields.String(metadata={"example": "V01"})
    monitoring_period_start = ma.fields.String()
    monitoring_period_end = ma.fields.String()
    event_eligible = ma.fields.Boolean(metadata={"description": "may count towards a large-event neutralisation"})


#: Listings per answer by default, and at most (then the Link header's rel="next" cursor).
LISTINGS_PAGE, LISTINGS_PAGE_MAX = 100, 500


class ListingQuery(ma.Schema):
    county = Id(metadata={"description": "region id of a county"})
    village = Id(metadata={"description": "region id of a village"})
    vintage = Year(metadata={"description": "vintage year"})
    scheme = ma.fields.String(validate=ma.validate.OneOf(CREDIT_SCHEMES), metadata=SCHEME_FIELD)
    event_eligible = ma.fields.Boolean(metadata={"description": "true: only batches eligible for large events"})
    limit = ma.fields.Integer(load_default=LISTINGS_PAGE, validate=ma.validate.Range(min=1, max=LISTINGS_PAGE_MAX),
                              metadata={"description": f"at most this many (default {LISTINGS_PAGE})"})
    after = ma.fields.String(validate=ma.validate.Regexp(r"^\d{1,12}(\.\d{1,2})?_\d{1,12}$"),
                             metadata={"description": "the cursor of the page before (its Link: rel=next header)",
                                       "example": "36.00_17"})


class ListingOut(LabelsOut):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "active | paused | sold_out | withdrawn"})
    batch_id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    project = ma.fields.String()
    county = ma.fields.String()
    township = ma.fields.String()
    village = ma.fields.String()
    vintage = ma.fields.Integer()
    available_tonnes = ma.fields.String(metadata={"example": "1500.0000"})
    price_cny_per_tonne = ma.fields.String(metadata={"example": "36.00"})
    min_order_tonnes = ma.fields.String()
    seller = ma.fields.String()


class BalancesOut(ma.Schema):
    available_tonnes = ma.fields.String()
    listed_tonnes = ma.fields.String()
    reserved_tonnes = ma.fields.String()
    buffer_tonnes = ma.fields.String()
    retired_tonnes = ma.fields.String()
    cancelled_tonnes = ma.fields.String()


class BatchOut(LabelsOut):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    vintage_start = ma.fields.String()
    vintage_end = ma.fields.String()
    quantity_tonnes = ma.fields.String()
    buffer_tonnes = ma.fields.String()
    serial_block = ma.fields.String(metadata={"example": "TH-P00001-2023-000000000001…000020000000"})
    serial_start = ma.fields.Integer()
    serial_end = ma.fields.Integer(metadata={"description": "exclusive"})
    verification_body = ma.fields.String()
    report_reference = ma.fields.String()
    issued_at = ma.fields.String()
    balances = ma.fields.Nested(BalancesOut)


class ProjectOut(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    name_en = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"description": "draft | submitted | verified | rejected"})
    seller = ma.fields.String()
    county = ma.fields.String()
    township = ma.fields.String()
    village = ma.fields.String()
    area_hectares = ma.fields.String()
    forest_type = ma.fields.String()
    methodology = ma.fields.String()
    crediting_start = ma.fields.String()
    crediting_end = ma.fields.String()
    description = ma.fields.String()
    location = ma.fields.String()
    review_note = ma.fields.String()
    batches = ma.fields.List(ma.fields.Nested(BatchOut))


class ProjectIn(ma.Schema):
    village_id = Id(required=True)
    name = ma.fields.String(required=True)
    name_en = ma.fields.String()
    area_hectares = ma.fields.String(required=True, metadata={"example": "1436.80"})
    forest_type = ma.fields.String(required=True)
    methodology = ma.fields.String(required=True, metadata={"example": "CCER-14-001-V01"})
    crediting_start = ma.fields.Date(required=True)
    crediting_end = ma.fields.Date(required=True)
    description = ma.fields.String()
    location = ma.fields.String()


class ReviewIn(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(["verified", "rejected"]))
    note = ma.fields.String(load_default="")


class BatchIn(ma.Schema):
    quantity_tonnes = ma.fields.String(required=True, metadata={"example": "2000"})
    vintage_start = ma.fields.Date(required=True, metadata={"description": "the monitoring period's first day"})
    vintage_end = ma.fields.Date(required=True, metadata={"description": "the monitoring period's last day"})
    verification_body = ma.fields.String(required=True)
    report_reference = ma.fields.String(required=True)
    scheme = ma.fields.String(load_default="other", validate=ma.validate.OneOf(CREDIT_SCHEMES), metadata=SCHEME_FIELD)
    methodology_code = ma.fields.String(load_default="", metadata={"example": "CCER-14-001"})
    methodology_version = ma.fields.String(load_default="", metadata={"example": "V01"})
    event_eligible = ma.fields.Boolean(load_default=False)


class ListingIn(ma.Schema):
    batch_id = Id(required=True)
    quantity_tonnes = ma.fields.String(required=True)
    price_cny_per_tonne = ma.fields.String(required=True, metadata={"example": "36.00"})
    min_order_tonnes = ma.fields.String(load_default="0.0001")


# --- public -------------------------------------------------------------------------------------

@blp.route("/listings")
@public_read("registry", anonymous_only=False)
@blp.arguments(ListingQuery, location="query")
@blp.response(200, ListingOut(many=True))
def listings(args):
    """Active listings with units left, cheapest first. Filters: county, village, vintage, scheme, event_eligible.
    At most ``limit`` (100 by default); when there are more, the ``Link`` header's ``rel="next"`` URL carries
    the cursor (``after``) of the next page."""
    stmt = registry.public_listings_query(
        county_id=args.get("county"), village_id=args.get("village"), vintage=args.get("vintage"),
        session=db.session, places=True, scheme=args.get("scheme"), event_eligible=args.get("event_eligible"))
    if args.get("after"):
        price, listing_id = args["after"].split("_")
        stmt = stmt.where(sa.tuple_(Listing.price_cny_per_tonne, Listing.id) > sa.tuple_(
            sa.literal(Decimal(price), sa.Numeric(12, 2)), sa.literal(int(listing_id))))
    rows = db.session.execute(stmt.limit(args["limit"] + 1)).all()
    page, more = rows[:args["limit"]], len(rows) > args["limit"]
    headers = {}
    if more:
        last = page[-1][0]
        query = {k: v for k, v in request.args.items() if k != "after"}
        query["after"] = f"{format_cny(last.price_cny_per_tonne)}_{last.id}"
        headers["Link"] = f'<{url_for("api_registry.listings", **query)}>; rel="next"'
    return [listing_json(listing, units) for listing, units in page], 200, headers


def _public_project(project_id: int) -> Project:
    project = db.session.get(Project, project_id, options=PROJECT_SHOWN)
    if project is None or project.status != "verified":
        raise NotFound(_l("Not found."))
    return project


@blp.route("/projects")
@blp.response(200, ProjectOut(many=True))
def projects():
    """Verified projects of the registry (with batches, serial blocks and balances)."""
    rows = db.session.scalars(sa.select(Project).where(Project.status == "verified").order_by(Project.id)
                              .options(*PROJECT_SHOWN)).all()
    grouped = batches_with_summaries(db.session, [p.id for p in rows])
    return [{**project_json(db.session, p, with_batches=False),
             "batches": [batch_json(b, s) for b, s in grouped[p.id]]} for p in rows]


@blp.route("/projects/<int:project_id>")
@blp.response(200, ProjectOut)
def project(project_id: int):
    """One verified project."""
    return project_json(db.session, _public_project(project_id))


@blp.route("/batches/<int:batch_id>")
@blp.response(200, BatchOut)
def batch(batch_id: int):
    """One credit batch of a verified project, with its serial block and ledger balances."""
    row = db.session.get(CreditBatch, batch_id, options=[so.joinedload(CreditBatch.project)])
    if row is None or row.project.status != "verified":
        raise NotFound(_l("Not found."))
    return batch_json(row, ledger.batch_summaries(db.session, [row.id])[row.id])


# --- sellers ------------------------------------------------------------------------------------

@blp.route("/projects", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@token_required("seller")
@blp.arguments(ProjectIn)
@blp.response(201, ProjectOut)
@blp.alt_response(200, schema=ProjectOut, description="the project an earlier request with this key created")
def create_project(data):
    """Register a project (draft). Documents are uploaded on the project's page."""
    project, status = idempotency.create_once(
        Project, data, lambda: registry.create_project(db.session, actor=api_user(), **data))
    return project_json(db.session, reload(db.session, project, *PROJECT_SHOWN)), status


@blp.route("/projects/<int:project_id>/submit", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(200, ProjectOut)
@token_required("seller")
def submit_project(project_id: int):
    """Send a draft (or rejected) project to the bureau for review."""
    row = get_scoped(db.session, Project, project_id, api_user())
    registry.transition_project(db.session, row, "submitted", actor=api_user())
    db.session.commit()
    return project_json(db.session, reload(db.session, row, *PROJECT_SHOWN))


@blp.route("/listings", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@token_required("seller")
@blp.arguments(ListingIn)
@blp.response(201, ListingOut)
@blp.alt_response(200, schema=ListingOut, description="the listing an earlier request with this key created")
def create_listing(data):
    """List part of one of your batches' available units."""
    row = get_scoped(db.session, CreditBatch, data["batch_id"], api_user(), options=[so.joinedload(CreditBatch.project)])
    listing, status = idempotency.create_once(Listing, data, lambda: registry.create_listing(
        db.session, row, actor=api_user(), units=parse_tonnes(data["quantity_tonnes"], "quantity_tonnes"),
        price_cny_per_tonne=parse_cny(data["price_cny_per_tonne"], "price_cny_per_tonne"),
        min_order_units=parse_tonnes(data["min_order_tonnes"], "min_order_tonnes")))
    listing = reload(db.session, listing, LISTING_SHOWN)
    return listing_json(listing, ledger.listing_available_units(db.session, listing.id)), status


@blp.route("/listings/<int:listing_id>/<action>", methods=["POST"])
@blp.doc(security=BEARER, parameters=[{"name": "action", "in": "path", "required": True,
                                       "schema": {"type": "string", "enum": ["pause", "resume", "withdraw"]}}])
@blp.response(200, ListingOut)
@token_required("seller")
def change_listing(listing_id: int, action: str):
    """Pause, resume or withdraw one of your listings."""
    row = get_scoped(db.session, Listing, listing_id, api_user(), bureau_sees_all=False)
    if action not in registry.LISTING_TRANSITIONS:
        raise NotFound(_l("Not found."))
    registry.change_listing(db.session, row, action, actor=api_user())
    db.session.commit()
    return listing_json(reload(db.session, row, LISTING_SHOWN), ledger.listing_available_units(db.session, row.id))


# --- bureau -------------------------------------------------------------------------------------

@blp.route("/projects/<int:project_id>/review", methods=["POST"])
@blp.doc(security=BEARER)
@token_required("bureau")
@blp.arguments(ReviewIn)
@blp.response(200, ProjectOut)
def review_project(data, project_id: int):
    """Verify or reject a submitted project (a rejection needs a note)."""
    row = get_scoped(db.session, Project, project_id, api_user())
    registry.transition_project(db.session, row, data["decision"], actor=api_user(), note=data["note"])
    db.session.commit()
    return project_json(db.session, reload(db.session, row, *PROJECT_SHOWN))


@blp.route("/projects/<int:project_id>/batches", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@token_required("bureau")
@blp.arguments(BatchIn)
@blp.response(201, BatchOut)
@blp.alt_response(200, schema=BatchOut, description="the batch an earlier request with this key issued")
def issue_batch(data, project_id: int):
    """Issue a credit batch for a verified project; the buffer share goes to the buffer pool."""
    row = get_scoped(db.session, Project, project_id, api_user())
    batch, status = idempotency.create_once(CreditBatch, {**data, "project_id": project_id}, lambda: registry.issue_batch(
        db.session, row, actor=api_user(), quantity_units=parse_tonnes(data["quantity_tonnes"], "quantity_tonnes"),
        vintage_start=data["vintage_start"], vintage_end=data["vintage_end"],
        verification_body=data["verification_body"], report_reference=data["report_reference"],
        scheme=data["scheme"], methodology_code=data["methodology_code"],
        methodology_version=data["methodology_version"], event_eligible=data["event_eligible"]))
    return batch_json(batch, ledger.batch_summaries(db.session, [batch.id])[batch.id]), status
