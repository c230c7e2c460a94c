"""The answer to a new order is built from memory (no read-back): it must equal the stored order."""

from __future__ import annotations

import pytest


def _auth(factory):
    buyer = factory.user("buyer")
    return {"Authorization": f"Bearer {factory.token(buyer)}"}


@pytest.mark.parametrize("payment_method", ["card", "bank_transfer"])
def test_the_201_answer_is_what_get_and_a_replay_return(app, factory, client, payment_method):
    factory.listing(tonnes="3.3333", price="36.17")
    factory.listing(tonnes="50", price="41.99")
    auth = _auth(factory)
    body = {"quantity_tonnes": "7.4321", "payment_method": payment_method, "beneficiary": "第十届“智汇丽水”人才科技峰会",
            "retirement_reason": "零碳会议碳中和"}
    created = client.post("/api/v1/orders", json=body, headers={**auth, "Idempotency-Key": "k-1"})
    assert created.status_code == 201, created.get_json()
    answer = created.get_json()
    assert len(answer["lines"]) == 2 and answer["certificate_number"] is None
    stored = client.get(f"/api/v1/orders/{answer['id']}", headers=auth)
    assert stored.status_code == 200
    assert stored.get_json() == answer
    replay = client.post("/api/v1/orders", json=body, headers={**auth, "Idempotency-Key": "k-1"})
    assert replay.status_code == 200 and replay.get_json() == answer


@pytest.mark.parametrize("payment_method", ["card", "bank_transfer"])
def test_the_answer_is_what_the_documented_schema_dumps(app, factory, client, payment_method):
    """Every order answer has exactly OrderOut's fields (reads go through the schema, a new order's 201 is sent
    as built): a field the code adds without declaring it would be dropped by the dump here (and fail this
    test) instead of reaching clients undocumented."""
    from marketplace.orders.api import OrderOut, order_json
    from marketplace.orders.models import Order

    factory.listing(tonnes="50", price="41.99")
    auth = _auth(factory)
    created = client.post("/api/v1/orders", json={"quantity_tonnes": "1", "payment_method": payment_method,
                                                   "beneficiary": "甲", "retirement_reason": "测试"}, headers=auth)
    assert created.status_code == 201
    with app.test_request_context("/"):
        from marketplace.extensions import db

        built = order_json(db.session.get(Order, created.get_json()["id"]))
        assert OrderOut().dump(built) == built == created.get_json()
    payment = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["PaymentOut"]["properties"]
    assert set(payment) == {"method", "pay_url", "reference", "amount_cny", "payee", "account", "bank"}
