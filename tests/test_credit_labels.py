"""Credit labels on batches (set by the bureau at issuance, shown and filtered everywhere) and the purpose
of a retirement (on orders, certificates and the public retirement registry)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from marketplace.certificates import retirement
from marketplace.certificates.models import Certificate
from marketplace.extensions import db
from marketplace.orders.models import Order
from marketplace.registry.models import CreditBatch
from tests.conftest import CsrfClient


def _bearer(factory, kind):
    user = factory.user(kind)
    return user, {"Authorization": f"Bearer {factory.token(user)}"}


def test_the_bureau_labels_a_batch_at_issuance_and_the_api_shows_and_filters_by_the_labels(app, factory, client):
    bureau, headers = _bearer(factory, "bureau")
    project = factory.project(bureau=bureau)
    response = client.post(f"/api/v1/projects/{project.id}/batches", headers=headers, json={
        "quantity_tonnes": "2000", "vintage_start": "2023-01-01", "vintage_end": "2023-12-31",
        "verification_body": "中环联合认证中心", "report_reference": "CEC-2023-1", "scheme": "zhejiang_forestry",
        "methodology_code": "CCER-14-001", "methodology_version": "V01", "event_eligible": True})
    assert response.status_code == 201, response.get_json()
    batch = response.get_json()
    assert batch["scheme"] == "zhejiang_forestry" and batch["event_eligible"] is True
    assert (batch["methodology_code"], batch["methodology_version"]) == ("CCER-14-001", "V01")
    assert (batch["monitoring_period_start"], batch["monitoring_period_end"]) == ("2023-01-01", "2023-12-31")

    eligible = factory.listing(factory.batch(factory.project(bureau=bureau), bureau=bureau,
                                             scheme="lishui_inclusive", event_eligible=True))
    plain = factory.listing(factory.batch(factory.project(bureau=bureau), bureau=bureau))
    every = {row["id"]: row for row in client.get("/api/v1/listings").get_json()}
    assert every[eligible.id]["scheme"] == "lishui_inclusive" and every[eligible.id]["event_eligible"] is True
    assert every[plain.id]["scheme"] == "other" and every[plain.id]["event_eligible"] is False
    only_eligible = [row["id"] for row in client.get("/api/v1/listings?event_eligible=true").get_json()]
    assert only_eligible == [eligible.id]
    assert [row["id"] for row in client.get("/api/v1/listings?scheme=other").get_json()] == [plain.id]
    refused = client.get("/api/v1/listings?scheme=nonsense")
    assert refused.status_code == 422 and "scheme" in json.dumps(refused.get_json())


def test_an_unknown_scheme_is_refused_and_nothing_is_issued(app, factory, client):
    bureau, headers = _bearer(factory, "bureau")
    project = factory.project(bureau=bureau)
    response = client.post(f"/api/v1/projects/{project.id}/batches", headers=headers, json={
        "quantity_tonnes": "2000", "vintage_start": "2023-01-01", "vintage_end": "2023-12-31",
        "verification_body": "中环", "report_reference": "R-1", "scheme": "gold_standard"})
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditBatch)) == 0


def test_the_issuance_form_sets_the_labels_and_the_public_registry_filters_by_them(app, factory, client, login):
    bureau = factory.user("bureau")
    project = factory.project(bureau=bureau)
    plain = factory.project(bureau=bureau)
    factory.batch(plain, bureau=bureau)
    login(bureau.email)
    page = f"/bureau/projects/{project.id}"
    csrf = CsrfClient(client)
    token = csrf.csrf_token(page)
    data = {"csrf_token": token, "quantity": "1500", "vintage_start": "2024-01-01", "vintage_end": "2024-12-31",
            "verification_body": "中环联合认证中心", "report_reference": "CEC-2024-7", "scheme": "zhejiang_forestry",
            "methodology_code": "CCER-14-001", "methodology_version": "V01", "event_eligible": "y", "confirmed": "y"}
    response = client.post(f"/bureau/projects/{project.id}/batches", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        batch = db.session.scalar(sa.select(CreditBatch).where(CreditBatch.project_id == project.id))
        assert (batch.scheme, batch.methodology, batch.event_eligible) == ("zhejiang_forestry", "CCER-14-001-V01", True)

    filtered = client.get("/registry/?event_eligible=1").get_data(as_text=True)
    assert project.name in filtered and plain.name not in filtered
    assert "浙林碳汇" in filtered
    assert plain.name in client.get("/registry/").get_data(as_text=True)


def _complete(app, buyer, listing_id, tonnes="10", **kwargs):
    from marketplace.accounts.models import User
    from marketplace.core.quantities import parse_tonnes
    from marketplace.orders import service as orders

    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="bank_transfer", beneficiary="丽水市生态环境局",
                                   retirement_reason="碳中和", listing_id=listing_id, **kwargs)
        db.session.commit()
        assert orders.mark_paid(db.session, order.id, note="test", bank_reference=f"R{order.id}")
        db.session.commit()
        retirement.retire_order(db.session, order.id)
        db.session.commit()
        retirement.generate_certificate(db.session, order.id)
        return order.id


def test_the_purpose_travels_from_the_order_to_the_certificate_and_the_public_registry(app, factory, client):
    listing = factory.listing()
    buyer, headers = _bearer(factory, "buyer")
    response = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "p-1"}, json={
        "quantity_tonnes": "1", "listing_id": listing.id, "payment_method": "bank_transfer",
        "beneficiary": "某零碳机关", "retirement_reason": "零碳机关建设", "purpose": "zero_carbon_org"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["purpose"] == "zero_carbon_org"

    order_id = _complete(app, buyer, listing.id, purpose="ecological_compensation")
    with app.app_context():
        certificate = db.session.scalar(sa.select(Certificate).where(Certificate.order_id == order_id))
        assert json.loads(certificate.facts_json)["purpose"] == "ecological_compensation"
        number = certificate.number
    rows = client.get("/api/v1/public/retirements?purpose=ecological_compensation").get_json()["items"]
    assert [(r["certificate_number"], r["purpose"]) for r in rows] == [(number, "ecological_compensation")]
    assert client.get("/api/v1/public/retirements?purpose=voluntary").get_json()["items"] == []
    assert "生态损害赔偿" in client.get(f"/verify/{number}").get_data(as_text=True)
    assert "生态损害赔偿" in client.get("/registry/retirements").get_data(as_text=True)


def test_the_purpose_defaults_by_event_and_bad_purposes_are_refused(app, factory, client):
    from marketplace.orders import service as orders

    listing = factory.listing()
    _buyer, headers = _bearer(factory, "buyer")
    body = {"quantity_tonnes": "1", "listing_id": listing.id, "payment_method": "bank_transfer",
            "beneficiary": "某机构", "retirement_reason": "自愿"}
    placed = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "d-1"}, json=body)
    assert placed.get_json()["purpose"] == "voluntary"
    wrong = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "d-2"}, json={**body, "purpose": "fun"})
    assert wrong.status_code == 422
    no_event = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "d-3"},
                           json={**body, "purpose": "event"})
    assert no_event.status_code == 422 and no_event.get_json()["error"]["field"] == "event_id"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
        assert orders.purpose_for(None, 7) == "event"


@pytest.mark.parametrize("purpose", ["event", "voluntary"])
def test_purpose_labels_are_translated(app, purpose):
    from marketplace.orders.service import purpose_label

    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert purpose_label(purpose) in ("大型活动碳中和", "自愿抵消")
