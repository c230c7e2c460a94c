"""Dashboards and the stats API: exact figures against the ledger, exports against the screen, scoping."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from marketplace.extensions import db
from marketplace.models import (
    CreditBatch,
    Order,
    OrderLine,
    Project,
    RetirementRollup,
    RetirementStat,
    SerialRange,
    User,
)
from marketplace.services import orders, retirement, stats
from marketplace.services.quantities import format_tonnes, parse_tonnes
from tests.conftest import CsrfClient
from tests.factories import PASSWORD

STORY = {"summit": "175.402", "province": "200", "hangzhou": "150.5", "jinhua": "179.4914", "jiaxing": "100"}


def complete_order(app, buyer, tonnes: str, *, listing_id=None, event_id=None, pay: bool = True,
                   finish: bool = True) -> int:
    """An order placed, paid by bank transfer, retired and certified through the real services."""
    with app.app_context():
        actor = db.session.get(User, buyer.id)
        order = orders.place_order(db.session, actor=actor, units=parse_tonnes(tonnes), payment_method="bank_transfer",
                                   beneficiary=buyer.organisation.name, retirement_reason="碳中和",
                                   listing_id=listing_id, event_id=event_id)
        db.session.commit()
        order_id = order.id
        if pay:
            assert orders.mark_paid(db.session, order_id, note="bank transfer test", bank_reference=f"R{order_id}")
            db.session.commit()
        if pay and finish:
            assert retirement.retire_order(db.session, order_id) == "retired"
            db.session.commit()
            retirement.generate_certificate(db.session, order_id)
            assert db.session.get(Order, order_id).status == "completed"
        return order_id


@pytest.fixture
def story(app, factory):
    """Guanpuyang's credits (34.00/t) and a second village's (36.00/t); the summit and four other buyers."""
    bureau = factory.user("bureau")
    guanpuyang = factory.listing(factory.batch(factory.project(bureau=bureau), tonnes="2000", bureau=bureau),
                                 tonnes="500", price="34.00")
    other_batch = factory.batch(factory.project(bureau=bureau), tonnes="1000", bureau=bureau, vintage_year=2024)
    other = factory.listing(other_batch, tonnes="800", price="36.00")
    buyers = {key: factory.user("buyer") for key in STORY}
    ids = {}
    ids["summit"] = complete_order(app, buyers["summit"], STORY["summit"], listing_id=guanpuyang.id)
    for key in ("province", "hangzhou", "jinhua", "jiaxing"):
        # Allocation takes the cheaper Guanpuyang credits first, then the other village's.
        ids[key] = complete_order(app, buyers[key], STORY[key])
    return {"bureau": bureau, "buyers": buyers, "listings": (guanpuyang, other), "order_ids": ids}


def ledger_recomputation(app) -> dict:
    """Completed orders recomputed from the ledger's retirement ranges, independently of the service."""
    expected: dict[tuple, list] = defaultdict(lambda: [0, 0])
    with app.app_context():
        tz = stats.zone()
        for order in db.session.scalars(sa.select(Order).where(Order.status == "completed")):
            fen = defaultdict(int)
            for line in db.session.scalars(sa.select(OrderLine).where(OrderLine.order_id == order.id)):
                fen[line.batch_id] += int(line.amount_cny * 100)
            for serial_range in db.session.scalars(sa.select(SerialRange).where(
                    SerialRange.ref == f"order:{order.id}", SerialRange.kind == "retirement")):
                batch = db.session.get(CreditBatch, serial_range.batch_id)
                project = db.session.get(Project, batch.project_id)
                key = (order.completed_at.astimezone(tz).date(), order.buyer_organisation_id, project.village_id,
                       project.id, batch.vintage_end.year)
                expected[key][0] += serial_range.end - serial_range.start
                expected[key][1] += fen.pop(batch.id, 0)
    return {k: tuple(v) for k, v in expected.items()}


def stored_aggregates(app) -> dict:
    with app.app_context():
        return {(r.day, r.buyer_organisation_id, r.village_id, r.project_id, r.vintage): (r.units, r.amount_fen)
                for r in db.session.scalars(sa.select(RetirementStat))}


def rollup_rows(app) -> set:
    with app.app_context():
        return {(r.month, r.county_id, r.dimension, r.key_id, r.vintage, r.units, r.amount_fen, r.orders, r.events)
                for r in db.session.scalars(sa.select(RetirementRollup))}


def bureau_auth(factory, bureau):
    return {"Authorization": f"Bearer {factory.token(bureau)}"}


