"""The guideline's emission sources on activity lines: the default a factor names, the choice on the form, the
API and the spreadsheet (a source of another category refused, nothing saved), and the footprint by category
and source with the accounting basis on the event page, the report, its PDF and the API."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pypdf import PdfReader

from marketplace.accounts.models import User
from marketplace.core.errors import ValidationFailed
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.footprint.models import ActivityLine
from marketplace.footprint.sources import BY_CODE, CATEGORY_DEFAULTS, SOURCES, default_source
from tests.conftest import CsrfClient

SUMMIT = next(spec for spec in demo.DEMO_EVENTS if spec.key == "summit")


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


@pytest.fixture
def buyer_client(factors, factory, login):
    buyer = factory.user("buyer")
    client = login(buyer.email)
    client.buyer = buyer
    return client


def _auth(factory, user):
    return {"Authorization": f"Bearer {factory.token(user)}"}


def _event(client) -> int:
    response = CsrfClient(client).post_form("/buyers/events/new", {
        "name": "峰会", "starts_on": "2026-10-30", "ends_on": "2026-11-01", "location": "丽水"})
    assert response.status_code == 302
    return int(re.search(r"/buyers/events/(\d+)", response.headers["Location"]).group(1))


def _sources(app, event_id):
    with app.app_context():
        return list(db.session.scalars(sa.select(ActivityLine.source).where(ActivityLine.event_id == event_id)
                                       .order_by(ActivityLine.id)))


# --- the list and its defaults ----------------------------------------------------------------------

def test_every_shipped_factor_names_a_source_of_its_own_category(app, factors):
    expected = {
        "transport.flight_short": "air_travel", "transport.flight_long": "air_travel", "transport.hsr": "rail_travel",
        "transport.metro": "metro_travel", "transport.taxi": "taxi_travel", "transport.coach": "coach_travel",
        "transport.car": "private_car_travel", "transport.diesel": "official_cars",
        "venue.grid_east_2023": "venue_electricity", "venue.diesel_generator": "venue_stationary_fuel",
        "catering.natural_gas": "catering", "accommodation.hotel_room_night": "accommodation",
        "materials.paper": "materials", "waste.landfill": "waste_landfill", "waste.incineration": "waste_incineration",
    }
    for code, source in expected.items():
        assert default_source(code.split(".")[0], code) == source, code
    from marketplace.footprint.emission_factors import current_factors

    with app.app_context():
        for factor in current_factors(db.session):
            assert BY_CODE[default_source(factor.category, factor.code)].category == factor.category
    # A factor the bureau adds whose code says nothing: the category's first source.
    assert default_source("venue", "venue.something_new") == CATEGORY_DEFAULTS["venue"] == "venue_stationary_fuel"
    # Venue fuel and purchased electricity and heat are separate sources, each with its basis.
    assert {s.code for s in SOURCES if s.category == "venue"} == {
        "venue_stationary_fuel", "venue_electricity", "venue_heat"}
    assert all(str(s.basis) for s in SOURCES)


def test_a_line_takes_the_chosen_source_or_the_default_and_refuses_another_categorys(app, factors, factory):
    buyer = factory.user("buyer")
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        actor = db.session.get(User, buyer.id)
        event = footprint.create_event(db.session, actor, name="e", starts_on="2026-10-30", ends_on="2026-10-30",
                                       location="丽水")
        own_cars = footprint.add_activity(db.session, actor, event.id, footprint.ActivityInput(
            "transport", "transport.car", "120", "组委会公务车", "official_cars"))
        default = footprint.add_activity(db.session, actor, event.id, footprint.ActivityInput(
            "transport", "transport.car", "80"))
        assert (own_cars.source, default.source) == ("official_cars", "private_car_travel")
        for source, message in [("venue_heat", "属于会场"), ("nonsense", "未知的排放源"), (7, "排放源")]:
            with pytest.raises(ValidationFailed) as refused:
                footprint.validate_activity(db.session, footprint.ActivityInput(
                    "transport", "transport.car", "1", "", source))
            assert refused.value.field == "source" and message in str(refused.value.message), source
        breakdown = footprint.event_breakdown(db.session, event.id)
        assert breakdown.by_source == {"official_cars": own_cars.emissions_units,
                                       "private_car_travel": default.emissions_units}
        assert sum(breakdown.by_source.values()) == breakdown.total_units


# --- the form, the page, the report -------------------------------------------------------------------

def test_the_line_form_takes_a_source_and_a_bad_one_is_a_form_error_that_keeps_what_was_typed(buyer_client, app):
    event_id = _event(buyer_client)
    page = f"/buyers/events/{event_id}"
    form = CsrfClient(buyer_client)
    html = buyer_client.get(page).get_data(as_text=True)
    assert 'name="line-source"' in html and '<label for="line-source">' in html
    assert '<optgroup label="会场"><option value="venue_stationary_fuel">' in html
    refused = form.post_form(page, {"line-category": "transport", "line-factor_code": "transport.car",
                                    "line-quantity": "12.5", "line-source": "venue_heat"}, action=f"{page}/lines")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert re.search(r'id="line-source-error">[^<]*不属于交通|id="line-source-error">[^<]*属于会场', text), text[-3000:]
    assert 'value="12.5"' in text
    assert _sources(app, event_id) == []
    for source in ("official_cars", ""):
        added = form.post_form(page, {"line-category": "transport", "line-factor_code": "transport.car",
                                      "line-quantity": "100", "line-source": source}, action=f"{page}/lines")
        assert added.status_code == 302
    added = form.post_form(page, {"venue-factor_code": "venue.grid_east_2023", "venue-kwh": "34856.9"},
                           action=f"{page}/helpers/venue")
    assert added.status_code == 302
    assert _sources(app, event_id) == ["official_cars", "private_car_travel", "venue_electricity"]
    html = buyer_client.get(page).get_data(as_text=True)
    assert "移动源化石燃料：公务用车" in html and "外购电力" in html and "核算依据" in html
    report = buyer_client.get(f"{page}/report").get_data(as_text=True)
    assert "外购电力" in report and "19.1713" in report


def test_the_pdf_report_lists_each_category_by_source_with_its_basis(buyer_client, app):
    event_id = _event(buyer_client)
    page = f"/buyers/events/{event_id}"
    CsrfClient(buyer_client).post_form(page, {"venue-factor_code": "venue.grid_east_2023", "venue-kwh": "34856.9"},
                                       action=f"{page}/helpers/venue")
    pdf = buyer_client.get(f"{page}/report.pdf")
    assert pdf.status_code == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Purchased electricity" in text and "Metered kWh" in text and "19.1713" in text


# --- the API ------------------------------------------------------------------------------------------

def _summit_body(**source_of):
    return {"name": SUMMIT.name, "starts_on": "2026-10-30", "ends_on": "2026-11-01", "location": "丽水",
            "activities": [{"category": c, "factor_code": code, "quantity": q,
                            **({"source": source_of[code]} if code in source_of else {})}
                           for c, code, q, _d in SUMMIT.lines]}


def test_the_api_takes_sources_and_answers_by_category_and_source(client, factors, factory):
    buyer = factory.user("buyer")
    response = client.post("/api/v1/events", json=_summit_body(**{"transport.taxi": "private_car_travel"}),
                           headers=_auth(factory, buyer))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["total_tco2e"] == "175.4020"
    by_source = {row["source"]: row for row in body["by_source"]}
    assert by_source["venue_electricity"]["tco2e"] == "19.1713" and by_source["venue_electricity"]["accounting_basis"]
    assert "taxi_travel" not in by_source and by_source["private_car_travel"]["category"] == "transport"
    transport = sum(int(row["tco2e"].replace(".", "")) for row in body["by_source"] if row["category"] == "transport")
    assert transport == int(body["by_category"]["transport"].replace(".", ""))
    assert {line["source"] for line in body["lines"]} >= {"rail_travel", "air_travel", "coach_travel"}


@pytest.mark.parametrize("source, expected", [("venue_heat", "belongs to"), ("metro", "Unknown emission source"),
                                              (5, "Send the emission source")])
def test_the_api_refuses_a_bad_source_with_a_422_naming_it_and_saves_nothing(app, client, factors, factory,
                                                                               source, expected):
    buyer = factory.user("buyer")
    response = client.post("/api/v1/events?lang=en", json=_summit_body(**{"transport.hsr": source}),
                           headers=_auth(factory, buyer))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert expected in error["message"] and "activities[0].source" in str(error)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ActivityLine)) == 0


def test_the_api_document_describes_the_source_fields(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    activity = next(s for name, s in schemas.items() if name.startswith("Activity"))
    assert "source" in activity["properties"]
    assert "by_source" in schemas["Event"]["properties"]


# --- spreadsheets ---------------------------------------------------------------------------------------

def _upload(client, event_id, data: bytes):
    page = f"/buyers/events/{event_id}"
    token = CsrfClient(client).csrf_token(page)
    return client.post(f"{page}/upload", data={"csrf_token": token, "upload-csrf_token": token,
                                               "upload-file": (io.BytesIO(data), "activities.xlsx")},
                       content_type="multipart/form-data")


def test_the_template_lists_the_sources_and_an_upload_records_them(buyer_client, app):
    event_id = _event(buyer_client)
    workbook = load_workbook(io.BytesIO(buyer_client.get("/buyers/events/template.xlsx").data))
    listed = {row[3]: row for row in workbook["排放源"].iter_rows(min_row=2, values_only=True)}
    assert set(listed) == set(BY_CODE) and listed["venue_electricity"][0] == "外购电力"
    assert listed["venue_electricity"][2]  # the accounting basis
    sheet = workbook["活动数据"]
    rules = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert rules["E2:E2001"].startswith("='排放源'!$A$2:$A$")
    sheet.append(["交通", "transport.car", 100, "", "移动源化石燃料：公务用车"])
    sheet.append(["交通", "transport.car", 50, "", ""])
    sheet.append(["Venue", "venue.grid_east_2023", 10, "", "Purchased electricity"])
    bad = io.BytesIO()
    workbook.save(bad)
    # a source of another category, on the last row: the whole upload is refused
    wrong = load_workbook(io.BytesIO(bad.getvalue()))
    wrong["活动数据"].append(["餐饮", "catering.meal_standard", 10, "", "外购电力"])
    wrong["活动数据"].append(["餐饮", "catering.meal_standard", 10, "", "不存在的排放源"])
    wrong_bytes = io.BytesIO()
    wrong.save(wrong_bytes)
    html = _upload(buyer_client, event_id, wrong_bytes.getvalue()).get_data(as_text=True)
    assert "<td>5</td><td>排放源</td><td>排放源“外购电力”属于会场，而不是餐饮。" in html, html[-3000:]
    assert "<td>6</td><td>排放源</td><td>未知的排放源“不存在的排放源”" in html
    assert _sources(app, event_id) == []
    response = _upload(buyer_client, event_id, bad.getvalue())
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    assert _sources(app, event_id) == ["official_cars", "private_car_travel", "venue_electricity"]
