"""Spreadsheet uploads that would stop a web worker are refused early, in the reader's language, within a
few seconds: padded dimensions, rows far below the data, shared-strings and compression bombs, wide
sheets, oversized files. The bombs are built here, byte for byte."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from openpyxl import Workbook

from marketplace.footprint import sheets
from marketplace.footprint.sheets import MAX_COLUMNS, MAX_ROWS, SpreadsheetRejected, read_activity_sheet
from tests.test_footprint_web import _create_event, _lines, _upload, buyer_client, factors  # noqa: F401

#: What any refusal may cost, end to end through the request, on a busy 2-core machine.
SECONDS = 3.0
#: What the reader alone may spend on a bomb (well under a second on an idle machine).
READER_SECONDS = 2.0

HEADER_ROW = ('<row r="1"><c r="A1" t="inlineStr"><is><t>category</t></is></c>'
              '<c r="B1" t="inlineStr"><is><t>factor_code</t></is></c>'
              '<c r="C1" t="inlineStr"><is><t>quantity</t></is></c></row>')


def _template_parts() -> dict[str, bytes]:
    workbook = Workbook()
    workbook.active.title = "activities"
    workbook.active.append(["category", "factor_code", "quantity"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _xlsx_with_sheet(sheet_xml: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A real workbook whose first sheet's XML is replaced by ``sheet_xml``."""
    parts = _template_parts()
    parts["xl/worksheets/sheet1.xml"] = sheet_xml.encode()
    parts.update(extra or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _sheet(rows: str, dimension: str | None) -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'{dim}<sheetData>{HEADER_ROW}{rows}</sheetData></worksheet>')


LAST_ROW_CELL = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'


def dimension_bomb() -> bytes:
    """The audit's file: 1.5 kB declaring A1:XFD1048576, one cell at the last row."""
    return _xlsx_with_sheet(_sheet(LAST_ROW_CELL, "A1:XFD1048576"))


def undeclared_far_row() -> bytes:
    """The same without a dimension (or with one that lies): the reader must still stop at the cap."""
    return _xlsx_with_sheet(_sheet('<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>venue</t></is></c></row>',
                                   None))


def lying_dimension() -> bytes:
    return _xlsx_with_sheet(_sheet('<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>venue</t></is></c></row>',
                                   "A1:C3"))


def shared_strings_bomb() -> bytes:
    """A few hundred kB that unpack to a shared-strings table of millions of entries."""
    count = 4_000_000
    table = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{count}" '
             f'uniqueCount="{count}">' + "<si><t>a</t></si>" * count + "</sst>")
    return _xlsx_with_sheet(_sheet("", "A1:C1"), {"xl/sharedStrings.xml": table.encode()})


def ratio_bomb() -> bytes:
    """A sheet part of 1 MB of padding that packs to a few kB (under the per-part size, over the ratio)."""
    padding = "<!--" + " " * (1024 * 1024) + "-->"
    return _xlsx_with_sheet(_sheet(padding, "A1:C1"))


def wide_declared() -> bytes:
    return _xlsx_with_sheet(_sheet("", "A1:ZZ2"))


def wide_undeclared() -> bytes:
    """Rows each with a cell in the sheet's last column (XFD) and no dimension."""
    cells = "".join(f'<row r="{n}"><c r="XFD{n}" t="inlineStr"><is><t>x</t></is></c></row>' for n in range(2, 500))
    return _xlsx_with_sheet(_sheet(cells, None))


def blank_rows_then_data() -> bytes:
    """MAX_ROWS blank rows (real, empty row elements) and then one activity: blank rows count."""
    blanks = "".join(f'<row r="{n}"/>' for n in range(2, MAX_ROWS + 3))
    data = (f'<row r="{MAX_ROWS + 3}"><c r="A{MAX_ROWS + 3}" t="inlineStr"><is><t>venue</t></is></c>'
            f'<c r="B{MAX_ROWS + 3}" t="inlineStr"><is><t>venue.grid_cn_2023</t></is></c>'
            f'<c r="C{MAX_ROWS + 3}"><v>1</v></c></row>')
    return _xlsx_with_sheet(_sheet(blanks + data, None))


@pytest.fixture
def english(app):
    """A request of an English reader: the refusals' wording is checked in English."""
    with app.test_request_context("/?lang=en"):
        yield