def test_the_story_adds_up_exactly_in_the_api(app, factory, client, story):
    response = client.get("/api/v1/stats/summary", headers=bureau_auth(factory, story["bureau"]))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["retired_tonnes"] == body["sold_tonnes"] == "805.3934"
    assert body["orders_completed"] == 5 and body["buyers"] == 5
    by_buyer = {row["buyer_id"]: row["retired_tonnes"] for row in body["by_buyer"]}
    assert by_buyer[story["buyers"]["summit"].organisation_id] == "175.4020"
    others = sum((Decimal(by_buyer[story["buyers"][k].organisation_id])
                  for k in ("province", "hangzhou", "jinhua", "jiaxing")), Decimal(0))
    assert others == Decimal("629.9914")
    with app.app_context():
        revenue = sum(line.amount_cny for line in db.session.scalars(sa.select(OrderLine)))
        ranges = sum(r.end - r.start for r in db.session.scalars(sa.select(SerialRange)))
    assert body["revenue_cny"] == f"{revenue:.2f}"
    assert format_tonnes(ranges) == "805.3934"
    villages = {row["village_id"]: row for row in body["by_village"]}
    assert len(villages) == 2
    assert sum(Decimal(v["revenue_cny"]) for v in villages.values()) == revenue
    assert {v["county"] for v in villages.values()} == {"龙泉市"} and {v["township"] for v in villages.values()} == {
        "兰巨乡"}
    month = date.today().strftime("%Y-%m")
    assert [(m["month"], m["retired_tonnes"]) for m in body["by_month"]] == [(month, "805.3934")]


