"""Buyers build an event's footprint by form, helper or spreadsheet, see it, and download the report."""

import csv
import io
import re
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.footprint.models import ActivityLine, Event
from marketplace.footprint.sheets import MAX_ROWS
from tests.conftest import CsrfClient, service_missing

SUMMIT_ROWS = [row for spec in demo.DEMO_EVENTS if spec.key == "summit" for row in spec.lines]


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


def _create_event(client, **overrides) -> int:
    data = {"name": "第十届“智汇丽水”人才科技峰会", "starts_on": "2026-10-30", "ends_on": "2026-11-01",
            "location": "浙江省丽水市", "attendees": "800", "organiser": "", "boundary": ""}
    data.update(overrides)
    response = CsrfClient(client).post_form("/buyers/events/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(re.search(r"/buyers/events/(\d+)", response.headers["Location"]).group(1))


def _xlsx(rows, header=("category", "factor_code", "quantity", "description")) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "activities"
    if header:
        sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _upload(client, event_id, data: bytes, filename="activities.xlsx"):
    page = f"/buyers/events/{event_id}"
    token = CsrfClient(client).csrf_token(page)
    return client.post(f"{page}/upload", data={"csrf_token": token, "upload-csrf_token": token,
                                               "upload-file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def _lines(app, event_id):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(ActivityLine)
                                 .where(ActivityLine.event_id == event_id))


def test_a_buyer_builds_the_summit_by_form_and_sees_the_breakdown(buyer_client, app):
    event_id = _create_event(buyer_client)
    form = CsrfClient(buyer_client)
    page = f"/buyers/events/{event_id}"
    for category, code, quantity, description in SUMMIT_ROWS:
        response = form.post_form(page, {"line-category": category, "line-factor_code": code,
                                         "line-quantity": quantity, "line-description": description},
                                  action=f"{page}/lines")
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    html = buyer_client.get(page).get_data(as_text=True)
    assert "175.4020" in html and "19.1713" in html and "95.2224" in html
    assert f'href="/buyers/orders/new?event_id={event_id}"' in html
    events = buyer_client.get("/buyers/events").get_data(as_text=True)
    assert "175.4020" in events


def test_helpers_on_the_page(buyer_client, app):
    event_id = _create_event(buyer_client)
    form = CsrfClient(buyer_client)
    page = f"/buyers/events/{event_id}"
    for kind, data in [
        ("travel", {"travel-factor_code": "transport.hsr", "travel-travellers": "600", "travel-distance_km": "260",
                    "travel-round_trip": "y"}),
        ("rooms", {"rooms-factor_code": "accommodation.hotel_room_night", "rooms-rooms": "450", "rooms-nights": "2"}),
        ("meals", {"meals-factor_code": "catering.meal_standard", "meals-people": "800", "meals-meals_each": "3"}),
        ("venue", {"venue-factor_code": "venue.grid_east_2023", "venue-kwh": "34856.9"}),
    ]:
        response = form.post_form(page, data, action=f"{page}/helpers/{kind}")
        assert response.status_code == 302, (kind, response.get_data(as_text=True)[:3000])
    html = buyer_client.get(page).get_data(as_text=True)
    # 11.0729 + 48.1500 + 4.5041 + 19.1713
    assert "82.8983" in html
    bad = form.post_form(page, {"rooms-factor_code": "accommodation.hotel_room_night", "rooms-rooms": "-4",
                                "rooms-nights": "2"}, action=f"{page}/helpers/rooms")
    assert bad.status_code == 422 and "大于零" in bad.get_data(as_text=True)


def test_bad_form_input_shows_the_message_beside_the_field(buyer_client, app):
    event_id = _create_event(buyer_client)
    page = f"/buyers/events/{event_id}"
    response = CsrfClient(buyer_client).post_form(
        page, {"line-category": "transport", "line-factor_code": "venue.grid_cn_2023", "line-quantity": "10"},
        action=f"{page}/lines")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="line-factor_code-error"' in html
    response = CsrfClient(buyer_client).post_form(
        f"{page}?lang=en", {"line-category": "venue", "line-factor_code": "venue.grid_cn_2023", "line-quantity": "-10"},
        action=f"{page}/lines")
    assert response.status_code == 422 and "The quantity must be positive." in response.get_data(as_text=True)
    assert _lines(app, event_id) == 0
    bad_dates = CsrfClient(buyer_client).post_form("/buyers/events/new", {
        "name": "x", "starts_on": "2026-11-02", "ends_on": "2026-11-01", "location": "y"})
    assert bad_dates.status_code == 422 and "The event cannot end before it starts." in bad_dates.get_data(as_text=True)


def test_spreadsheet_round_trip_template_fill_upload(buyer_client, app):
    event_id = _create_event(buyer_client)
    template = buyer_client.get("/buyers/events/template.xlsx")
    assert template.status_code == 200
    workbook = load_workbook(io.BytesIO(template.data))
    sheet = workbook["活动数据"]
    assert [c.value for c in sheet[1]] == ["类别", "排放因子", "数量", "说明", "排放源"]
    codes = {row[6] for row in workbook["排放因子"].iter_rows(min_row=2, values_only=True)}
    assert {code for _c, code, _q, _d in SUMMIT_ROWS} <= codes
    for category, code, quantity, description in SUMMIT_ROWS:
        # numbers typed into Excel arrive as numbers, not text
        sheet.append([category, code, float(quantity) if "." in quantity else int(quantity), description])
    filled = io.BytesIO()
    workbook.save(filled)
    response = _upload(buyer_client, event_id, filled.getvalue())
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    assert _lines(app, event_id) == len(SUMMIT_ROWS)
    assert "175.4020" in buyer_client.get(f"/buyers/events/{event_id}").get_data(as_text=True)


def test_csv_upload_works_too(buyer_client, app):
    event_id = _create_event(buyer_client)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["category", "factor_code", "quantity"])
    writer.writerow(["venue", "venue.grid_east_2023", "34856.9"])
    response = _upload(buyer_client, event_id, text.getvalue().encode("utf-8-sig"), "lines.csv")
    assert response.status_code == 302
    assert "19.1713" in buyer_client.get(f"/buyers/events/{event_id}").get_data(as_text=True)


@pytest.mark.parametrize("name, payload, filename, expected", [
    ("wrong columns", _xlsx([("venue", "venue.grid_cn_2023", 1)], header=("类别", "factor", "qty")), "a.xlsx",
     "Missing columns"),
    ("not a workbook", b"PK\x03\x04 nonsense", "a.xlsx", "not a readable .xlsx"),
    ("wrong type", b"hello", "a.txt", "as .xlsx or .csv"),
    ("empty", _xlsx([]), "a.xlsx", "no activity rows"),
])
def test_spreadsheets_refused_as_a_whole(buyer_client, app, name, payload, filename, expected):
    event_id = _create_event(buyer_client)
    response = _upload(buyer_client, event_id, payload, filename)
    buyer_client.get("/?lang=en")
    response = _upload(buyer_client, event_id, payload, filename)
    assert response.status_code == 422, name
    assert expected in response.get_data(as_text=True), name
    assert _lines(app, event_id) == 0


def test_per_row_errors_in_the_users_language_and_nothing_saved(buyer_client, app):
    event_id = _create_event(buyer_client)
    payload = _xlsx([
        ("venue", "venue.grid_cn_2023", 100),            # fine
        ("venue", "venue.grid_cn_2023", -5),             # negative
        ("transport", "venue.grid_cn_2023", 1),          # category mismatch
        ("waste", "waste.nothing", 1),                   # unknown code
        ("venue", "venue.grid_cn_2023", "=A1*2"),        # formula
    ])
    response = _upload(buyer_client, event_id, payload)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "数量必须为正数" in html and "未知或已停用的排放因子“waste.nothing”" in html and "不接受公式" in html
    assert re.search(r"<td>3</td><td>数量</td>", html) and re.search(r"<td>6</td><td>数量</td>", html)
    assert re.search(r"<td>4</td><td>排放因子</td><td>排放因子“venue.grid_cn_2023”属于会场，而不是交通。", html)
    assert _lines(app, event_id) == 0
    buyer_client.get("/?lang=en")
    html = _upload(buyer_client, event_id, payload).get_data(as_text=True)
    assert "The quantity must be positive." in html and "Formulas are not accepted" in html


def test_merged_cells_are_refused(buyer_client, app):
    event_id = _create_event(buyer_client)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["category", "factor_code", "quantity", "description"])
    sheet.append(["venue", "venue.grid_cn_2023", 10, "a"])
    sheet.append(["venue", "venue.grid_cn_2023", 10, "b"])
    sheet.merge_cells("D2:D3")
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = _upload(buyer_client, event_id, buffer.getvalue())
    assert response.status_code == 422 and "合并单元格" in response.get_data(as_text=True)
    assert _lines(app, event_id) == 0


