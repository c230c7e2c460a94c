"""A form sent twice (a double click, a resend, the browser's "resubmit") acts once: the second answer
leads where the first did, and nothing is created, listed or cancelled again."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from marketplace.core.models import IdempotencyKey
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry.models import BufferLoss, Listing, Project
from tests.conftest import CsrfClient


def _page_form(client, page: str) -> dict:
    """The hidden fields of the page's first guarded form, as a browser would send them back."""
    html = client.get(page).get_data(as_text=True)
    key = re.search(r'name="submission_key" value="([0-9a-f]{32})"', html)
    assert key, f"no submission key on {page}"
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return {"csrf_token": csrf.group(1), "submission_key": key.group(1)}


def _project_form(village_id: int) -> dict:
    return {"name": "官埔垟村森林经营碳汇项目", "village_id": village_id, "area_hectares": "1436.8", "forest_type": "杉木林",
            "methodology": "CCER-14-001-V01", "crediting_start": "2016-01-01", "crediting_end": "2045-12-31"}


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_project_form_sent_twice_registers_one_project(app, factory, login):
    seller = factory.user("seller")
    village = factory.village("官埔垟村")
    client = login(seller.email)
    data = {**_page_form(client, "/sellers/projects/new"), **_project_form(village.id)}
    first = client.post("/sellers/projects/new", data=data)
    second = client.post("/sellers/projects/new", data=data)
    assert first.status_code == 302, first.get_data(as_text=True)[:500]
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert _count(app, Project) == 1
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "该表单已经提交过，没有再执行一次。" in page
    # A new page carries a new key: registering a second project on purpose still works.
    again = client.post("/sellers/projects/new", data={**_page_form(client, "/sellers/projects/new"),
                                                        **_project_form(village.id), "name": "第二个项目"})
    assert again.status_code == 302 and again.headers["Location"] != first.headers["Location"]
    assert _count(app, Project) == 2


def test_a_refused_form_keeps_no_key_so_the_corrected_form_goes_through(app, factory, login):
    seller = factory.user("seller")
    village = factory.village("官埔垟村")
    client = login(seller.email)
    hidden = _page_form(client, "/sellers/projects/new")
    refused = client.post("/sellers/projects/new", data={**hidden, **_project_form(village.id),
                                                          "crediting_end": "2010-01-01"})
    assert refused.status_code == 422
    assert _count(app, IdempotencyKey) == 0
    accepted = client.post("/sellers/projects/new", data={**hidden, **_project_form(village.id)})
    assert accepted.status_code == 302
    assert _count(app, Project) == 1


def test_a_listing_form_sent_twice_lists_the_units_once(app, factory, login):
    seller = factory.user("seller")
    batch = factory.batch(factory.project(seller=seller), tonnes="100")
    client = login(seller.email)
    data = {**_page_form(client, f"/sellers/projects/{batch.project.id}"), "batch_id": batch.id,
            "quantity": "10", "price": "36.00", "min_order": "1"}
    # The project page's first guarded form is the document upload; the listing form has its own key,
    # but any well-formed key guards the view it is sent to.
    responses = [client.post("/sellers/listings", data=data) for _ in range(3)]
    assert [r.status_code for r in responses] == [302, 303, 303]
    assert len({r.headers["Location"] for r in responses}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Listing)) == 1
        assert ledger.check_invariants(db.session).ok


def test_a_loss_reported_twice_cancels_the_buffer_units_once(app, factory, login):
    bureau = factory.user("bureau")
    batch = factory.batch(tonnes="1000", bureau=bureau)
    client = login(bureau.email)
    data = {**_page_form(client, "/bureau/buffer"), "batch_id": batch.id, "kind": "fire", "quantity": "10",
            "reason": "2026年4月山火"}
    assert client.post("/bureau/buffer", data=data).status_code == 302
    assert client.post("/bureau/buffer", data=data).status_code == 303
    with app.app_context():
        [loss] = db.session.scalars(sa.select(BufferLoss)).all()
        assert loss.units == 100_000
        assert ledger.check_invariants(db.session).ok


def test_an_activity_line_sent_twice_is_counted_once(app, factory, login):
    from marketplace.footprint.emission_factors import load_default_factors
    from marketplace.footprint.models import ActivityLine

    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()
    buyer = factory.user("buyer")
    client = login(buyer.email)
    created = client.post("/buyers/events/new", data={
        **_page_form(client, "/buyers/events/new"), "name": "生态文明论坛", "starts_on": "2026-11-01",
        "ends_on": "2026-11-03", "location": "丽水", "attendees": "300", "organiser": "丽水市生态环境局",
        "boundary": "会议期间"})
    assert created.status_code == 302, created.get_data(as_text=True)[:800]
    event_url = created.headers["Location"]
    html = client.get(event_url).get_data(as_text=True)
    line_form = html[html.index('action="' + event_url + '/lines"'):]
    key = re.search(r'name="submission_key" value="([0-9a-f]{32})"', line_form).group(1)
    csrf = CsrfClient(client).csrf_token(event_url)
    data = {"csrf_token": csrf, "submission_key": key, "line-category": "venue",
            "line-factor_code": "venue.grid_east_2023", "line-quantity": "1200", "line-description": "会场用电"}
    first = client.post(f"{event_url}/lines", data=data)
    assert first.status_code == 302, first.get_data(as_text=True)[:800]
    assert client.post(f"{event_url}/lines", data=data).status_code == 303
    assert _count(app, ActivityLine) == 1


@pytest.mark.postgres
def test_the_same_form_sent_twice_at_once_creates_one_listing(app, factory):
    """Two requests with one key at the same moment: the second waits on the key's unique index until the
    first commits, then answers like a repeat."""
    seller = factory.user("seller")
    batch = factory.batch(factory.project(seller=seller), tonnes="100")
    clients = []
    for _ in range(2):
        c = app.test_client()
        assert CsrfClient(c).post_form("/login", {"email": seller.email, "password": "correct horse battery"}
                                       ).status_code == 302
        clients.append(c)
    data = {**_page_form(clients[0], f"/sellers/projects/{batch.project.id}"), "batch_id": batch.id,
            "quantity": "10", "price": "36.00", "min_order": "1"}
    data2 = {**data, "csrf_token": _page_form(clients[1], f"/sellers/projects/{batch.project.id}")["csrf_token"]}
    def send(c, body, key, start, statuses):
        start.wait()
        statuses.append(c.post("/sellers/listings", data={**body, "submission_key": key}).status_code)

    for round_ in range(5):
        key, start, statuses = f"{round_:032x}", threading.Barrier(2), []
        threads = [threading.Thread(target=send, args=(c, body, key, start, statuses))
                   for c, body in zip(clients, (data, data2), strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [302, 303], statuses
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Listing)) == 5
        assert ledger.check_invariants(db.session).ok