def test_aggregates_equal_a_recomputation_from_the_ledger_and_rebuild_reproduces_them(app, factory, story, runner):
    expected = ledger_recomputation(app)
    assert sum(units for units, _fen in expected.values()) == parse_tonnes("805.3934")
    assert stored_aggregates(app) == expected
    maintained_rollups = rollup_rows(app)
    with app.app_context():
        db.session.execute(sa.delete(RetirementRollup))
        db.session.execute(sa.delete(RetirementStat))
        db.session.commit()
    assert stored_aggregates(app) == {}
    result = runner.invoke(args=["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "from 5 completed orders" in result.output
    assert stored_aggregates(app) == expected
    assert rollup_rows(app) == maintained_rollups


def test_completing_twice_counts_once_and_in_flight_orders_are_sold_not_retired(app, factory, client, story):
    summit_order = story["order_ids"]["summit"]
    with app.app_context():
        retirement.generate_certificate(db.session, summit_order)  # a repeated task changes nothing
        order = db.session.get(Order, summit_order)
        assert orders.transition(db.session, order, "completed") is False
        db.session.commit()
    paid_only = complete_order(app, story["buyers"]["province"], "1.0001", finish=False)
    pending = complete_order(app, story["buyers"]["province"], "2", pay=False)
    body = client.get("/api/v1/stats/summary", headers=bureau_auth(factory, story["bureau"])).get_json()
    assert body["retired_tonnes"] == "805.3934"
    assert body["sold_tonnes"] == "806.3935"  # + the paid order, not the unpaid one
    assert body["orders_completed"] == 5
    assert stored_aggregates(app) == ledger_recomputation(app)
    assert paid_only and pending


def test_date_and_county_filters(app, factory, client, story):
    auth = bureau_auth(factory, story["bureau"])
    today = date.today()
    for query, tonnes in ((f"from={today}&to={today}", "805.3934"),
                          (f"to={today - timedelta(days=1)}", "0.0000"),
                          (f"from={today + timedelta(days=1)}", "0.0000"),
                          (f"from={today.strftime('%Y-%m')}&to={today.strftime('%Y-%m')}", "805.3934")):
        body = client.get(f"/api/v1/stats/summary?{query}", headers=auth).get_json()
        assert body["retired_tonnes"] == tonnes, query
    with app.app_context():
        from marketplace.services.registry import counties

        county_ids = [c.id for c in counties(db.session)]
    body = client.get(f"/api/v1/stats/summary?county={county_ids[0]}", headers=auth).get_json()
    assert body["retired_tonnes"] == "805.3934"
    body = client.get("/api/v1/stats/summary?county=999999", headers=auth).get_json()
    assert body["retired_tonnes"] == "0.0000" and body["by_buyer"] == []
    bad = client.get("/api/v1/stats/summary?from=2026-13-01", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "from"
    backwards = client.get("/api/v1/stats/summary?from=2026-02-01&to=2026-01-01", headers=auth)
    assert backwards.status_code == 422


def test_the_api_is_for_the_bureau_only(app, factory, client, story):
    assert client.get("/api/v1/stats/summary").status_code == 401
    buyer = story["buyers"]["summit"]
    response = client.get("/api/v1/stats/summary", headers={"Authorization": f"Bearer {factory.token(buyer)}"})
    assert response.status_code == 403
    seller = factory.user("seller")
    response = client.get("/api/v1/stats/summary", headers={"Authorization": f"Bearer {factory.token(seller)}"})
    assert response.status_code == 403
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/stats/summary"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"from", "to", "county"}
    assert operation["security"] == [{"bearerAuth": []}]


def _page_kpis(html: str) -> dict:
    return dict(re.findall(r'data-kpi="(\w+)">([^<]+)<', html))


def _table(html: str, key: str) -> list[list[str]]:
    section = html.split(f'data-table="{key}"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S):
        rows.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row,
                                                                                  re.S)])
    return rows


def test_the_bureau_dashboard_shows_the_figures_and_exports_match_the_screen(app, factory, client, login, story):
    login(factory.user("bureau", organisation=story["bureau"].organisation).email)
    response = client.get("/bureau/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    kpis = _page_kpis(html)
    assert kpis["retired"] == "805.3934 t" and kpis["sold"] == "805.3934 t"
    assert kpis["buyers"] == "5" and kpis["orders"] == "5"
    assert 'href="/bureau/dashboard"' in html  # in the navigation
    assert "echarts.min.js" in html and "dashboard-charts.js" in html and "<script>" not in html
    screen = _table(html, "by_buyer")
    exported = list(csv.reader(io.StringIO(client.get("/bureau/dashboard/export/by_buyer.csv").get_data(
        as_text=True).lstrip("\ufeff"))))
    assert len(exported) == len(screen)
    for screen_row, csv_row in zip(screen[1:], exported[1:], strict=True):
        assert screen_row[0] == csv_row[0]
        assert Decimal(screen_row[1].replace(",", "")) == Decimal(csv_row[1])  # sold t
        assert Decimal(screen_row[3].replace(",", "")) == Decimal(csv_row[3])  # revenue
    assert exported[-1][1] == "805.3934"
    assert sum(Decimal(r[2]) for r in exported[1:-1]) == Decimal("805.3934")
    assert sum(Decimal(r[3]) for r in exported[1:-1]) == Decimal(exported[-1][3])
    book = load_workbook(io.BytesIO(client.get("/bureau/dashboard/export/all.xlsx").data))
    assert len(book.sheetnames) == 10
    sheet = book[book.sheetnames[1]]
    values = list(sheet.iter_rows(values_only=True))
    assert Decimal(str(values[-1][2])).quantize(Decimal("0.0001")) == Decimal("805.3934")
    assert sum(Decimal(str(r[3])) for r in values[1:-1]).quantize(Decimal("0.01")) == \
        Decimal(str(values[-1][3])).quantize(Decimal("0.01"))
    village_rows = _table(html, "by_village")
    assert any(row[:3] == ["龙泉市", "", ""] and row[4] == "805.3934" for row in village_rows)
    assert client.get("/bureau/dashboard/export/nothing.csv").status_code == 404
    assert client.get("/bureau/dashboard?from=yesterday").status_code == 422


def test_exports_neutralise_spreadsheet_formulas(app, factory, client, login):
    bureau = factory.user("bureau")
    listing = factory.listing(factory.batch(factory.project(bureau=bureau), bureau=bureau))
    evil = factory.organisation("buyer", name="=HYPERLINK(\"http://evil.example\",\"x\")")
    buyer = factory.user("buyer", organisation=evil)
    complete_order(app, buyer, "1", listing_id=listing.id)
    login(bureau.email)
    text = client.get("/bureau/dashboard/export/by_buyer.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text
    book = load_workbook(io.BytesIO(client.get("/bureau/dashboard/export/by_buyer.xlsx").data))
    cell = book.active["A2"]
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"


def test_a_seller_sees_only_its_own_sales_and_a_buyer_only_its_own_orders(app, factory, client, login, story):
    guanpuyang, other = story["listings"]
    seller = factory.user("seller", organisation=SimpleOrg(guanpuyang.seller_organisation_id))
    login(seller.email)
    html = client.get("/sellers/dashboard").get_data(as_text=True)
    with app.app_context():
        own = sum(line.units for line in db.session.scalars(sa.select(OrderLine).where(
            OrderLine.listing_id == guanpuyang.id)))
        foreign = sum(line.units for line in db.session.scalars(sa.select(OrderLine).where(
            OrderLine.listing_id == other.id)))
    assert own and foreign
    assert _page_kpis(html)["sold"] == f"{format_tonnes(own).rstrip('0').rstrip('.')} t"
    listing_rows = _table(html, "listings")
    assert [row[0] for row in listing_rows[1:]] == [f"#{guanpuyang.id}"]
    exported = client.get("/sellers/dashboard/export/by_project.csv").get_data(as_text=True)
    assert format_tonnes(foreign) not in exported
    assert client.get("/bureau/dashboard").status_code == 403

    summit = story["buyers"]["summit"]
    client = app.test_client()
    response = CsrfClient(client).post_form("/login", {"email": summit.email, "password": PASSWORD})
    assert response.status_code == 302
    html = client.get("/buyers/dashboard").get_data(as_text=True)
    assert _page_kpis(html)["retired"] == "175.402 t"
    names = {story["buyers"][k].organisation.name for k in ("province", "hangzhou", "jinhua", "jiaxing")}
    assert not any(name in html for name in names)
    certs = _table(html, "certificates")
    assert len(certs) == 2 and certs[1][3] == "175.402"
    orders_csv = client.get("/buyers/dashboard/export/orders.csv").get_data(as_text=True)
    assert f"#{story['order_ids']['summit']}" in orders_csv and f"#{story['order_ids']['province']}" not in orders_csv
    assert client.get("/sellers/dashboard").status_code == 403


class SimpleOrg:
    def __init__(self, organisation_id):
        self.id = organisation_id
        self.kind = "seller"
