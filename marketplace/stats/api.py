"""Statistics API: the bureau's cumulative figures (the same numbers as its dashboard)."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.api_auth import BEARER, token_required
from marketplace.core.api import Blueprint
from marketplace.core.quantities import format_cny, format_tonnes
from marketplace.extensions import db
from marketplace.stats import figures

blp = Blueprint("api_stats", __name__, url_prefix="/api/v1", description="Statistics for the bureau")

DEFINITIONS = ("sold: orders paid, retiring or completed; retired: completed orders' retirements (ledger serial "
               "ranges); revenue: order lines' amounts of sold orders, all of it paid to the selling village "
               "cooperative. A completed order counts on the local day (Asia/Shanghai) of completed_at, a paid one "
               "on that of paid_at.")


DEFAULT_LIMIT, MAX_LIMIT = 50, 1000


class SummaryArgs(ma.Schema):
    # Read as strings and parsed by the service, so a bad date gets the application's own message.
    date_from = ma.fields.String(data_key="from", metadata={"description": "first day, YYYY-MM-DD (or YYYY-MM)",
                                                            "example": "2026-01-01"})
    date_to = ma.fields.String(data_key="to", metadata={"description": "last day, inclusive, YYYY-MM-DD (or YYYY-MM)",
                                                        "example": "2026-12-31"})
    county = ma.fields.String(metadata={"description": "id of a county region: only its villages' sales"})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT),
                              metadata={"description": "at most this many buyers and villages, largest first; the "
                                        "rest are summed in other_buyers and other_villages"})


class FiguresOut(ma.Schema):
    sold_tonnes = ma.fields.String(metadata={"example": "805.3934"})
    retired_tonnes = ma.fields.String(metadata={"example": "805.3934"})
    revenue_cny = ma.fields.String(metadata={"example": "28993.92"})


class BuyerOut(FiguresOut):
    buyer_id = ma.fields.Integer()
    buyer = ma.fields.String()
    orders_completed = ma.fields.Integer()


class VillageOut(FiguresOut):
    village_id = ma.fields.Integer()
    village = ma.fields.String()
    township = ma.fields.String()
    county = ma.fields.String()


class MonthOut(FiguresOut):
    month = ma.fields.String(metadata={"example": "2026-11"})
    orders_completed = ma.fields.Integer()


class OthersOut(FiguresOut):
    count = ma.fields.Integer(metadata={"description": "how many buyers (villages) are summed here"})


class OthersWithOrdersOut(OthersOut):
    orders_completed = ma.fields.Integer()


class SummaryOut(FiguresOut):
    orders_completed = ma.fields.Integer()
    events_neutralised = ma.fields.Integer()
    buyers = ma.fields.Integer()
    filters = ma.fields.Dict()
    definitions = ma.fields.String()
    by_buyer = ma.fields.List(ma.fields.Nested(BuyerOut))
    by_village = ma.fields.List(ma.fields.Nested(VillageOut))
    by_month = ma.fields.List(ma.fields.Nested(MonthOut))
    other_buyers = ma.fields.Nested(OthersWithOrdersOut)
    other_villages = ma.fields.Nested(OthersOut)


def _figures(f: figures.Figures) -> dict:
    return {"sold_tonnes": format_tonnes(f.sold_units), "retired_tonnes": format_tonnes(f.retired_units),
            "revenue_cny": format_cny(f.revenue_cny)}


def summary_json(summary: figures.Summary, limit: int | None = None) -> dict:
    """The answer: by_buyer and by_village largest first, at most ``limit`` of each (all when None),
    the rest summed; by_month in full (one row a month of the range)."""
    filters = summary.filters
    buyers, more_buyers, rest_buyers = figures.largest(summary.by_buyer, limit)
    villages, more_villages, rest_villages = figures.largest(summary.by_village, limit)
    by_village = [{"village_id": village.id, "village": village.name, "township": village.township,
                   "county": village.county, **_figures(f)} for village, f in villages]
    return {
        **_figures(summary.totals), "orders_completed": summary.totals.orders_completed,
        "events_neutralised": summary.totals.events, "buyers": summary.buyers,
        "filters": {"from": filters.date_from.isoformat() if filters.date_from else None,
                    "to": filters.date_to.isoformat() if filters.date_to else None, "county": filters.county_id},
        "definitions": DEFINITIONS,
        "by_buyer": [{"buyer_id": org.id, "buyer": org.name, **_figures(f), "orders_completed": f.orders_completed}
                     for org, f in buyers],
        "by_village": by_village,
        "other_buyers": {"count": more_buyers, **_figures(rest_buyers), "orders_completed": rest_buyers.orders_completed},
        "other_villages": {"count": more_villages, **_figures(rest_villages)},
        "by_month": [{"month": month, **_figures(f), "orders_completed": f.orders_completed}
                     for month, f in summary.by_month],
    }


@blp.route("/stats/summary")
@blp.doc(security=BEARER)
@token_required("bureau")
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummaryOut)
def stats_summary(args):
    """Cumulative tonnes sold and retired, revenue, orders, by buyer, village and month (bureau only).

    Buyers and villages come largest first (sold tonnes), at most ``limit`` of each (50 unless asked,
    up to 1000); ``other_buyers`` and ``other_villages`` sum the rest, so every figure adds up to the
    totals. The cost is the same for any range: see the README's Performance section."""
    filters = figures.parse_filters(args.get("date_from"), args.get("date_to"), args.get("county"))
    return summary_json(figures.summary(db.session, filters), args["limit"])
