"""Public API of neutralised events: ``GET /api/v1/public/events`` and ``/api/v1/public/events/<id>``."""

from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from marketplace.core.api import Blueprint
from marketplace.core.api_fields import Id, Year
from marketplace.core.errors import NotFound
from marketplace.extensions import db
from marketplace.neutrality import disclosure

blp = Blueprint("api_public_events", __name__, url_prefix="/api/v1/public",
                description="Published events and their carbon neutrality")


class EventQuery(ma.Schema):
    year = Year(metadata={"description": "the year the event starts"})
    organiser = ma.fields.String(load_default="", validate=ma.validate.Length(max=100))
    county = Id(metadata={"description": "region id of a county: events offset with its villages' credits"})


class BoundarySourceOut(ma.Schema):
    source = ma.fields.String(metadata={"example": "venue_electricity"})
    category = ma.fields.String(metadata={"description": "transport | catering | accommodation | venue | materials "
                                                         "| waste"})
    name = ma.fields.String()
    accounting_basis = ma.fields.String()
    included = ma.fields.Boolean()
    reason = ma.fields.String(metadata={"description": "why a source is left out"})


class CategoryOut(ma.Schema):
    planned_tco2e = ma.fields.String()
    actual_tco2e = ma.fields.String(allow_none=True)


class SourceOut(ma.Schema):
    source = ma.fields.String(metadata={"example": "venue_electricity"})
    category = ma.fields.String()
    name = ma.fields.String()
    accounting_basis = ma.fields.String()
    planned_tco2e = ma.fields.String(allow_none=True, metadata={
        "description": "null for a plan made before sources were recorded on activity lines"})
    actual_tco2e = ma.fields.String(allow_none=True)
    in_boundary = ma.fields.Boolean(metadata={"description": "false: emissions of a source the plan left out"})


class EvidenceOut(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    content_type = ma.fields.String(metadata={"example": "application/pdf"})
    size_bytes = ma.fields.Integer()
    uploaded_at = ma.fields.String()
    download = ma.fields.String(metadata={"description": "path of the document, public once the plan is"})


class DeclarationOut(ma.Schema):
    number = ma.fields.String(metadata={"example": "THN-2026-000001"})
    kind = ma.fields.String(metadata={"description": "self | evaluation"})
    valid = ma.fields.Boolean()
    conclusion = ma.fields.String(allow_none=True, metadata={"description": "evaluation: conforms | "
                                                                             "does_not_conform"})
    issued_at = ma.fields.String()
    others = ma.fields.List(ma.fields.String(), metadata={"description": "the other record's number, if both exist"})


class ReductionOut(ma.Schema):
    id = ma.fields.Integer()
    category = ma.fields.String()
    description = ma.fields.String()
    estimated_tco2e = ma.fields.String(allow_none=True)
    achieved_tco2e = ma.fields.String(allow_none=True, metadata={"description": "recorded after the event"})
    evidence = ma.fields.List(ma.fields.Nested(EvidenceOut))


class RetiredOut(ma.Schema):
    certificate_number = ma.fields.String()
    beneficiary = ma.fields.String()
    purpose = ma.fields.String(allow_none=True)
    period_start = ma.fields.String(allow_none=True, metadata={"format": "date"})
    period_end = ma.fields.String(allow_none=True, metadata={"format": "date"})
    quantity_tonnes = ma.fields.String()
    projects = ma.fields.List(ma.fields.String())
    villages = ma.fields.List(ma.fields.String())
    serial_ranges = ma.fields.List(ma.fields.Dict())
    retired_at = ma.fields.String()
    revoked = ma.fields.Boolean()


class PublicEventOut(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "the event's id"})
    name = ma.fields.String()
    organiser = ma.fields.String()
    location = ma.fields.String()
    starts_on = ma.fields.String()
    ends_on = ma.fields.String()
    boundary = ma.fields.List(ma.fields.Nested(BoundarySourceOut))
    planned_tco2e = ma.fields.String(metadata={"example": "180.0000"})
    actual_tco2e = ma.fields.String(allow_none=True, metadata={"example": "175.4020"})
    by_category = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CategoryOut))
    by_source = ma.fields.List(ma.fields.Nested(SourceOut), metadata={
        "description": "under the categories, the guideline's sources with emissions in either version"})
    retired_tonnes = ma.fields.String(metadata={"description": "eligible units retired for the event"})
    coverage_percent = ma.fields.String(allow_none=True, metadata={
        "example": "100.00", "description": "eligible retired / actual footprint, cut (never rounded up) to 0.01"})
    deadline = ma.fields.String()
    offsetting_route = ma.fields.List(ma.fields.String())
    evaluation = ma.fields.String(metadata={"description": "self | third_party"})
    overdue = ma.fields.Boolean()
    certificates = ma.fields.List(ma.fields.String())
    declaration = ma.fields.Nested(DeclarationOut, allow_none=True)


class PublicEventDetailOut(PublicEventOut):
    reductions = ma.fields.List(ma.fields.Nested(ReductionOut))
    retirements = ma.fields.List(ma.fields.Nested(RetiredOut))


@blp.route("/events")
@blp.arguments(EventQuery, location="query")
@blp.response(200, PublicEventOut(many=True))
def events(args):
    """Published events, newest first. Filters: year, organiser, county of the credits."""
    filters = disclosure.Filters(year=args.get("year"), organiser=args["organiser"], county_id=args.get("county"))
    return [disclosure.summary(db.session, plan) for plan in disclosure.published(db.session, filters)]


@blp.route("/events/<int:event_id>")
@blp.response(200, PublicEventDetailOut)
def event(event_id: int):
    """One published event: plan summary, boundary, footprint, reductions, credits retired, coverage, declaration."""
    plan = disclosure.published_plan(db.session, event_id)
    if plan is None:
        raise NotFound(_l("Not found."))
    return disclosure.summary(db.session, plan, detail=True)