BOMBS = [
    ("dimension bomb", dimension_bomb, "Too many rows"),
    ("far row, no dimension", undeclared_far_row, "Too many rows"),
    ("far row, lying dimension", lying_dimension, "Too many rows"),
    ("shared strings bomb", shared_strings_bomb, "unpacks to far more data"),
    ("compression ratio", ratio_bomb, "unpacks to far more data"),
    ("declared wide", wide_declared, "Too many columns"),
    # Cells beyond the columns read are never padded to nor looked at: the sheet reads as having no rows.
    ("undeclared wide", wide_undeclared, "no activity rows"),
    ("blank rows counted", blank_rows_then_data, "Too many rows"),
]


@pytest.mark.parametrize(("name", "build", "message"), BOMBS, ids=[b[0] for b in BOMBS])
def test_each_bomb_is_refused_by_the_reader_within_two_seconds(english, name, build, message):
    payload = build()
    started = time.monotonic()
    with pytest.raises(SpreadsheetRejected) as refused:
        read_activity_sheet("bomb.xlsx", payload)
    assert time.monotonic() - started < READER_SECONDS, name
    assert message in refused.value.errors[0].message


def test_the_audits_dimension_bomb_is_small(english):
    assert len(dimension_bomb()) < 8192  # openpyxl's styles and theme included


@pytest.mark.parametrize(("name", "build"), [("dimension bomb", dimension_bomb), ("shared strings", shared_strings_bomb),
                                             ("far row", undeclared_far_row)])
def test_a_bomb_uploaded_through_the_page_answers_quickly_in_chinese_and_saves_nothing(buyer_client, app, name,  # noqa: F811
                                                                                        build):
    event_id = _create_event(buyer_client)
    payload = build()
    started = time.monotonic()
    response = _upload(buyer_client, event_id, payload)
    assert time.monotonic() - started < SECONDS, name
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "未导入" in html or "没有保存" in html  # the page speaks the default language
    assert _lines(app, event_id) == 0


def test_the_refusal_is_in_english_for_an_english_reader(buyer_client, app):  # noqa: F811 — the fixture
    event_id = _create_event(buyer_client)
    buyer_client.get(f"/buyers/events/{event_id}?lang=en")  # remembered for the visit
    response = _upload(buyer_client, event_id, dimension_bomb())
    assert response.status_code == 422
    assert "Too many rows" in response.get_data(as_text=True)


def test_csv_blank_lines_and_wide_rows_count(english):
    blank_then_data = "category,factor_code,quantity\n" + "\n" * (MAX_ROWS + 1) + "venue,venue.grid_cn_2023,1\n"
    with pytest.raises(SpreadsheetRejected) as refused:
        read_activity_sheet("a.csv", blank_then_data.encode())
    assert "Too many rows" in refused.value.errors[0].message
    wide = "category,factor_code,quantity\n" + ",".join(["x"] * (MAX_COLUMNS + 1)) + "\n"
    with pytest.raises(SpreadsheetRejected) as refused:
        read_activity_sheet("a.csv", wide.encode())
    assert "Too many columns" in refused.value.errors[0].message


def test_an_upload_larger_than_the_cap_is_refused_before_it_is_opened(english):
    with pytest.raises(SpreadsheetRejected) as refused:
        read_activity_sheet("a.xlsx", b"PK" + b"\0" * sheets.MAX_UPLOAD_BYTES)
    assert "larger than" in refused.value.errors[0].message


def test_a_slow_read_is_cut_off_by_the_deadline(english, monkeypatch):
    """Whatever bound a file slips past, the read stops after MAX_READ_SECONDS."""
    monkeypatch.setattr(sheets, "MAX_READ_SECONDS", 0.0)
    rows = "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>venue</t></is></c></row>' for n in range(2, 50))
    with pytest.raises(SpreadsheetRejected) as refused:
        read_activity_sheet("a.xlsx", _xlsx_with_sheet(_sheet(rows, None)))
    assert "took too long" in refused.value.errors[0].message


def test_the_template_and_a_full_sheet_still_import(english):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "activities"
    sheet.append(["category", "factor_code", "quantity", "description"])
    for _ in range(MAX_ROWS):
        sheet.append(["venue", "venue.grid_cn_2023", 1, "x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    started = time.monotonic()
    activities, errors = read_activity_sheet("a.xlsx", buffer.getvalue())
    assert len(activities) == MAX_ROWS and errors == []
    assert time.monotonic() - started < SECONDS


def test_gunicorn_has_a_request_timeout_and_a_graceful_stop():
    from tests.test_compose import ROOT

    config: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), config)  # noqa: S102 — our own settings file
    assert 0 < config["timeout"] <= 30
    assert 0 < config["graceful_timeout"] <= 15
    assert config["limit_request_line"] > 0
