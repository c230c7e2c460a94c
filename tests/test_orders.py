"""Orders: allocation, reservation, idempotency, expiry, cancellation, bank transfers, and no oversell."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.core.db import utcnow
from marketplace.core.outbox_models import OutboxMessage
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry import ledger


def _buyer(factory):
    buyer = factory.user("buyer")
    return buyer, {"Authorization": f"Bearer {factory.token(buyer)}"}


def _order(client, auth, key=None, **body):
    payload = {"payment_method": "card", "beneficiary": "第十届“智汇丽水”人才科技峰会",
               "retirement_reason": "零碳会议碳中和", **body}
    headers = dict(auth)
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/orders", json=payload, headers=headers)


def _check(app):
    with app.app_context():
        report = ledger.check_invariants(db.session)
    assert report.ok, report.problems


def test_allocation_takes_the_cheapest_listings_first(app, factory, client):
    cheap = factory.listing(tonnes="100", price="30.00")
    dear = factory.listing(tonnes="100", price="40.00")
    _buyer_user, auth = _buyer(factory)
    response = _order(client, auth, quantity_tonnes="150.5")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [(line["listing_id"], line["quantity_tonnes"]) for line in body["lines"]] == [
        (cheap.id, "100.0000"), (dear.id, "50.5000")]
    assert body["amount_cny"] == "5020.00"  # 100 × 30 + 50.5 × 40
    assert body["status"] == "pending_payment" and body["payment"]["method"] == "card"
    listings = {x["id"]: x["available_tonnes"] for x in client.get("/api/v1/listings").get_json()}
    assert listings == {dear.id: "49.5000"}
    _check(app)


def test_a_chosen_listing_and_its_limits(app, factory, client):
    listing = factory.listing(tonnes="10", price="36.00", min_order="1")
    _buyer_user, auth = _buyer(factory)
    small = _order(client, auth, quantity_tonnes="0.5", listing_id=listing.id)
    assert small.status_code == 422 and small.get_json()["error"]["field"] == "quantity_tonnes"
    big = _order(client, auth, quantity_tonnes="10.0001", listing_id=listing.id)
    assert big.status_code == 409 and big.get_json()["error"]["code"] == "insufficient_credits"
    ok = _order(client, auth, quantity_tonnes="175.402"[:5], listing_id=listing.id)  # "175.4" > 10: refused
    assert ok.status_code == 409
    ok = _order(client, auth, quantity_tonnes="9.9999", listing_id=listing.id, payment_method="bank_transfer")
    assert ok.status_code == 201
    body = ok.get_json()
    assert body["amount_cny"] == "360.00"  # 9.9999 × 36 = 359.9964 → half-up to the fen
    assert body["payment"]["reference"] == f"TH{body['id']:08d}"
    for bad in ({"quantity_tonnes": 1.5}, {"quantity_tonnes": "1", "payment_method": "cash"},
                {"quantity_tonnes": "1", "beneficiary": "  "}, {}):
        response = _order(client, auth, **bad)
        assert response.status_code == 422, (bad, response.get_json())
    _check(app)


def test_idempotency_key_returns_the_same_order_and_refuses_another_body(app, factory, client):
    factory.listing(tonnes="100")
    _buyer_user, auth = _buyer(factory)
    first = _order(client, auth, key="summit-2026-1", quantity_tonnes="10")
    again = _order(client, auth, key="summit-2026-1", quantity_tonnes="10")
    assert first.status_code == 201 and again.status_code == 200
    assert first.get_json()["id"] == again.get_json()["id"]
    other = _order(client, auth, key="summit-2026-1", quantity_tonnes="11")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
        assert orders.reserved_units(db.session, db.session.get(Order, first.get_json()["id"])) == 100_000


def test_expiry_releases_and_cancel_is_repeatable(app, factory, client):
    listing = factory.listing(tonnes="10")
    _buyer_user, auth = _buyer(factory)
    a = _order(client, auth, quantity_tonnes="4").get_json()
    b = _order(client, auth, quantity_tonnes="5").get_json()
    with app.app_context():
        db.session.execute(sa.update(Order).where(Order.id == a["id"])
                           .values(reserved_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert orders.expire_due(db.session) == 1
        db.session.commit()
        assert orders.expire_due(db.session) == 0
        assert ledger.listing_available_units(db.session, listing.id) == 50_000
    assert client.get(f"/api/v1/orders/{a['id']}", headers=auth).get_json()["status"] == "expired"
    for _ in range(2):
        response = client.post(f"/api/v1/orders/{b['id']}/cancel", headers=auth)
        assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    with app.app_context():
        assert ledger.listing_available_units(db.session, listing.id) == 100_000
    _check(app)


def test_bank_transfer_confirmed_by_the_bureau_requests_retirement_once(app, factory, client):
    factory.listing(tonnes="10")
    buyer, auth = _buyer(factory)
    bureau_auth = {"Authorization": f"Bearer {factory.token(factory.user('bureau'))}"}
    order = _order(client, auth, quantity_tonnes="2", payment_method="bank_transfer").get_json()
    url = f"/api/v1/orders/{order['id']}/confirm-bank-transfer"
    assert client.post(url, headers=auth, json={"reference": "X"}).status_code == 403
    assert client.post(url, headers=bureau_auth, json={}).status_code == 422
    for _ in range(3):
        response = client.post(url, headers=bureau_auth, json={"reference": "ABC20261101-0001"})
        assert response.status_code == 200 and response.get_json()["status"] == "paid"
    with app.app_context():
        tasks = db.session.scalars(sa.select(OutboxMessage.task_name)).all()
        assert tasks.count(orders.RETIRE_TASK) == 1
    # Paid, not yet retired: the buyer may still cancel; the transfer is flagged for a manual refund.
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth)
    assert response.get_json()["status"] == "refunded" and response.get_json()["refund_status"] == "pending"
    _check(app)


def test_another_buyer_sees_404(app, factory, client):
    factory.listing(tonnes="10")
    _buyer_user, auth = _buyer(factory)
    order = _order(client, auth, quantity_tonnes="1").get_json()
    _other, other_auth = _buyer(factory)
    assert client.get(f"/api/v1/orders/{order['id']}", headers=other_auth).status_code == 404
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=other_auth).status_code == 404


@pytest.mark.postgres
def test_many_buyers_at_once_never_oversell(app, factory):
    """64 threads released together against one listing, random quantities, three rounds."""
    listing = factory.listing(tonnes="50", min_order="0.0001")
    tokens = [factory.token(factory.user("buyer")) for _ in range(8)]
    listed_units = 500_000
    rng = random.Random(20261101)
    sold_total = 0
    for _round in range(3):
        barrier = threading.Barrier(64)
        results: list[tuple[int, int]] = []
        lock = threading.Lock()

        def worker(n: int, units: int, barrier=barrier, results=results, lock=lock):
            client = app.test_client()
            barrier.wait()
            response = client.post("/api/v1/orders", json={
                "quantity_tonnes": f"{units // 10_000}.{units % 10_000:04d}", "listing_id": listing.id,
                "payment_method": "card", "beneficiary": "并发测试", "retirement_reason": "测试"},
                headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"})
            with lock:
                results.append((response.status_code, units))

        # From 0.3334 t: at ¥30.00/t, the smallest order worth ¥1.00 (orders.service.MIN_ORDER_AMOUNT_CNY).
        threads = [threading.Thread(target=worker, args=(n, rng.randint(3_334, 40_000))) for n in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = {code for code, _u in results}
        assert statuses <= {201, 409}, results
        sold_total += sum(units for code, units in results if code == 201)
        assert sold_total <= listed_units
        with app.app_context():
            assert ledger.listing_available_units(db.session, listing.id) == listed_units - sold_total
    _check(app)
    assert sold_total > 0
