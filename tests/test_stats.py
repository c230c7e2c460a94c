"""Dashboards and the stats API: exact figures against the ledger, exports against the screen, scoping."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from marketplace.accounts.models import User
from marketplace.certificates import retirement
from marketplace.core.quantities import format_tonnes, parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import CreditBatch, Project, Region, SerialRange
from marketplace.stats import aggregates, figures
from marketplace.stats.models import RetirementDay, RetirementKey, RetirementMonth, RetirementStat
from marketplace.stats.ranges import month_end
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
        tz = aggregates.zone()
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


def cumulative_rows(app) -> dict[str, set]:
    """Every row of the three cumulative tables, as plain tuples."""
    with app.app_context():
        return {model.__tablename__: {tuple(row) for row in db.session.execute(sa.select(model.__table__))}
                for model in (RetirementKey, RetirementMonth, RetirementDay)}


def key_totals_from_ledger(app, expected: dict) -> dict:
    """All-time units and fen per cumulative key, from the ledger recount: the total and buyers for every
    county (0) and their own county, villages and projects for every county."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0])
    with app.app_context():
        for (_day, buyer, village, project, vintage), (units, fen) in expected.items():
            county = db.session.get(Region, village).ancestor("county")
            keys = [(0, "total", 0, 0), (0, "buyer", buyer, 0), (0, "village", village, 0),
                    (0, "project", project, vintage)]
            if county:
                keys += [(county.id, "total", 0, 0), (county.id, "buyer", buyer, 0)]
            for key in keys:
                totals[key][0] += units
                totals[key][1] += fen
    return {k: tuple(v) for k, v in totals.items()}


def platform_today(app) -> date:
    """Today where the platform counts days (Asia/Shanghai): between 16:00 and 24:00 UTC it is already
    tomorrow there, and the aggregates put today's completions on that day."""
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"])).date()


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
    month = platform_today(app).strftime("%Y-%m")
    assert [(m["month"], m["retired_tonnes"]) for m in body["by_month"]] == [(month, "805.3934")]


