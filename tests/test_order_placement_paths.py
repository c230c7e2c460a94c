"""Placing an order without ORM writes: a repeated key after a sell-out, and a refused debit leaves nothing."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.errors import InsufficientCredits
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderLine, OrderTransition
from marketplace.registry import ledger
from marketplace.registry.models import LedgerEntry


def _post(client, token, key, **body):
    payload = {"payment_method": "card", "beneficiary": "丽水峰会", "retirement_reason": "碳中和", **body}
    return client.post("/api/v1/orders", json=payload,
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_repeated_key_gets_its_order_after_the_listing_sold_out(app, factory, client):
    listing = factory.listing(tonnes="10")
    token = factory.token(factory.user("buyer"))
    first = _post(client, token, "k-1", quantity_tonnes="10", listing_id=listing.id)
    assert first.status_code == 201
    # Nothing is left: a new request is refused, but the same request with its key gets its order.
    assert _post(client, token, "k-2", quantity_tonnes="10", listing_id=listing.id).status_code == 422
    again = _post(client, token, "k-1", quantity_tonnes="10", listing_id=listing.id)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    other = _post(client, token, "k-1", quantity_tonnes="9", listing_id=listing.id)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    with app.app_context():
        assert _count(Order) == 1 and _count(OrderLine) == 1 and _count(OrderTransition) == 1


@pytest.mark.postgres
def test_an_order_that_loses_the_race_at_the_debit_leaves_no_rows(app, factory):
    """The second buyer is quoted the units, then waits on the listing's balance row until the first
    commits; its conditional debit then finds nothing and every row it wrote is rolled back."""
    listing = factory.listing(tonnes="10")
    buyers = [factory.user("buyer").id for _ in range(2)]
    first_placed, first_may_commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def place(n: int) -> None:
        with app.app_context():
            try:
                order = orders.place_order(db.session, actor=db.session.get(User, buyers[n]), units=100_000,
                                           payment_method="card", beneficiary="B", retirement_reason="R",
                                           listing_id=listing.id)
                if n == 0:
                    first_placed.set()
                    first_may_commit.wait(30)
                db.session.commit()
                outcome[n] = order.id
            except InsufficientCredits as exc:
                db.session.rollback()
                outcome[n] = exc

    first = threading.Thread(target=place, args=(0,))
    first.start()
    assert first_placed.wait(30)
    second = threading.Thread(target=place, args=(1,))
    second.start()
    with app.app_context():  # the second transaction is blocked on the balance row the first holds
        deadline = time.monotonic() + 30
        while not db.session.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")):
            assert time.monotonic() < deadline, "the second order never waited for the first"
            time.sleep(0.05)
            db.session.rollback()
    first_may_commit.set()
    first.join(30)
    second.join(30)
    assert isinstance(outcome[0], int)
    refused = outcome[1]
    assert isinstance(refused, InsufficientCredits) and refused.field == "quantity"  # the debit, not the quote
    with app.app_context():
        assert _count(Order) == 1 and _count(OrderLine) == 1 and _count(OrderTransition) == 1
        assert db.session.scalars(sa.select(LedgerEntry.ref).where(LedgerEntry.kind == "reserve")).all() == [
            f"order:{outcome[0]}"]
        assert ledger.listing_available_units(db.session, listing.id) == 0
        assert ledger.check_invariants(db.session).ok


def test_the_order_form_and_the_api_quote_again_when_an_allocated_order_loses_the_race(app, factory, login,
                                                                                       browser_like, client,
                                                                                       monkeypatch):
    """Both go through orders.place_request: an allocated order refused at the debit (another buyer took the
    units between quote and debit) is quoted again; an order for a chosen listing is refused as it is."""
    listing = factory.listing(tonnes="50", price="30.00")
    buyer = factory.user("buyer")
    real_place, tries = orders.place, []

    def loses_first_race(session, **kwargs):
        tries.append(kwargs["listing_id"])
        if len(tries) % 2 == 1:
            session.flush()
            raise InsufficientCredits(ledger.RESERVE_REFUSED, "quantity")
        return real_place(session, **kwargs)

    monkeypatch.setattr(orders, "place", loses_first_race)
    login(buyer.email)
    form = {"quantity": "2", "listing_id": "", "prefer_county_id": "", "event_id": "", "payment_method": "card",
            "beneficiary": "甲公司", "retirement_reason": "测试", "confirm": "1", "request_token": "a" * 32}
    placed = browser_like.post_form("/buyers/orders/new", form)
    assert placed.status_code == 302 and placed.headers["Location"].endswith("/pay")
    assert tries == [None, None]
    token = factory.token(buyer)
    assert _post(client, token, "k-1", quantity_tonnes="1").status_code == 201
    assert tries == [None, None, None, None]
    chosen = _post(client, token, "k-2", quantity_tonnes="1", listing_id=listing.id)
    assert chosen.status_code == 409 and chosen.get_json()["error"]["code"] == "insufficient_credits"
    assert tries[4:] == [listing.id]
    with app.app_context():
        assert _count(Order) == 2 and ledger.check_invariants(db.session).ok
