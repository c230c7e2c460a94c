"""Public API: the benefit ledger of villages, for anyone."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import Blueprint
from marketplace.core.quantities import fen_to_cny, format_cny, format_tonnes
from marketplace.extensions import db
from marketplace.settlement import public_benefit

blp = Blueprint("api_public_villages", __name__, url_prefix="/api/v1/public",
                description="The public benefit ledger of villages")


class VillageBenefitQuery(ma.Schema):
    county = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=2**31 - 1),
                               metadata={"description": "only the villages of this county (region id)"})


class VillageBenefitOut(ma.Schema):
    code = ma.fields.String(allow_none=True, metadata={"description": "administrative division code, if known"})
    name = ma.fields.String()
    township = ma.fields.String(allow_none=True)
    county = ma.fields.String(allow_none=True)
    sold_tonnes = ma.fields.String(metadata={"description": "tonnes of paid orders not refunded, 4 places"})
    received_cny = ma.fields.String(metadata={"description": "the cooperative's net proceeds (after the fee, less refunds)"})
    paid_out_cny = ma.fields.String(metadata={"description": "payouts the bank made to the cooperative"})
    distributed_cny = ma.fields.String(metadata={"description": "what distributions gave member households"})
    households = ma.fields.Integer(metadata={"description": "member households that received a distribution"})


class CountyBenefitOut(ma.Schema):
    code = ma.fields.String(allow_none=True)
    name = ma.fields.String()
    sold_tonnes = ma.fields.String()
    received_cny = ma.fields.String()
    paid_out_cny = ma.fields.String()
    distributed_cny = ma.fields.String()
    households = ma.fields.Integer()


class VillageBenefitsOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(VillageBenefitOut))
    counties = ma.fields.List(ma.fields.Nested(CountyBenefitOut))


def _money(row: public_benefit.VillageBenefit) -> dict:
    return {"sold_tonnes": format_tonnes(row.sold_units), "received_cny": format_cny(fen_to_cny(row.received_fen)),
            "paid_out_cny": format_cny(fen_to_cny(row.paid_out_fen)),
            "distributed_cny": format_cny(fen_to_cny(row.distributed_fen)), "households": row.households}


@blp.route("/villages")
@blp.arguments(VillageBenefitQuery, location="query")
@blp.response(200, VillageBenefitsOut)
def villages(args):
    """Per village and per county: tonnes sold, money received, paid out, distributed to households, and
    the households that benefited — equal to the money journal to the fen."""
    rows = public_benefit.village_benefits(db.session, county_id=args["county"])
    return {
        "items": [{"code": r.village.code, "name": r.village.name,
                   "township": r.township.name if r.township else None,
                   "county": r.county.name if r.county else None, **_money(r)} for r in rows],
        "counties": [{"code": county.code if county else None, "name": county.name if county else "", **_money(total)}
                     for county, total, _villages in public_benefit.by_county(rows)],
    }