def test_aggregates_equal_a_recomputation_from_the_ledger_and_rebuild_reproduces_them(app, factory, story, runner):
    expected = ledger_recomputation(app)
    assert sum(units for units, _fen in expected.values()) == parse_tonnes("805.3934")
    assert stored_aggregates(app) == expected
    maintained = cumulative_rows(app)
    with app.app_context():
        keys = {(r.county_id, r.dimension, r.key_id, r.vintage): r for r in db.session.scalars(sa.select(RetirementKey))}
    assert {key: (r.units, r.amount_fen) for key, r in keys.items()} == key_totals_from_ledger(app, expected)
    assert {key[0]: keys[key].orders for key in keys if key[1] == "total"} == {0: 5, county_of_story(app): 5}
    with app.app_context():
        for model in aggregates.AGGREGATE_MODELS:
            db.session.execute(sa.delete(model))
        db.session.commit()
    assert stored_aggregates(app) == {} and cumulative_rows(app)["retirement_keys"] == set()
    result = runner.invoke(args=["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "from 5 completed orders" in result.output
    assert stored_aggregates(app) == expected
    assert cumulative_rows(app) == maintained


def test_the_migration_fills_the_cumulative_tables_as_the_completions_did(app, factory, story):
    """0024's upgrade fills the tiers from retirement_stats: the same rows as the ones maintained."""
    migration = _migration_0024()
    maintained = cumulative_rows(app)
    with app.app_context():
        for model in (RetirementDay, RetirementMonth, RetirementKey):
            db.session.execute(sa.delete(model))
        migration._fill_cumulative(db.session.connection())
        db.session.commit()
    assert cumulative_rows(app) == maintained


def county_of_story(app) -> int:
    with app.app_context():
        from marketplace.registry.service import counties

        return counties(db.session)[0].id


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
    with app.app_context():
        keys = {(r.county_id, r.dimension, r.key_id, r.vintage): (r.units, r.amount_fen)
                for r in db.session.scalars(sa.select(RetirementKey))}
    assert keys == key_totals_from_ledger(app, ledger_recomputation(app))
    assert paid_only and pending


def test_date_and_county_filters(app, factory, client, story):
    auth = bureau_auth(factory, story["bureau"])
    today = platform_today(app)
    for query, tonnes in ((f"from={today}&to={today}", "805.3934"),
                          (f"to={today - timedelta(days=1)}", "0.0000"),
                          (f"from={today + timedelta(days=1)}", "0.0000"),
                          (f"from={today.strftime('%Y-%m')}&to={today.strftime('%Y-%m')}", "805.3934")):
        body = client.get(f"/api/v1/stats/summary?{query}", headers=auth).get_json()
        assert body["retired_tonnes"] == tonnes, query
    with app.app_context():
        from marketplace.registry.service import counties

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
    assert _page_kpis(html)["sold"] == f"{format_tonnes(own)} t"
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
    assert _page_kpis(html)["retired"] == "175.4020 t"
    names = {story["buyers"][k].organisation.name for k in ("province", "hangzhou", "jinhua", "jiaxing")}
    assert not any(name in html for name in names)
    certs = _table(html, "certificates")
    assert len(certs) == 2 and certs[1][3] == "175.4020"
    orders_csv = client.get("/buyers/dashboard/export/orders.csv").get_data(as_text=True)
    assert f"#{story['order_ids']['summit']}" in orders_csv and f"#{story['order_ids']['province']}" not in orders_csv
    assert client.get("/sellers/dashboard").status_code == 403


class SimpleOrg:
    def __init__(self, organisation_id):
        self.id = organisation_id
        self.kind = "seller"


# --- any date range from two cumulative rows per key ----------------------------------------------

some_day = st.one_of(st.none(), st.dates(min_value=date(2024, 11, 1), max_value=date(2027, 1, 31)))
KEYS = [(0, "total", 0, 0), (0, "buyer", 7, 0), (0, "village", 3, 0), (0, "project", 3, 2024), (5, "total", 0, 0)]
#: (day, key, units, fen): changes on any day, later ones back-dated before earlier ones, some taking away.
change = st.tuples(st.dates(min_value=date(2024, 12, 1), max_value=date(2026, 12, 31)), st.sampled_from(KEYS),
                   st.integers(min_value=-500, max_value=2000), st.integers(min_value=-9, max_value=30))


def test_back_dated_and_negative_changes_keep_every_range_exact(app):
    """Changes applied in any order of days (back-dated ones rewrite the later cumulative rows of their
    key, bounded by the month and the months since), then any range read from the tiers equals the
    plain sum of the changes in it; and the rows written are those of a rebuild from the same changes."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(change, min_size=1, max_size=25), st.lists(st.tuples(some_day, some_day), min_size=1,
                                                                max_size=8))
    def check(changes, ranges):
        from marketplace.stats.ranges import read_range

        with app.app_context():
            for model in (RetirementDay, RetirementMonth, RetirementKey):
                db.session.execute(sa.delete(model))
            for day, key, units, fen in changes:
                aggregates.apply_deltas(db.session, day, {key: aggregates.Sums(units, fen, 1, 0)})
            for date_from, date_to in ranges:
                if date_from and date_to and date_from > date_to:
                    date_from, date_to = date_to, date_from
                for county in (None, 5):
                    naive: dict[tuple, list] = defaultdict(lambda: [0, 0, 0])
                    for day, key, units, fen in changes:
                        if ((date_from is None or day >= date_from) and (date_to is None or day <= date_to)
                                and key[0] == (county or 0)):
                            for i, value in enumerate((units, fen, 1)):
                                naive[key[1:]][i] += value
                    naive = {k: tuple(v) for k, v in naive.items() if any(v)}
                    read = {(r.dimension, r.key_id, r.vintage): (r.units, r.amount_fen, r.orders)
                            for r in read_range(db.session, date_from, date_to, county)}
                    assert read == naive, (date_from, date_to, county)
            # Dense tiers: every month of a key between its first and last; every day of a month between
            # its first and last days with changes; and each row is the running total.
            by_key: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
            for day, key, units, _fen in changes:
                by_key[key][day] += units
            for key, per_day in by_key.items():
                k = db.session.get(RetirementKey, key)
                assert (k.first_month, k.last_month) == (min(per_day).replace(day=1), max(per_day).replace(day=1))
                assert k.units == sum(per_day.values())
                months = db.session.scalars(sa.select(RetirementMonth).where(
                    RetirementMonth.county_id == key[0], RetirementMonth.dimension == key[1],
                    RetirementMonth.key_id == key[2]).order_by(RetirementMonth.month)).all()
                for row in months:
                    assert row.units == sum(u for d, u in per_day.items() if d <= month_end(row.month))
                    days_in = [d for d in per_day if d.replace(day=1) == row.month]
                    assert (row.first_day, row.last_day) == ((min(days_in), max(days_in)) if days_in else (None, None))
                    if days_in:
                        count = db.session.scalar(sa.select(sa.func.count()).select_from(RetirementDay).where(
                            RetirementDay.county_id == key[0], RetirementDay.dimension == key[1],
                            RetirementDay.key_id == key[2], RetirementDay.day.between(min(days_in), max(days_in))))
                        assert count == (max(days_in) - min(days_in)).days + 1
            db.session.rollback()

    check()


#: Local completion times spread over two years, on the edges that matter (midnight, month and year ends).
SPREAD = ["2024-12-31 23:59", "2025-01-01 00:01", "2025-03-14 12:00", "2025-03-31 20:00", "2025-07-01 09:00",
          "2025-12-16 10:00", "2026-01-31 23:00", "2026-02-01 08:00", "2026-11-20 15:00"]
EDGES = [None, date(2024, 12, 31), date(2025, 1, 1), date(2025, 1, 2), date(2025, 3, 1), date(2025, 3, 14),
         date(2025, 3, 15), date(2025, 3, 31), date(2025, 4, 1), date(2025, 6, 30), date(2025, 7, 1),
         date(2025, 11, 30), date(2025, 12, 16), date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 31),
         date(2026, 2, 1), date(2026, 2, 27), date(2026, 11, 20), date(2026, 12, 31)]


def spread_orders(app, factory, story) -> int:
    """Nine orders completed at the SPREAD times, in two counties; the aggregates rebuilt. Returns the second county."""
    from marketplace.registry.service import ensure_region

    bureau = story["bureau"]
    far = factory.project(bureau=bureau)
    with app.app_context():  # a project in a second county
        province = ensure_region(db.session, level="province", name="浙江省", code="330000")
        city = ensure_region(db.session, level="city", name="丽水市", parent=province, code="331100")
        county = ensure_region(db.session, level="county", name="遂昌县", parent=city, code="331123")
        township = ensure_region(db.session, level="township", name="妙高街道", parent=county)
        village = ensure_region(db.session, level="village", name="远村", parent=township)
        db.session.get(Project, far.id).village_id = village.id
        db.session.commit()
        second_county = county.id
    far_listing = factory.listing(factory.batch(far, tonnes="100", bureau=bureau), tonnes="50", price="40.00")
    buyers = story["buyers"]
    ids = list(story["order_ids"].values())
    ids += [complete_order(app, buyers["summit"], "1.5", listing_id=far_listing.id),
            complete_order(app, buyers["jinhua"], "2.0001", listing_id=far_listing.id),
            complete_order(app, buyers["hangzhou"], "3"),
            complete_order(app, buyers["province"], "0.0301")]
    with app.app_context():
        tz = aggregates.zone()
        for order_id, moment in zip(ids, SPREAD, strict=True):
            db.session.get(Order, order_id).completed_at = datetime.fromisoformat(moment).replace(tzinfo=tz)
        db.session.commit()
        aggregates.rebuild(db.session)
        db.session.commit()
    return second_county


def _migration_0024():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "migrations/versions/20261204_0024_cumulative_stats.py"
    spec = importlib.util.spec_from_file_location("migration_0024", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def test_any_range_from_the_aggregates_equals_the_naive_recount(app, factory, story):
    second_county = spread_orders(app, factory, story)
    rebuilt = cumulative_rows(app)
    with app.app_context():  # the rebuild (set-based SQL on PostgreSQL) = the migration's plain Python fill
        for model in (RetirementDay, RetirementMonth, RetirementKey):
            db.session.execute(sa.delete(model))
        _migration_0024()._fill_cumulative(db.session.connection())
        db.session.commit()
    assert cumulative_rows(app) == rebuilt
    assert len(rebuilt["retirement_months"]) > len(rebuilt["retirement_keys"])  # gap months filled
    expected = ledger_recomputation(app)
    assert {key[0] for key in expected} == {date.fromisoformat(m[:10]) for m in SPREAD}
    with app.app_context():
        checked = 0
        for county_id in (None, county_of_story(app), second_county):
            for i, date_from in enumerate(EDGES):
                for date_to in [None, *EDGES[max(i, 1):]]:
                    filters = figures.Filters(date_from, date_to, county_id)
                    fast, _names = figures._from_aggregates(db.session, filters)
                    for dimension in figures.DIMENSIONS:
                        naive = figures._from_days(db.session, filters, figures.Scope(), dimension)
                        assert dict(fast[dimension]) == dict(naive), (filters, dimension)
                    if county_id is None:
                        units = sum(u for (day, *_rest), (u, _fen) in expected.items()
                                    if (date_from is None or day >= date_from) and (date_to is None or day <= date_to))
                        assert fast["total"].get((), figures.Figures()).retired_units == units, filters
                    checked += 1
        assert checked > 500
        everything, _names = figures._from_aggregates(db.session, figures.Filters())
        assert everything["total"][()].orders_completed == 9
        assert len(everything["month"]) == len({m[:7] for m in SPREAD})


def test_the_migration_fills_the_totals_from_the_monthly_rollups(make_app, empty_database_url):
    from flask_migrate import upgrade

    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    rows = [(date(2025, 1, 1), 0, "total", 0, 0, 10, 300, 2, 1), (date(2025, 12, 1), 0, "total", 0, 0, 5, 150, 1, 0),
            (date(2026, 3, 1), 0, "total", 0, 0, 7, 210, 1, 0), (date(2025, 1, 1), 0, "project", 3, 2024, 10, 300, 0, 0),
            (date(2026, 3, 1), 9, "buyer", 4, 0, 7, 210, 1, 0)]
    with migrated.app_context():
        upgrade(revision="0007")
        columns = ("month", "county_id", "dimension", "key_id", "vintage", "units", "amount_fen", "orders", "events")
        with db.engine.begin() as conn:
            conn.execute(sa.table("retirement_rollups", *map(sa.column, columns)).insert(),
                         [dict(zip(columns, r, strict=True)) for r in rows])
        upgrade(revision="0008")
        with db.engine.connect() as conn:
            totals = set(conn.execute(sa.select(
                *[sa.column(c) for c in ("year", "county_id", "dimension", "key_id", "vintage", "units", "amount_fen",
                                         "orders", "events")]).select_from(sa.table("retirement_totals"))))
        db.engine.dispose()
    assert totals == {(2025, 0, "total", 0, 0, 15, 450, 3, 1), (2026, 0, "total", 0, 0, 7, 210, 1, 0),
                      (0, 0, "total", 0, 0, 22, 660, 4, 1), (2025, 0, "project", 3, 2024, 10, 300, 0, 0),
                      (0, 0, "project", 3, 2024, 10, 300, 0, 0), (2026, 9, "buyer", 4, 0, 7, 210, 1, 0),
                      (0, 9, "buyer", 4, 0, 7, 210, 1, 0)}


def direct_sums(session, filters: figures.Filters) -> dict:
    """The summary's figures straight from the orders, their ledger retirement ranges and their lines,
    with SQL sums over the range's UTC bounds (no aggregate table read)."""
    from marketplace.registry.service import village_ids_under

    start, end = filters.utc_bounds()

    def completed(stmt):
        stmt = stmt.where(Order.status == "completed")
        if start:
            stmt = stmt.where(Order.completed_at >= start)
        if end:
            stmt = stmt.where(Order.completed_at < end)
        if filters.county_id:
            stmt = stmt.where(Project.village_id.in_(village_ids_under(session, filters.county_id)))
        return stmt

    retired = (sa.select(sa.func.sum(SerialRange.end - SerialRange.start))
               .join(Order, SerialRange.ref == sa.literal("order:") + sa.cast(Order.id, sa.String))
               .join(CreditBatch, CreditBatch.id == SerialRange.batch_id)
               .join(Project, Project.id == CreditBatch.project_id).where(SerialRange.kind == "retirement"))
    revenue = (sa.select(sa.func.sum(OrderLine.amount_cny)).join(Order, Order.id == OrderLine.order_id)
               .join(CreditBatch, CreditBatch.id == OrderLine.batch_id)
               .join(Project, Project.id == CreditBatch.project_id))
    counted = (sa.select(sa.func.count(sa.distinct(Order.id))).join(OrderLine, OrderLine.order_id == Order.id)
               .join(CreditBatch, CreditBatch.id == OrderLine.batch_id)
               .join(Project, Project.id == CreditBatch.project_id))
    result = {"total": (int(session.scalar(completed(retired)) or 0),
                        Decimal(session.scalar(completed(revenue)) or 0).quantize(Decimal("0.01")),
                        int(session.scalar(completed(counted)) or 0))}
    for name, column in (("buyer", Order.buyer_organisation_id), ("village", Project.village_id)):
        units = {k: v for v, k in session.execute(completed(retired.add_columns(column).group_by(column)))}
        fen = {k: Decimal(v).quantize(Decimal("0.01")) for v, k in session.execute(
            completed(revenue.add_columns(column).group_by(column)))}
        result[name] = {k: (int(units[k]), fen[k]) for k in units}
    return result


def test_any_random_range_of_the_summary_equals_a_direct_sum_over_the_orders(app, factory, story):
    """Hypothesis picks ranges and counties; the summary (read from the cumulative tiers) must equal SQL
    sums over the completed orders' retirement ranges and lines, exactly."""
    second_county = spread_orders(app, factory, story)
    counties = [None, county_of_story(app), second_county]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(st.none(), st.dates(min_value=date(2024, 12, 1), max_value=date(2026, 12, 31))),
           st.one_of(st.none(), st.dates(min_value=date(2024, 12, 1), max_value=date(2026, 12, 31))),
           st.sampled_from(counties))
    def check(date_from, date_to, county_id):
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from
        filters = figures.Filters(date_from, date_to, county_id)
        with app.app_context():
            summary = figures.summary(db.session, filters)
            direct = direct_sums(db.session, filters)
        totals = summary.totals
        assert (totals.retired_units, totals.revenue_cny, totals.orders_completed) == direct["total"], filters
        assert {org.id: (f.retired_units, f.revenue_cny) for org, f in summary.by_buyer} == direct["buyer"], filters
        assert {v.id: (f.retired_units, f.revenue_cny) for v, f in summary.by_village} == direct["village"], filters
        assert sum(f.retired_units for _m, f in summary.by_month) == totals.retired_units
        with app.app_context():
            for month, f in summary.by_month:
                first = date.fromisoformat(month + "-01")
                part = figures.Filters(max(first, date_from or first), min(month_end(first), date_to or first.max),
                                       county_id)
                assert (f.retired_units, f.revenue_cny, f.orders_completed) == direct_sums(db.session, part)["total"]

    check()


def test_the_api_lists_the_largest_buyers_and_villages_and_sums_the_rest(app, factory, client, story):
    auth = bureau_auth(factory, story["bureau"])
    full = client.get("/api/v1/stats/summary", headers=auth).get_json()
    assert full["other_buyers"]["count"] == 0 and full["other_villages"]["count"] == 0
    sold = [Decimal(row["sold_tonnes"]) for row in full["by_buyer"]]
    assert sold == sorted(sold, reverse=True)
    body = client.get("/api/v1/stats/summary?limit=2", headers=auth).get_json()
    assert [row["buyer_id"] for row in body["by_buyer"]] == [row["buyer_id"] for row in full["by_buyer"][:2]]
    assert body["other_buyers"]["count"] == 3 and len(body["by_village"]) == 2
    for field in ("sold_tonnes", "retired_tonnes", "revenue_cny"):
        assert (sum(Decimal(row[field]) for row in body["by_buyer"]) + Decimal(body["other_buyers"][field])
                == Decimal(body[field])), field
    assert (sum(row["orders_completed"] for row in body["by_buyer"]) + body["other_buyers"]["orders_completed"]
            == body["orders_completed"] == 5)
    one = client.get("/api/v1/stats/summary?limit=1", headers=auth).get_json()
    assert one["other_villages"]["count"] == 1
    assert Decimal(one["by_village"][0]["sold_tonnes"]) + Decimal(one["other_villages"]["sold_tonnes"]) == Decimal(
        body["sold_tonnes"])
    for bad in ("0", "1001", "many"):
        response = client.get(f"/api/v1/stats/summary?limit={bad}", headers=auth)
        assert response.status_code == 422, bad


def test_a_long_table_shows_its_first_rows_or_its_subtotals_on_the_page():
    from marketplace.stats.report_tables import Column, Table

    flat = Table("t", "T", [Column("a")], screen_limit=20)
    for i in range(30):
        flat.add([i])
    assert [values for values, _level in flat.on_screen()] == [[i] for i in range(20)]
    tree = Table("v", "V", [Column("a")], screen_limit=20)
    for county in range(3):
        tree.add([f"c{county}"], "county")
        for village in range(10):
            tree.add([f"c{county}v{village}"])
    assert [values for values, _level in tree.on_screen()] == [["c0"], ["c1"], ["c2"]]
    short = Table("s", "S", [Column("a")], screen_limit=20)
    short.add([1], "county")
    short.add([2])
    assert len(short.on_screen()) == 2
