"""Create calls of the API retried with their Idempotency-Key create once: projects, batches, listings
and events (orders have their own tests). A repeat answers 200 with what the first call made; the same
key with another body is a 409; a refused call leaves no key behind."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from marketplace.core.models import IdempotencyKey
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.footprint.models import Event
from marketplace.registry import ledger
from marketplace.registry.models import CreditBatch, Listing, Project


def _auth(factory, user, key=None):
    headers = {"Authorization": f"Bearer {factory.token(user)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _project_body(village_id, name="测试项目"):
    return {"village_id": village_id, "name": name, "area_hectares": "10.5", "forest_type": "竹林",
            "methodology": "CCER-14-002-V01", "crediting_start": "2020-01-01", "crediting_end": "2030-12-31"}


def test_a_project_call_retried_with_its_key_registers_one_project(app, factory, client):
    seller = factory.user("seller")
    village = factory.village()
    first = client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, "p-1"))
    again = client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, "p-1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    other = client.post("/api/v1/projects", json=_project_body(village.id, "另一个项目"),
                        headers=_auth(factory, seller, "p-1"))
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert other.get_json()["error"]["field"] == "Idempotency-Key"
    assert _count(app, Project) == 1
    # Without a key every call creates (the client chose not to be protected).
    for _ in range(2):
        assert client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller)
                           ).status_code == 201
    assert _count(app, Project) == 3


def test_a_refused_call_leaves_no_key_and_another_user_has_its_own_keys(app, factory, client):
    seller, other_seller = factory.user("seller"), factory.user("seller")
    village = factory.village()
    bad = {**_project_body(village.id), "crediting_end": "2019-01-01"}
    refused = client.post("/api/v1/projects", json=bad, headers=_auth(factory, seller, "k"))
    assert refused.status_code == 422 and _count(app, IdempotencyKey) == 0
    assert client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, "k")
                       ).status_code == 201
    # The same key from another cooperative is that cooperative's own: it creates, and sees only its project.
    theirs = client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, other_seller, "k"))
    assert theirs.status_code == 201
    assert _count(app, Project) == 2
    too_long = client.post("/api/v1/projects", json=_project_body(village.id),
                           headers=_auth(factory, seller, "x" * 201))
    assert too_long.status_code == 422 and too_long.get_json()["error"]["field"] == "Idempotency-Key"


def test_batch_and_listing_calls_retried_with_their_keys_issue_and_list_once(app, factory, client):
    seller, bureau = factory.user("seller"), factory.user("bureau")
    project = factory.project(seller=seller, bureau=bureau)
    batch_body = {"quantity_tonnes": "100", "vintage_start": "2023-01-01", "vintage_end": "2023-12-31",
                  "verification_body": "中环联合", "report_reference": "R-1"}
    url = f"/api/v1/projects/{project.id}/batches"
    answers = [client.post(url, json=batch_body, headers=_auth(factory, bureau, "b-1")) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    batch_id = answers[0].get_json()["id"]
    assert {a.get_json()["id"] for a in answers} == {batch_id}
    listing_body = {"batch_id": batch_id, "quantity_tonnes": "40", "price_cny_per_tonne": "36.00"}
    answers = [client.post("/api/v1/listings", json=listing_body, headers=_auth(factory, seller, "l-1"))
               for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert answers[2].get_json()["available_tonnes"] == "40.0000"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditBatch)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Listing)) == 1
        assert ledger.check_invariants(db.session).ok


def test_an_event_call_retried_with_its_key_records_one_event(app, factory, client):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()
    summit = next(spec for spec in demo.DEMO_EVENTS if spec.key == "summit")
    body = {"name": summit.name, "starts_on": "2026-10-30", "ends_on": "2026-11-01", "location": "丽水",
            "activities": [{"category": c, "factor_code": code, "quantity": q} for c, code, q, _d in summit.lines]}
    buyer = factory.user("buyer")
    first = client.post("/api/v1/events", json=body, headers=_auth(factory, buyer, "summit-2026"))
    again = client.post("/api/v1/events", json=body, headers=_auth(factory, buyer, "summit-2026"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"] and again.get_json()["total_tco2e"] == "175.4020"
    assert _count(app, Event) == 1


def test_the_openapi_document_describes_the_header_on_each_create_call(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/projects", "/api/v1/projects/{project_id}/batches", "/api/v1/listings",
                 "/api/v1/events", "/api/v1/orders"):
        names = [p.get("name") for p in paths[path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path
        assert "200" in paths[path]["post"]["responses"], path


@pytest.mark.postgres
def test_one_key_sent_by_eight_clients_at_once_lists_once(app, factory):
    seller = factory.user("seller")
    batch = factory.batch(factory.project(seller=seller), tonnes="100")
    token = factory.token(seller)
    body = {"batch_id": batch.id, "quantity_tonnes": "10", "price_cny_per_tonne": "36.00"}
    start, statuses, ids = threading.Barrier(8), [], set()

    def send():
        client = app.test_client()
        start.wait()
        answer = client.post("/api/v1/listings", json=body,
                             headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "together"})
        statuses.append(answer.status_code)
        ids.add(answer.get_json().get("id"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 7 + [201], statuses
    assert len(ids) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Listing)) == 1
        assert ledger.check_invariants(db.session).ok


def test_old_keys_are_purged_by_the_daily_task_and_then_the_call_acts_again(app, factory, client):
    from datetime import timedelta

    from marketplace.core.db import utcnow
    from workers.schedule import BEAT_SCHEDULE
    from workers.tasks.core import purge_idempotency_keys

    assert BEAT_SCHEDULE["purge-idempotency-keys"]["task"] == "tanhui.purge_idempotency_keys"
    seller = factory.user("seller")
    village = factory.village()
    for key in ("old", "recent"):
        assert client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, key)
                           ).status_code == 201
    with app.app_context():
        db.session.execute(sa.update(IdempotencyKey).where(IdempotencyKey.key == "old")
                           .values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
        assert purge_idempotency_keys.apply().get() == 1  # the task's body, run here; beat runs it daily
        assert db.session.scalars(sa.select(IdempotencyKey.key)).all() == ["recent"]
    assert client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, "old")
                       ).status_code == 201
    assert client.post("/api/v1/projects", json=_project_body(village.id), headers=_auth(factory, seller, "recent")
                       ).status_code == 200
