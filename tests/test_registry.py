"""The registry as its users drive it: pages and API, uploads, authorisation, the ledger check command."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.registry.models import CreditBatch, LedgerBalance, Project, ProjectDocument
from tests.factories import MINIMAL_PDF


def _form(client, page):
    from tests.conftest import CsrfClient

    return CsrfClient(client).csrf_token(page)


def test_cooperative_to_public_registry_through_the_pages(app, factory, client, login):
    seller = factory.user("seller")
    bureau = factory.user("bureau")
    village = factory.village("官埔垟村")

    login(seller.email)
    token = _form(client, "/sellers/projects/new")
    response = client.post("/sellers/projects/new", data={
        "csrf_token": token, "name": "官埔垟村森林经营碳汇项目", "village_id": village.id, "area_hectares": "1436.8",
        "forest_type": "杉木林", "methodology": "CCER-14-001-V01", "crediting_start": "2016-01-01",
        "crediting_end": "2045-12-31"})
    assert response.status_code == 302, response.get_data(as_text=True)
    project_url = response.headers["Location"]
    project_id = int(project_url.rstrip("/").split("/")[-1])

    # Submitting without a document is refused with a message.
    client.post(f"/sellers/projects/{project_id}/submit", data={"csrf_token": _form(client, project_url)})
    assert "请先上传核证声明" in client.get(project_url).get_data(as_text=True)

    response = client.post(f"/sellers/projects/{project_id}/documents", data={
        "csrf_token": _form(client, project_url), "kind": "verification_statement",
        "file": (io.BytesIO(MINIMAL_PDF), "核证声明.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302
    client.post(f"/sellers/projects/{project_id}/submit", data={"csrf_token": _form(client, project_url)})
    client.post("/logout", data={"csrf_token": _form(client, project_url)})

    login(bureau.email)
    page = f"/bureau/projects/{project_id}"
    assert "官埔垟村森林经营碳汇项目" in client.get("/bureau/projects").get_data(as_text=True)
    # A rejection needs a note.
    response = client.post(f"{page}/review", data={"csrf_token": _form(client, page), "decision": "rejected"})
    assert response.status_code == 422
    response = client.post(f"{page}/review", data={"csrf_token": _form(client, page), "decision": "verified",
                                                   "note": "材料齐全"})
    assert response.status_code == 302
    response = client.post(f"{page}/batches", data={
        "csrf_token": _form(client, page), "quantity": "2000", "vintage_start": "2023-01-01",
        "vintage_end": "2023-12-31", "verification_body": "中环联合认证中心", "report_reference": "CEC-2023-01"})
    assert response.status_code == 422  # not confirmed: issuing cannot be undone
    assert "请勾选以确认" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditBatch)) == 0
    response = client.post(f"{page}/batches", data={
        "csrf_token": _form(client, page), "quantity": "2000", "vintage_start": "2023-01-01",
        "vintage_end": "2023-12-31", "verification_body": "中环联合认证中心", "report_reference": "CEC-2023-01",
        "confirmed": "y"})
    assert response.status_code == 302
    client.post("/logout", data={"csrf_token": _form(client, page)})

    login(seller.email)
    html = client.get(project_url).get_data(as_text=True)
    batch_id = re.search(r'<option value="(\d+)">2023', html).group(1)
    response = client.post("/sellers/listings", data={"csrf_token": _form(client, project_url), "batch_id": batch_id,
                                                      "quantity": "1500", "price": "36.00", "min_order": "1"})
    assert response.status_code == 302

    public = client.get("/registry/").get_data(as_text=True)
    assert "官埔垟村森林经营碳汇项目" in public
    assert "TH-P" in public and "…" in public  # the serial block
    listings = client.get("/api/v1/listings").get_json()
    assert [(x["village"], x["available_tonnes"], x["price_cny_per_tonne"]) for x in listings] == [
        ("官埔垟村", "1500.0000", "36.00")]


@pytest.mark.parametrize("raw", ["1e3", "-1", "0", "NaN", "1.00001", "１２", "abc", "", "Infinity"])
def test_listing_quantities_are_parsed_in_one_place(app, factory, client, raw):
    batch = factory.batch(tonnes="100")
    token = factory.token(batch.project.seller)
    response = client.post("/api/v1/listings", json={"batch_id": batch.id, "quantity_tonnes": raw,
                                                     "price_cny_per_tonne": "30.00"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == "quantity_tonnes"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerBalance)
                                 .where(LedgerBalance.account.like("listed:%"))) == 0


def test_api_flow_and_listing_actions(app, factory, client):
    seller = factory.user("seller")
    bureau = factory.user("bureau")
    village = factory.village()
    seller_auth = {"Authorization": f"Bearer {factory.token(seller)}"}
    bureau_auth = {"Authorization": f"Bearer {factory.token(bureau)}"}
    response = client.post("/api/v1/projects", headers=seller_auth, json={
        "village_id": village.id, "name": "测试项目", "area_hectares": "10.5", "forest_type": "竹林",
        "methodology": "CCER-14-002-V01", "crediting_start": "2020-01-01", "crediting_end": "2030-12-31"})
    assert response.status_code == 201, response.get_json()
    project_id = response.get_json()["id"]
    response = client.post(f"/api/v1/projects/{project_id}/submit", headers=seller_auth)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "document"
    with app.app_context():
        from marketplace.accounts.models import User
        from marketplace.registry import service as registry

        registry.add_document(db.session, db.session.get(Project, project_id), actor=db.session.get(User, seller.id),
                              kind="monitoring_report", filename="m.pdf", data=MINIMAL_PDF)
        db.session.commit()
    assert client.post(f"/api/v1/projects/{project_id}/submit", headers=seller_auth).status_code == 200
    # Only the bureau reviews; a seller's token is refused.
    assert client.post(f"/api/v1/projects/{project_id}/review", headers=seller_auth,
                       json={"decision": "verified"}).status_code == 403
    assert client.get(f"/api/v1/projects/{project_id}").status_code == 404  # not public until verified
    response = client.post(f"/api/v1/projects/{project_id}/review", headers=bureau_auth, json={"decision": "verified"})
    assert response.get_json()["status"] == "verified"
    response = client.post(f"/api/v1/projects/{project_id}/batches", headers=bureau_auth, json={
        "quantity_tonnes": "175.402", "vintage_start": "2023-01-01", "vintage_end": "2023-12-31",
        "verification_body": "中环联合", "report_reference": "R-1"})
    assert response.status_code == 201, response.get_json()
    batch = response.get_json()
    assert batch["quantity_tonnes"] == "175.4020" and batch["buffer_tonnes"] == "17.5402"
    assert batch["balances"]["available_tonnes"] == "157.8618"
    # Vintage outside the crediting period, and overlapping vintage, are refused.
    for start, end in (("2031-01-01", "2031-12-31"), ("2023-06-01", "2023-06-30")):
        bad = client.post(f"/api/v1/projects/{project_id}/batches", headers=bureau_auth, json={
            "quantity_tonnes": "1", "vintage_start": start, "vintage_end": end, "verification_body": "x",
            "report_reference": "y"})
        assert bad.status_code == 422
    response = client.post("/api/v1/listings", headers=seller_auth, json={
        "batch_id": batch["id"], "quantity_tonnes": "157.8619", "price_cny_per_tonne": "30"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "insufficient_credits"
    response = client.post("/api/v1/listings", headers=seller_auth, json={
        "batch_id": batch["id"], "quantity_tonnes": "100", "price_cny_per_tonne": "30"})
    listing_id = response.get_json()["id"]
    assert client.post(f"/api/v1/listings/{listing_id}/pause", headers=seller_auth).get_json()["status"] == "paused"
    assert client.get("/api/v1/listings").get_json() == []
    assert client.post(f"/api/v1/listings/{listing_id}/pause", headers=seller_auth).status_code == 409
    assert client.post(f"/api/v1/listings/{listing_id}/resume", headers=seller_auth).status_code == 200
    assert client.post(f"/api/v1/listings/{listing_id}/withdraw", headers=seller_auth).status_code == 200
    assert client.get(f"/api/v1/batches/{batch['id']}").get_json()["balances"]["available_tonnes"] == "157.8618"
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/listings", "/api/v1/projects/{project_id}/batches", "/api/v1/listings/{listing_id}/{action}"):
        assert path in spec["paths"]


def test_another_cooperative_sees_404_everywhere(app, factory, client, login):
    project = factory.project(verified=False)
    with app.app_context():
        from marketplace.accounts.models import User
        from marketplace.registry import service as registry

        doc = registry.add_document(db.session, db.session.get(Project, project.id),
                                    actor=db.session.get(User, project.seller.id), kind="other", filename="a.pdf",
                                    data=MINIMAL_PDF)
        db.session.commit()
        doc_id = doc.id
    listing = factory.listing()
    intruder = factory.user("seller")
    auth = {"Authorization": f"Bearer {factory.token(intruder)}"}
    assert client.post(f"/api/v1/projects/{project.id}/submit", headers=auth).status_code == 404
    assert client.post(f"/api/v1/listings/{listing.id}/withdraw", headers=auth).status_code == 404
    assert client.post("/api/v1/listings", headers=auth, json={
        "batch_id": listing.batch_id, "quantity_tonnes": "1", "price_cny_per_tonne": "1"}).status_code == 404
    login(intruder.email)
    for url in (f"/sellers/projects/{project.id}", f"/sellers/documents/{doc_id}"):
        assert client.get(url).status_code == 404
    token = _form(client, "/sellers/listings")
    assert client.post(f"/sellers/listings/{listing.id}/withdraw", data={"csrf_token": token}).status_code == 404
    # Nor may a cooperative use the bureau's pages.
    assert client.get(f"/bureau/documents/{doc_id}").status_code == 403


@pytest.mark.parametrize(("filename", "data", "message"), [
    ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "只接受 PDF"),
    ("empty.pdf", b"", "文件为空"),
    ("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024) + b"\n%%EOF\n", "文件太大：最多 10 MB。"),
])
def test_uploads_are_checked_from_their_content(app, factory, client, login, filename, data, message):
    project = factory.project(verified=False)
    login(project.seller.email)
    page = f"/sellers/projects/{project.id}"
    response = client.post(f"{page}/documents", data={"csrf_token": _form(client, page), "kind": "other",
                                                      "file": (io.BytesIO(data), filename)},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProjectDocument)) == 0


def test_upload_names_cannot_choose_the_path(app, factory, client, login, tmp_path):
    project = factory.project(verified=False)
    login(project.seller.email)
    page = f"/sellers/projects/{project.id}"
    response = client.post(f"{page}/documents", data={
        "csrf_token": _form(client, page), "kind": "other",
        "file": (io.BytesIO(MINIMAL_PDF), "../../../../etc/cron.d/evil.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        doc = db.session.scalar(sa.select(ProjectDocument))
        assert re.fullmatch(r"[0-9a-f]{32}\.pdf", doc.stored_name)
        assert doc.original_name == "evil.pdf"
        from marketplace.registry.service import document_path

        assert document_path(doc).read_bytes() == MINIMAL_PDF
    download = client.get(f"/sellers/documents/{doc.id}")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    too_big = client.post(f"{page}/documents", data={
        "csrf_token": _form(client, page), "kind": "other",
        "file": (io.BytesIO(b"0" * (21 * 1024 * 1024)), "huge.pdf")}, content_type="multipart/form-data")
    assert too_big.status_code == 413  # no page of ours sent it (no Referer): the error page, same limit
    assert "最大 10 MB" in too_big.get_data(as_text=True)


def test_an_upload_over_the_limit_is_answered_on_its_form_with_the_one_limit(app, factory, client, login):
    project = factory.project(verified=False)
    login(project.seller.email)
    page = f"/sellers/projects/{project.id}"
    form_page = client.get(page).get_data(as_text=True)
    assert "最多 10 MB。" in form_page and "20 MB" not in form_page
    # Over the whole request's limit (11 MiB): back on the form with the message, not a bare 413 page.
    too_big = client.post(f"{page}/documents", data={
        "csrf_token": _form(client, page), "kind": "other",
        "file": (io.BytesIO(b"%PDF-" + b"0" * (12 * 1024 * 1024)), "huge.pdf")}, content_type="multipart/form-data",
        headers={"Referer": f"http://localhost{page}"})
    assert too_big.status_code == 302 and too_big.headers["Location"] == page
    shown = client.get(page).get_data(as_text=True)
    assert "文件太大：最多 10 MB。未上传任何内容，请选择较小的文件。" in shown and "flash-kept" in shown
    # Just over the file limit but inside the request's: refused by name on the form, the same words.
    over = client.post(f"{page}/documents", data={
        "csrf_token": _form(client, page), "kind": "other",
        "file": (io.BytesIO(b"%PDF-" + b"0" * (10 * 1024 * 1024) + b"%%EOF"), "big.pdf")},
        content_type="multipart/form-data")
    assert over.status_code == 422 and "文件太大：最多 10 MB。" in over.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProjectDocument)) == 0


def test_ledger_check_command_passes_on_the_demo_and_fails_when_tampered(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output
    assert "ledger check passed" in result.output
    with app.app_context():
        db.session.execute(sa.update(LedgerBalance).where(LedgerBalance.account == "buffer")
                           .values(units=LedgerBalance.units - 5))
        db.session.commit()
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "journal gives" in result.output


def test_an_english_name_longer_than_its_column_is_refused_by_name(app, factory, client):
    seller = factory.user("seller")
    village = factory.village()
    response = client.post("/api/v1/projects", headers={"Authorization": f"Bearer {factory.token(seller)}"}, json={
        "village_id": village.id, "name": "测试项目", "name_en": "x" * 201, "area_hectares": "10.5",
        "forest_type": "竹林", "methodology": "CCER-14-002-V01", "crediting_start": "2020-01-01",
        "crediting_end": "2030-12-31"})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "name_en"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Project)) == 0


def test_the_ledger_check_runs_from_its_page(app, factory, client, login):
    login(factory.user("bureau").email)
    page = client.get("/bureau/ledger").get_data(as_text=True)
    assert "立即检查" in page and "marketplace ledger check" not in page and 'id="ledger-result"' not in page
    result = client.post("/bureau/ledger", data={"csrf_token": _form(client, "/bureau/ledger")})
    assert result.status_code == 200
    text = result.get_data(as_text=True)
    assert 'id="ledger-result"' in text and "通过" in text and "再次检查" in text
