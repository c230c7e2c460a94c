"""Emission factors and event footprints."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.core import api_idempotency as idempotency
from marketplace.core.api import Blueprint
from marketplace.core.db import max_length
from marketplace.core.i18n import current_language
from marketplace.core.quantities import format_tonnes
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.emission_factors import current_factors
from marketplace.footprint.models import CATEGORIES, ActivityLine, Event
from marketplace.footprint.sources import BY_CODE, SOURCE_CODES, source_basis, source_name

blp = Blueprint("api_footprint", __name__, url_prefix="/api/v1",
                description="Emission factors and event carbon footprints")


class EmissionFactorSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "venue.grid_east_2023"})
    version = ma.fields.Integer()
    category = ma.fields.String(metadata={"enum": list(CATEGORIES)})
    name = ma.fields.String(metadata={"description": "in the caller's language (zh_CN default, ?lang=en)"})
    name_zh = ma.fields.String()
    name_en = ma.fields.String()
    unit = ma.fields.String(metadata={"example": "kWh"})
    kgco2e_per_unit = ma.fields.String(metadata={"description": "decimal string", "example": "0.55"})
    source = ma.fields.String()
    year = ma.fields.Integer()


class ActivitySchema(ma.Schema):
    category = ma.fields.String(required=True, metadata={"enum": list(CATEGORIES)})
    factor_code = ma.fields.String(required=True, metadata={"example": "venue.grid_east_2023"})
    quantity = ma.fields.Raw(required=True, metadata={
        "type": "string", "example": "34856.9",
        "description": "activity data in the factor's unit: decimal string, at most 4 places"})
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=max_length(ActivityLine.description)))
    source = ma.fields.Raw(load_default="", metadata={
        "type": "string", "enum": list(SOURCE_CODES), "example": "venue_electricity",
        "description": "the guideline's emission source under the category; left out: the one the factor code "
                       "names (transport.hsr → rail_travel), else the category's first"})


class EventCreateSchema(ma.Schema):
    name = ma.fields.String(required=True)
    starts_on = ma.fields.String(required=True, metadata={"format": "date", "example": "2026-10-30"})
    ends_on = ma.fields.String(required=True, metadata={"format": "date", "example": "2026-11-01"})
    location = ma.fields.String(required=True)
    attendees = ma.fields.Integer(load_default=None, allow_none=True)
    organiser = ma.fields.String(load_default="")
    boundary = ma.fields.String(load_default="")
    activities = ma.fields.List(ma.fields.Nested(ActivitySchema), required=True,
                                validate=ma.validate.Length(max=2000))


class LineSchema(ma.Schema):
    id = ma.fields.Integer()
    category = ma.fields.String()
    source = ma.fields.String(metadata={"example": "venue_electricity"})
    factor_code = ma.fields.String()
    factor_version = ma.fields.Integer()
    kgco2e_per_unit = ma.fields.String()
    unit = ma.fields.String()
    quantity = ma.fields.String()
    description = ma.fields.String()
    tco2e = ma.fields.String(metadata={"example": "19.1713"})


class SourceTotalSchema(ma.Schema):
    source = ma.fields.String(metadata={"example": "venue_electricity"})
    category = ma.fields.String(metadata={"enum": list(CATEGORIES)})
    name = ma.fields.String(metadata={"description": "in the caller's language"})
    accounting_basis = ma.fields.String()
    tco2e = ma.fields.String(metadata={"example": "19.1713"})


class EventSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    starts_on = ma.fields.String()
    ends_on = ma.fields.String()
    location = ma.fields.String()
    attendees = ma.fields.Integer(allow_none=True)
    organiser = ma.fields.String()
    total_tco2e = ma.fields.String(metadata={"example": "175.4020"})
    by_category = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(),
                                 metadata={"example": {"transport": "95.2224", "venue": "19.1713"}})
    by_source = ma.fields.List(ma.fields.Nested(SourceTotalSchema), metadata={
        "description": "the footprint under each category by the guideline's sources that have lines, in its order"})
    lines = ma.fields.List(ma.fields.Nested(LineSchema))


def _factor_row(factor, language: str) -> dict:
    return {"code": factor.code, "version": factor.version, "category": factor.category,
            "name": factor.name(language), "name_zh": factor.name_zh, "name_en": factor.name_en,
            "unit": factor.unit, "kgco2e_per_unit": format(factor.kgco2e_per_unit.normalize(), "f"),
            "source": factor.source, "year": factor.year}


def _event_body(event) -> dict:
    breakdown = footprint.event_breakdown(db.session, event.id)
    lines = footprint.event_lines(db.session, event.id)
    return {
        "id": event.id, "name": event.name, "starts_on": event.starts_on.isoformat(),
        "ends_on": event.ends_on.isoformat(), "location": event.location, "attendees": event.attendees,
        "organiser": event.organiser, "total_tco2e": format_tonnes(breakdown.total_units),
        "by_category": {c: format_tonnes(breakdown.by_category[c]) for c in CATEGORIES},
        "by_source": [{"source": code, "category": BY_CODE[code].category, "name": source_name(code),
                       "accounting_basis": source_basis(code), "tco2e": format_tonnes(units)}
                      for code, units in breakdown.by_source.items()],
        "lines": [{"id": line.id, "category": line.category, "source": line.source, "factor_code": line.factor.code,
                   "factor_version": line.factor.version,
                   "kgco2e_per_unit": format(line.factor.kgco2e_per_unit.normalize(), "f"),
                   "unit": line.factor.unit, "quantity": format(line.quantity.normalize(), "f"),
                   "description": line.description, "tco2e": format_tonnes(line.emissions_units)}
                  for line in lines],
    }


@blp.route("/emission-factors")
@blp.response(200, EmissionFactorSchema(many=True))
def list_emission_factors():
    """The current emission factors (one version per code), with their sources. No token needed."""
    language = current_language()
    return [_factor_row(f, language) for f in current_factors(db.session)]


@blp.route("/events", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@token_required("buyer")
@blp.arguments(EventCreateSchema)
@blp.response(201, EventSchema)
@blp.alt_response(200, schema=EventSchema, description="the event an earlier request with this key recorded")
def create_event(body):
    """Record an event and its activity data; returns its footprint. All or nothing."""
    fields = {name: value for name, value in body.items() if name != "activities"}
    activities = [footprint.ActivityInput(a["category"], a["factor_code"], a["quantity"], a.get("description", ""),
                                          a.get("source", ""))
                  for a in body["activities"]]
    event, status = idempotency.create_once(Event, body, lambda: footprint.create_event_with_activities(
        db.session, api_user(), activities=activities, **fields))
    return _event_body(event), status


@blp.route("/events/<event_id>")
@blp.doc(security=BEARER)
@blp.response(200, EventSchema)
@token_required()
def get_event(event_id):
    """One event with its footprint: for its owner and bureau staff; anyone else gets 404."""
    return _event_body(footprint.visible_event(db.session, api_user(), event_id))
