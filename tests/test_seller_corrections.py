"""A cooperative corrects its own work: edit or delete a draft project, delete a wrongly uploaded document,
list credits from the listings page, and start a new project in its own village."""

from __future__ import annotations

import io
import re

import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.registry import service as registry
from marketplace.registry.models import Listing, Project, ProjectDocument
from tests.conftest import CsrfClient
from tests.factories import MINIMAL_PDF


def _new_project(client, village_id, name="官埔垟村森林经营碳汇项目") -> int:
    response = CsrfClient(client).post_form("/sellers/projects/new", {
        "name": name, "village_id": village_id, "area_hectares": "1436.8", "forest_type": "杉木林",
        "methodology": "CCER-14-001-V01", "crediting_start": "2016-01-01", "crediting_end": "2045-12-31"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _upload(client, project_id):
    page = f"/sellers/projects/{project_id}"
    return CsrfClient(client).post_form(page, {"kind": "other", "file": (io.BytesIO(MINIMAL_PDF), "错的文件.pdf")},
                                        action=f"{page}/documents", content_type="multipart/form-data")


def test_a_draft_project_is_edited_then_deleted_with_its_documents_after_a_question(app, factory, client, login):
    seller = factory.user("seller")
    village, other_village = factory.village(), factory.village()
    login(seller.email)
    project_id = _new_project(client, village.id)
    page = f"/sellers/projects/{project_id}"
    form = CsrfClient(client)
    assert f'href="{page}/edit"' in client.get(page).get_data(as_text=True)

    edit = client.get(f"{page}/edit").get_data(as_text=True)
    assert 'value="官埔垟村森林经营碳汇项目"' in edit
    saved = form.post_form(f"{page}/edit", {
        "name": "官埔垟村森林经营碳汇项目（更正）", "village_id": other_village.id, "area_hectares": "1500",
        "forest_type": "杉木林", "methodology": "CCER-14-001-V01", "crediting_start": "2016-01-01",
        "crediting_end": "2045-12-31"})
    assert saved.status_code == 302
    refused = form.post_form(f"{page}/edit", {
        "name": "x", "village_id": other_village.id, "area_hectares": "1500", "forest_type": "杉木林",
        "methodology": "CCER-14-001-V01", "crediting_start": "2046-01-01", "crediting_end": "2045-12-31"})
    assert refused.status_code == 422
    with app.app_context():
        project = db.session.get(Project, project_id)
        assert (project.name, project.village_id, str(project.area_hectares)) == (
            "官埔垟村森林经营碳汇项目（更正）", other_village.id, "1500.00")

    assert _upload(client, project_id).status_code == 302
    with app.app_context():
        stored = registry.document_path(db.session.scalars(sa.select(ProjectDocument)).one())
    assert stored.exists()
    asked = form.post_form(page, {}, action=f"{page}/delete")
    assert asked.status_code == 200 and "删除草稿项目" in asked.get_data(as_text=True)
    assert client.get(page).status_code == 200  # only asked
    done = form.post_form(page, {"confirm": "1"}, action=f"{page}/delete")
    assert done.status_code == 302 and done.headers["Location"] == "/sellers/"
    assert client.get(page).status_code == 404 and not stored.exists()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProjectDocument)) == 0


def test_a_wrong_document_is_deleted_but_a_submitted_or_verified_project_cannot_be_changed(app, factory, client, login):
    seller = factory.user("seller")
    login(seller.email)
    project_id = _new_project(client, factory.village().id)
    page = f"/sellers/projects/{project_id}"
    form = CsrfClient(client)
    _upload(client, project_id)
    with app.app_context():
        document_id = db.session.scalar(sa.select(ProjectDocument.id))
    assert "删除 错的文件.pdf" in client.get(page).get_data(as_text=True)
    assert form.post_form(page, {}, action=f"/sellers/documents/{document_id}/delete").status_code == 200
    assert form.post_form(page, {"confirm": "1"}, action=f"/sellers/documents/{document_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(ProjectDocument, document_id) is None

    verified = factory.project(seller)  # submitted and verified: fixed
    with app.app_context():
        verified_document = db.session.scalar(sa.select(ProjectDocument.id).where(ProjectDocument.project_id == verified.id))
    vpage = f"/sellers/projects/{verified.id}"
    html = client.get(vpage).get_data(as_text=True)
    assert f"{vpage}/edit" not in html and f"{vpage}/delete" not in html and "/delete" not in html
    form.post_form(vpage, {"confirm": "1"}, action=f"/sellers/documents/{verified_document}/delete")
    form.post_form(vpage, {"confirm": "1"}, action=f"{vpage}/delete")
    with app.app_context():
        assert db.session.get(ProjectDocument, verified_document) is not None
        assert db.session.get(Project, verified.id) is not None
    form.post_form("/sellers/", {}, action="/logout")
    login(factory.user("seller").email)  # another cooperative: not even the question
    assert CsrfClient(client).post_form("/sellers/", {},
                                        action=f"/sellers/documents/{verified_document}/delete").status_code == 404


def test_the_listings_page_lists_credits_itself(app, factory, client, login):
    batch = factory.batch()
    login(batch.project.seller.email)
    page = client.get("/sellers/listings").get_data(as_text=True)
    assert 'href="#new-listing"' in page and 'name="from" value="listings"' in page
    form = CsrfClient(client)
    bad = form.post_form("/sellers/listings", {"from": "listings", "batch_id": batch.id, "quantity": "abc",
                                              "price": "30", "min_order": "1"}, action="/sellers/listings")
    assert bad.status_code == 422 and 'id="new-listing"' in bad.get_data(as_text=True)
    good = form.post_form("/sellers/listings", {"from": "listings", "batch_id": batch.id, "quantity": "100",
                                               "price": "30", "min_order": "1"}, action="/sellers/listings")
    assert good.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Listing)) == 1


def test_a_new_project_starts_in_the_cooperatives_own_village(app, factory, client, login):
    factory.village("上垟村")
    own = factory.village("官埔垟村")
    seller = factory.user("seller", organisation=factory.organisation("seller", name="官埔垟村股份经济合作社"))
    login(seller.email)
    page = client.get("/sellers/projects/new").get_data(as_text=True)
    selected = re.search(r'<option selected value="(\d+)">', page) or re.search(r'<option value="(\d+)" selected>', page)
    assert selected and int(selected.group(1)) == own.id, page[page.index("village_id"):][:800]