def test_a_hundred_thousand_rows_are_refused_quickly(buyer_client, app):
    event_id = _create_event(buyer_client)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("activities")
    sheet.append(["category", "factor_code", "quantity", "description"])
    for _ in range(100_000):
        sheet.append(["venue", "venue.grid_cn_2023", 1, ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = _upload(buyer_client, event_id, buffer.getvalue())
    html = response.get_data(as_text=True)
    # Refused before a row is read: the sheet unpacks past the workbook's size bounds (tests/test_sheet_bombs.py).
    assert response.status_code == 422 and "解压后的数据量" in html
    assert _lines(app, event_id) == 0


def test_ten_thousand_rows_are_refused_at_the_row_cap(buyer_client, app):
    event_id = _create_event(buyer_client)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("activities")
    sheet.append(["category", "factor_code", "quantity", "description"])
    for _ in range(10_000):
        sheet.append(["venue", "venue.grid_cn_2023", 1, ""])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = _upload(buyer_client, event_id, buffer.getvalue())
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "行数过多" in html and str(MAX_ROWS) in html
    assert _lines(app, event_id) == 0


def test_reductions_are_listed_and_the_report_page_has_chart_data(buyer_client, app):
    event_id = _create_event(buyer_client)
    page = f"/buyers/events/{event_id}"
    form = CsrfClient(buyer_client)
    form.post_form(page, {"line-category": "venue", "line-factor_code": "venue.grid_east_2023",
                          "line-quantity": "34856.9"}, action=f"{page}/lines")
    response = form.post_form(page, {"reduction-category": "materials", "reduction-description": "电子会议手册",
                                     "reduction-estimated_tonnes": "0.5"}, action=f"{page}/reductions")
    assert response.status_code == 302
    report = buyer_client.get(f"{page}/report")
    html = report.get_data(as_text=True)
    assert report.status_code == 200
    assert "电子会议手册" in html and "19.1713" in html and "vendor/echarts.min.js" in html
    assert 'data-chart="' in html and "&#34;19.1713&#34;" in html
    assert "生态环境部" in html  # the factor's source is disclosed
    assert f'href="/buyers/orders/new?event_id={event_id}"' in html


def test_the_pdf_report_is_bilingual_and_carries_the_figures(buyer_client, app, tmp_path):
    if shutil.which("pdftotext") is None:
        service_missing("pdftotext (poppler-utils)", "not on PATH")  # fails under REQUIRE_SERVICES=1
    event_id = _create_event(buyer_client)
    page = f"/buyers/events/{event_id}"
    form = CsrfClient(buyer_client)
    for category, code, quantity, _d in SUMMIT_ROWS:
        form.post_form(page, {"line-category": category, "line-factor_code": code, "line-quantity": quantity},
                       action=f"{page}/lines")
    form.post_form(page, {"reduction-category": "transport", "reduction-description": "新能源接驳车"},
                   action=f"{page}/reductions")
    response = buyer_client.get(f"{page}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    path = tmp_path / "report.pdf"
    path.write_bytes(response.data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("175.4020", "Event carbon footprint report", "活动碳排放核算报告", "交通", "Transport",
                     "95.2224", "19.1713", "新能源接驳车", "生态环境部", "DESNZ", "Emissions to offset"):
        assert expected in text, expected


def test_other_organisations_and_other_roles_cannot_see_an_event(buyer_client, app, factory, login):
    event_id = _create_event(buyer_client)
    other = factory.user("buyer")
    client = app.test_client()
    CsrfClient(client).post_form("/login", {"email": other.email, "password": "correct horse battery"})
    for path in (f"/buyers/events/{event_id}", f"/buyers/events/{event_id}/report",
                 f"/buyers/events/{event_id}/report.pdf"):
        assert client.get(path).status_code == 404
    response = CsrfClient(client).post_form("/buyers/events", {"line-category": "venue",
                                                               "line-factor_code": "venue.grid_cn_2023",
                                                               "line-quantity": "1"},
                                            action=f"/buyers/events/{event_id}/lines")
    assert response.status_code == 404
    assert _lines(app, event_id) == 0
    with app.app_context():
        assert db.session.get(Event, event_id) is not None


def test_bureau_publishes_a_new_version_and_retires_a_factor(factors, factory, login, app):
    bureau = factory.user("bureau")
    client = login(bureau.email)
    page = "/bureau/emission-factors"
    html = client.get(f"{page}?code=waste.landfill").get_data(as_text=True)
    assert 'value="waste.landfill"' in html and "0.467" in html
    response = CsrfClient(client).post_form(page, {
        "code": "waste.landfill", "category": "waste", "name_zh": "废弃物填埋", "name_en": "Waste to landfill",
        "unit": "kg", "kgco2e_per_unit": "0.5", "source": "test source", "year": "2024"})
    assert response.status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "waste.landfill</code> v2" in html
    bad = CsrfClient(client).post_form(page, {
        "code": "waste.landfill", "category": "waste", "name_zh": "x", "name_en": "x", "unit": "kg",
        "kgco2e_per_unit": "-1", "source": "s", "year": "2024"})
    assert bad.status_code == 422
    from marketplace.footprint.models import EmissionFactor

    with app.app_context():
        factor_id = db.session.scalar(sa.select(EmissionFactor.id).where(EmissionFactor.code == "waste.incineration"))
    response = CsrfClient(client).post_form(page, {}, action=f"{page}/{factor_id}/retire")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(EmissionFactor, factor_id).retired_at is not None


def test_buyers_cannot_use_the_bureau_factor_page(buyer_client):
    assert buyer_client.get("/bureau/emission-factors").status_code == 403


def test_removing_a_line_asks_first_and_removes_only_when_confirmed(buyer_client, app):
    event_id = _create_event(buyer_client)
    form = CsrfClient(buyer_client)
    page = f"/buyers/events/{event_id}"
    form.post_form(page, {"line-category": "transport", "line-factor_code": "transport.hsr",
                          "line-quantity": "1000", "line-description": "高铁"}, action=f"{page}/lines")
    with app.app_context():
        line_id = db.session.scalar(sa.select(ActivityLine.id).where(ActivityLine.event_id == event_id))
    asked = form.post_form(page, {}, action=f"{page}/lines/{line_id}/delete")
    assert asked.status_code == 200
    question = asked.get_data(as_text=True)
    assert "删除此行" in question and "高铁" in question and 'name="confirm" value="1"' in question
    assert _lines(app, event_id) == 1  # only asked
    done = form.post_form(page, {"confirm": "1"}, action=f"{page}/lines/{line_id}/delete")
    assert done.status_code == 302 and _lines(app, event_id) == 0
    again = form.post_form(page, {"confirm": "1"}, action=f"{page}/lines/{line_id}/delete")
    assert again.status_code == 404  # gone; a second click changes nothing


def test_a_chinese_template_comes_with_drop_downs_and_instructions_and_chinese_names_are_accepted(buyer_client, app):
    """The template speaks the reader's language: Chinese headers, drop-downs of category and factor names,
    an instructions sheet. A sheet filled with Chinese names (or English ones, or the old codes) imports;
    problems name the column as the template does and never show a code the person did not type."""
    from marketplace.footprint.models import EmissionFactor

    event_id = _create_event(buyer_client)
    workbook = load_workbook(io.BytesIO(buyer_client.get("/buyers/events/template.xlsx").data))
    assert workbook.sheetnames == ["活动数据", "排放因子", "排放源", "填写说明"]
    sheet = workbook["活动数据"]
    rules = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert "交通" in rules["A2:A2001"] and "transport" not in rules["A2:A2001"]
    assert rules["B2:B2001"].startswith("='排放因子'!$A$2:$A$")
    instructions = " ".join(str(row[0]) for row in workbook["填写说明"].iter_rows(values_only=True))
    assert "下拉列表" in instructions and "类别" in instructions
    with app.app_context():
        hsr = db.session.scalar(sa.select(EmissionFactor).where(EmissionFactor.code == "transport.hsr",
                                                                EmissionFactor.retired_at.is_(None)))
        venue = db.session.scalar(sa.select(EmissionFactor).where(EmissionFactor.code == "venue.grid_east_2023",
                                                                  EmissionFactor.retired_at.is_(None)))
        names = (hsr.name_zh, venue.name_en)
    factor_names = [row[0] for row in workbook["排放因子"].iter_rows(min_row=2, values_only=True)]
    assert names[0] in factor_names
    sheet.append(["交通", names[0], 156000, "高铁往返"])
    sheet.append(["Venue", names[1], "34856.9", ""])  # English names are accepted too
    filled = io.BytesIO()
    workbook.save(filled)
    response = _upload(buyer_client, event_id, filled.getvalue())
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    assert _lines(app, event_id) == 2

    bad = _xlsx([("交通工具", names[0], 1), ("餐饮", names[0], 1), ("交通", "不存在的因子", 1)],
                header=("类别", "排放因子", "数量", "说明"))
    html = _upload(buyer_client, event_id, bad).get_data(as_text=True)
    assert "<td>2</td><td>类别</td><td>未知的类别“交通工具”" in html
    assert f"<td>3</td><td>排放因子</td><td>排放因子“{names[0]}”属于交通，而不是餐饮。" in html
    assert "<td>4</td><td>排放因子</td><td>未知或已停用的排放因子“不存在的因子”" in html
    table = html[html.index("<td>2</td>"):html.index("</table>", html.index("<td>2</td>"))]
    assert "transport" not in table and "catering" not in table and "factor_code" not in table
    assert _lines(app, event_id) == 2


def test_the_line_form_names_a_mismatched_factor_by_its_name_not_its_code(buyer_client, app):
    event_id = _create_event(buyer_client)
    page = f"/buyers/events/{event_id}"
    response = CsrfClient(buyer_client).post_form(page, {
        "line-category": "transport", "line-factor_code": "venue.grid_east_2023", "line-quantity": "10",
        "line-description": ""}, action=f"{page}/lines")
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="line-factor_code-error">([^<]*)</p>', response.get_data(as_text=True))
    assert error and "属于会场，而不是交通" in error.group(1) and "venue." not in error.group(1), error
