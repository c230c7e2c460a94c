"""Dashboards: the bureau's cumulative offsets, a cooperative's sales, a buyer's neutralised events.

Every table is built once (stats/report_tables.py) and shown on the page, as CSV and as XLSX,
so an export always says what the screen says.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.certificates.models import Certificate
from marketplace.core.access import scoped_select
from marketplace.core.errors import DomainError
from marketplace.core.quantities import display_cny, display_tonnes, fen_to_cny, format_cny, format_tonnes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.models import Event
from marketplace.orders.models import Order, OrderLine
from marketplace.registry import ledger
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, Listing
from marketplace.stats import figures, report_tables
from marketplace.stats.aggregates import local_day

bp = Blueprint("dashboards", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Rows of the bureau's long tables on its page (buyers and projects largest first; the village tree
#: as county and township subtotals once it is longer): what a clerk reads; the downloads have every row.
SCREEN_LIMITS = {"by_buyer": 20, "by_project": 20, "by_village": 60}


def _filters():
    """Filters from the query string; an invalid one is reported and the page shows everything."""
    try:
        return figures.parse_filters(request.args.get("from"), request.args.get("to"), request.args.get("county")), None
    except DomainError as exc:
        return figures.Filters(), str(exc.message)


def _bar_chart(labels, series, unit: str, horizontal: bool = False) -> str:
    """Chart figures for static/js/dashboard-charts.js: exact decimal strings, drawn as numbers."""
    return json.dumps({"labels": labels, "series": series, "unit": unit, "horizontal": horizontal},
                      ensure_ascii=False)


def _month_chart(summary) -> str:
    months = [m for m, _f in summary.by_month]
    return _bar_chart(months, [
        {"name": _("Sold (t)"), "values": [format_tonnes(f.sold_units) for _m, f in summary.by_month]},
        {"name": _("Retired (t)"), "values": [format_tonnes(f.retired_units) for _m, f in summary.by_month]},
    ], "t")


def _export(tables: list, table_key: str, fmt: str, stem: str):
    chosen = tables if table_key == "all" else [t for t in tables if t.key == table_key]
    if not chosen or fmt not in ("csv", "xlsx") or (fmt == "csv" and len(chosen) != 1):
        abort(404)
    if fmt == "csv":
        return Response(report_tables.to_csv(chosen[0]), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{stem}-{table_key}.csv"'})
    return Response(report_tables.to_xlsx(chosen), mimetype=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{stem}-{table_key}.xlsx"'})


# --- the bureau ----------------------------------------------------------------------------------

def _bureau_tables(filters):
    summary = figures.summary(db.session, filters)
    inventory = figures.inventory(db.session, county_id=filters.county_id)
    tables = [report_tables.totals_table(summary), report_tables.by_buyer_table(summary),
              report_tables.by_village_table(summary), report_tables.by_period_table(summary, "month"),
              report_tables.by_period_table(summary, "quarter"), report_tables.by_period_table(summary, "year"),
              report_tables.by_project_table(summary), report_tables.inventory_table(inventory),
              report_tables.orders_table("recent_orders", _("Recent orders"), figures.recent_orders(db.session)),
              report_tables.orders_table("pending_transfers", _("Bank transfers awaiting confirmation"),
                                         figures.pending_transfers(db.session))]
    return summary, inventory, tables


@bp.get("/bureau/dashboard")
@role_required("bureau")
def bureau():
    filters, error = _filters()
    summary, inventory, tables = _bureau_tables(filters)
    for table in tables:  # the page shows the largest rows (subtotals of the village tree); downloads all
        if table.key in SCREEN_LIMITS:
            table.screen_limit = SCREEN_LIMITS[table.key]
    top_buyers = summary.by_buyer[:12]
    counties: dict[str, figures.Figures] = {}
    for village, f in summary.by_village:
        counties.setdefault(village.county or "—", figures.Figures()).add(f)
    charts = {
        "month": _month_chart(summary),
        "buyer": _bar_chart([org.name for org, _f in top_buyers],
                            [{"name": _("Sold (t)"), "values": [format_tonnes(f.sold_units) for _o, f in top_buyers]}],
                            "t", horizontal=True),
        "county": _bar_chart(list(counties), [{"name": _("Revenue (CNY)"),
                                               "values": [format_cny(f.revenue_cny) for f in counties.values()]}],
                            "¥"),
    }
    retired_by_county = [(c.name, counties[c.name].retired_units if c.name in counties else 0)
                         for c in registry.counties(db.session)]
    retired_map = json.dumps({"label": _("Retired (t)"), "unit": "t", "counties": [
        {"name": name, "value": format_tonnes(units)} for name, units in retired_by_county]}, ensure_ascii=False)
    return render_template("stats/dashboard_bureau.html", summary=summary, inventory=inventory,
                           retired_by_county=retired_by_county, retired_map=retired_map,
                           tables={t.key: t for t in tables}, charts=charts, filters=filters, error=error,
                           counties=registry.counties(db.session), args=_export_args(filters)), 422 if error else 200


@bp.get("/bureau/dashboard/export/<table_key>.<fmt>")
@role_required("bureau")
def bureau_export(table_key: str, fmt: str):
    filters, error = _filters()
    if error:
        abort(422)
    return _export(_bureau_tables(filters)[2], table_key, fmt, "tanhui-bureau")


def _export_args(filters) -> dict:
    args = {}
    if filters.date_from:
        args["from"] = filters.date_from.isoformat()
    if filters.date_to:
        args["to"] = filters.date_to.isoformat()
    if filters.county_id:
        args["county"] = filters.county_id
    return args


# --- a cooperative --------------------------------------------------------------------------------

def _listing_table(seller_id: int):
    rows = db.session.scalars(sa.select(Listing).where(Listing.owned_by(seller_id)).order_by(Listing.id)
                              .options(so.joinedload(Listing.batch).joinedload(CreditBatch.project))).all()
    available = ledger.listings_available_units(db.session, [r.id for r in rows])
    sold = dict(db.session.execute(
        sa.select(OrderLine.listing_id, sa.func.sum(OrderLine.units)).join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.listing_id.in_([r.id for r in rows]), Order.status.in_(figures.SOLD_STATUSES))
        .group_by(OrderLine.listing_id)).all()) if rows else {}
    table = report_tables.Table("listings", _("Inventory left per listing"), [
        report_tables.Column(_("Listing")), report_tables.Column(_("Project")),
        report_tables.Column(_("Vintage"), "count"), report_tables.Column(_("Price (CNY/t)")),
        report_tables.Column(_("Sold (t)"), "tonnes"), report_tables.Column(_("Reserved (t)"), "tonnes"),
        report_tables.Column(_("Left on sale (t)"), "tonnes")])
    reserved = ledger.listings_reserved_units(db.session, [r.id for r in rows])
    for r in rows:
        table.add([f"#{r.id}", r.batch.project.name, r.batch.vintage_end.year, format_cny(r.price_cny_per_tonne),
                   int(sold.get(r.id) or 0), reserved[r.id], available[r.id]])
    return table


def _seller_tables(filters):
    org_id = current_user.organisation_id
    summary = figures.summary(db.session, filters, figures.Scope(seller_id=org_id))
    tables = [report_tables.totals_table(summary), report_tables.by_buyer_table(summary),
              report_tables.by_period_table(summary, "month"), report_tables.by_project_table(summary),
              _listing_table(org_id)]
    return summary, tables


@bp.get("/sellers/dashboard")
@role_required("seller")
def seller():
    filters, error = _filters()
    summary, tables = _seller_tables(filters)
    chart = _bar_chart([m for m, _f in summary.by_month], [
        {"name": _("Revenue (CNY)"),
         "values": [format_cny(f.revenue_cny) for _m, f in summary.by_month]}], "¥")
    return render_template("stats/dashboard_seller.html", summary=summary, tables={t.key: t for t in tables},
                           chart_data=chart, filters=filters, error=error, args=_export_args(filters)), \
        422 if error else 200


@bp.get("/sellers/dashboard/export/<table_key>.<fmt>")
@role_required("seller")
def seller_export(table_key: str, fmt: str):
    filters, error = _filters()
    if error:
        abort(422)
    return _export(_seller_tables(filters)[1], table_key, fmt, "tanhui-sales")


# --- a buyer ---------------------------------------------------------------------------------------

def _buyer_tables(filters):
    org_id = current_user.organisation_id
    summary = figures.summary(db.session, filters, figures.Scope(buyer_id=org_id))
    events = db.session.scalars(scoped_select(Event, current_user, bureau_sees_all=False)
                                .order_by(Event.starts_on.desc())).all()
    retired = dict(db.session.execute(
        sa.select(Order.event_id, sa.func.sum(Order.quantity_units))
        .where(Order.owned_by(org_id), Order.status == "completed", Order.event_id.is_not(None))
        .group_by(Order.event_id)).all())
    event_table = report_tables.Table("events", _("Events and footprints"), [
        report_tables.Column(_("Event")), report_tables.Column(_("Dates")),
        report_tables.Column(_("Footprint (tCO2e)"), "tonnes"), report_tables.Column(_("Neutralised (t)"), "tonnes"),
        report_tables.Column(_("Still to offset (t)"), "tonnes")])
    totals = footprint.breakdown_for_events(db.session, [e.id for e in events])
    for event in events:
        footprint_units = totals[event.id]
        done = int(retired.get(event.id) or 0)
        event_table.add([event.name, f"{event.starts_on.isoformat()} – {event.ends_on.isoformat()}",
                         footprint_units, done, max(footprint_units - done, 0)])
    orders = db.session.scalars(scoped_select(Order, current_user, bureau_sees_all=False)
                                .order_by(Order.id.desc()).limit(200).options(so.joinedload(Order.buyer))).all()
    certificates = db.session.execute(
        sa.select(Certificate, Order).join(Order, Order.id == Certificate.order_id)
        .where(Certificate.buyer_organisation_id == org_id).order_by(Certificate.id.desc())).all()
    cert_table = report_tables.Table("certificates", _("Certificates"), [
        report_tables.Column(_("Certificate")), report_tables.Column(_("Beneficiary")),
        report_tables.Column(_("Issued")), report_tables.Column(_("Quantity (t)"), "tonnes"),
        report_tables.Column(_("State"))])
    for certificate, _order in certificates:
        cert_table.add([certificate.number, certificate.beneficiary,
                        local_day(certificate.issued_at).isoformat(), certificate.quantity_units,
                        _("revoked") if certificate.revoked_at else _("valid")])
    tables = [report_tables.totals_table(summary), event_table,
              report_tables.orders_table("orders", _("Orders"), orders),
              report_tables.by_period_table(summary, "month"), report_tables.by_project_table(summary), cert_table]
    return summary, tables


@bp.get("/buyers/dashboard")
@role_required("buyer")
def buyer():
    filters, error = _filters()
    summary, tables = _buyer_tables(filters)
    return render_template("stats/dashboard_buyer.html", summary=summary, tables={t.key: t for t in tables},
                           chart_data=_month_chart(summary), filters=filters, error=error,
                           args=_export_args(filters)), 422 if error else 200


@bp.get("/buyers/dashboard/export/<table_key>.<fmt>")
@role_required("buyer")
def buyer_export(table_key: str, fmt: str):
    filters, error = _filters()
    if error:
        abort(422)
    return _export(_buyer_tables(filters)[1], table_key, fmt, "tanhui-purchases")


@bp.app_template_filter("report_cell")
def _report_cell(value, kind: str) -> str:
    """A table cell on the page: tonnes trimmed and grouped, yuan with 2 places, text as it is."""
    if value is None:
        return ""
    if kind == "tonnes":
        return display_tonnes(int(value))
    if kind == "cny":
        return display_cny(fen_to_cny(int(value)))
    return str(value)
