"""Public registry API: retirements, for anyone."""

from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from marketplace.certificates import public_retirements as registry
from marketplace.core.api import Blueprint
from marketplace.core.api_fields import Id
from marketplace.core.dates import FIRST_DAY, LAST_DAY
from marketplace.core.web import public_read
from marketplace.extensions import db
from marketplace.orders.models import RETIREMENT_PURPOSES

blp = Blueprint("api_public", __name__, url_prefix="/api/v1/public", description="The public registry")


class RetirementQuery(ma.Schema):
    beneficiary = ma.fields.String(load_default="")
    buyer = ma.fields.String(load_default="")
    project = ma.fields.String(load_default="")
    village = ma.fields.String(load_default="")
    date_from = ma.fields.Date(data_key="from", load_default=None, validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY),
                               metadata={"description": "retired on or after"})
    date_to = ma.fields.Date(data_key="to", load_default=None, validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY),
                             metadata={"description": "retired on or before"})
    purpose = ma.fields.String(load_default="", validate=ma.validate.OneOf(("", *RETIREMENT_PURPOSES)),
                               metadata={"description": "event | zero_carbon_org | ecological_compensation | "
                                                        "voluntary | other"})
    period_from = ma.fields.Date(load_default=None, validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY),
                                 metadata={"description": "the period covered overlaps this day or later days"})
    period_to = ma.fields.Date(load_default=None, validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY),
                               metadata={"description": "the period covered overlaps this day or earlier days "
                                                        "(with period_from: overlaps [period_from, period_to]; "
                                                        "retirements without a period never match)"})
    event_id = Id(load_default=None, metadata={"description": "retirements for this event"})

    @ma.validates_schema
    def _period_in_order(self, data, **_kwargs):
        if data.get("period_from") and data.get("period_to") and data["period_to"] < data["period_from"]:
            raise ma.ValidationError(_l("The period cannot end before it starts."), "period_to")

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=registry.MAX_PER_PAGE))


class SerialRangeOut(ma.Schema):
    serial_block = ma.fields.String()
    vintage = ma.fields.String(allow_none=True)
    first = ma.fields.Integer()
    last = ma.fields.Integer()
    units = ma.fields.Integer()


class RetirementOut(ma.Schema):
    certificate_number = ma.fields.String()
    beneficiary = ma.fields.String()
    buyer = ma.fields.String()
    event = ma.fields.String(allow_none=True, metadata={"description": "the neutralised event's name, if any"})
    event_id = ma.fields.Integer(allow_none=True, metadata={"description": "the event's id, if any"})
    period_start = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-10-30", "description": "first day of the period the retirement covers"})
    period_end = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-11-01", "description": "last day of the period covered (inclusive)"})
    quantity_tonnes = ma.fields.String()
    retirement_reason = ma.fields.String()
    purpose = ma.fields.String(allow_none=True, metadata={"description": "what the retirement is for"})
    projects = ma.fields.List(ma.fields.String())
    villages = ma.fields.List(ma.fields.String())
    serial_ranges = ma.fields.List(ma.fields.Nested(SerialRangeOut))
    retired_at = ma.fields.String()
    revoked = ma.fields.Boolean()


class RetirementPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RetirementOut))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


@blp.route("/retirements")
@public_read("retirements", anonymous_only=False)
@blp.arguments(RetirementQuery, location="query")
@blp.response(200, RetirementPage)
def retirements(args):
    """Every retirement, newest first, with its certificate number and serial ranges."""
    filters = registry.Filters(beneficiary=args["beneficiary"], buyer=args["buyer"], project=args["project"],
                               village=args["village"], date_from=args["date_from"], date_to=args["date_to"],
                               purpose=args["purpose"], period_from=args["period_from"],
                               period_to=args["period_to"], event_id=args["event_id"])
    items, total = registry.search(db.session, filters, page=args["page"], per_page=args["per_page"])
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}
