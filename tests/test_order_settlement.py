"""A card payment is settled in one place (order_payments.settle), from what Stripe says, by the pay page,
its 3-D Secure return, the webhook and the periodic re-read — never by a page that only shows an order.
And the bureau's confirmation of a transfer that came too late says so and commits once.

Stripe is a stand-in here that counts every call (the real emulator is in test_order_payments.py and the
browser tests), so these run on SQLite too."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.db import utcnow
from marketplace.core.quantities import fen, parse_tonnes
from marketplace.extensions import db
from marketplace.orders import order_payments, payments
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderTransition
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.webhook import signature_header


class FakeStripe:
    """PaymentIntents in memory, every call recorded in ``calls`` as (method, PaymentIntent id)."""

    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.confirm_to = "succeeded"

    def _answer(self, intent_id: str) -> dict:
        return json.loads(json.dumps(self.intents[intent_id]))

    def create_payment_intent(self, *, amount_fen, currency="cny", metadata, idempotency_key, **_params):
        intent_id = f"pi_fake{len(self.intents) + 1}"
        self.calls.append(("create", intent_id))
        self.intents[intent_id] = {"id": intent_id, "object": "payment_intent", "amount": amount_fen,
                                   "currency": currency, "status": "requires_payment_method",
                                   "client_secret": f"{intent_id}_secret_x", "last_payment_error": None,
                                   "metadata": {str(k): str(v) for k, v in metadata.items()}}
        return self._answer(intent_id)

    def retrieve_payment_intent(self, intent_id):
        self.calls.append(("retrieve", intent_id))
        return self._answer(intent_id)

    def create_customer(self, *, idempotency_key, source=None, metadata=None, **_params):
        self.calls.append(("customer", None))
        return {"id": "cus_fake", "default_source": "card_fake"}

    def update_payment_intent(self, intent_id, *, idempotency_key=None, **_params):
        self.calls.append(("update", intent_id))
        return self._answer(intent_id)

    def confirm_payment_intent(self, intent_id, payment_method=None, *, idempotency_key=None):
        self.calls.append(("confirm", intent_id))
        self.intents[intent_id]["status"] = self.confirm_to
        return self._answer(intent_id)

    def cancel_payment_intent(self, intent_id, *, idempotency_key=None):
        self.calls.append(("cancel", intent_id))
        self.intents[intent_id]["status"] = "canceled"
        return self._answer(intent_id)

    def deadline(self, _budget_ms):
        """The real client bounds a request's calls in time (StripeClient.deadline); these answer at once."""
        return contextlib.nullcontext()

    def reads(self, intent_id=None) -> int:
        return sum(1 for method, pi in self.calls if method == "retrieve" and intent_id in (None, pi))


@pytest.fixture
def stripe(app):
    fake = FakeStripe()
    app.extensions["tanhui_stripe"] = fake
    yield fake
    app.extensions.pop("tanhui_stripe", None)


@pytest.fixture
def settlements(monkeypatch):
    """Every call of order_payments.settle, as (via, outcome)."""
    seen = []
    real = order_payments.settle

    def spy(session, payment_intent_id, *, via, **kwargs):
        result = real(session, payment_intent_id, via=via, **kwargs)
        seen.append((via, result.outcome))
        return result

    monkeypatch.setattr(order_payments, "settle", spy)
    return seen


class Writes:
    """Statements that change the database, and commits, while it listens."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.statements, self.commits = [], 0

    def _statement(self, _conn, _cursor, statement, *_args):
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.statements.append(statement)

    def _commit(self, _session):
        self.commits += 1

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(sa.orm.Session, "after_commit", self._commit)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)
        sa.event.remove(sa.orm.Session, "after_commit", self._commit)


def _card_order(app, factory, buyer, tonnes="10") -> int:
    listing = factory.listing(tonnes="100")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="card", beneficiary="测试受益方", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        return order.id


def _start_payment(app, order_id) -> str:
    with app.app_context():
        order = db.session.get(Order, order_id)
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        return attempt.payment_intent_id


def _paid_notes(app, order_id) -> list:
    with app.app_context():
        return [(code, params) for code, params in db.session.execute(
            sa.select(OrderTransition.note_code, OrderTransition.note_params).where(
                OrderTransition.order_id == order_id, OrderTransition.to_status == "paid")).all()]


def _csrf(client, page: str) -> str:
    html = client.get(page).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_order_page_and_its_status_poll_neither_call_stripe_nor_write(app, factory, login, stripe, settlements):
    """After 3-D Secure the bank has said yes and the server does not know yet. Showing the order changes
    nothing; the pay page's return (a POST) settles it, reading Stripe once."""
    buyer = factory.user("buyer")
    order_id = _card_order(app, factory, buyer)
    intent_id = _start_payment(app, order_id)
    with app.app_context():
        db.session.execute(sa.update(PaymentAttempt).values(status="requires_action"))
        db.session.commit()
    stripe.intents[intent_id]["status"] = "succeeded"
    client = login(buyer.email)
    csrf = _csrf(client, f"/buyers/orders/{order_id}/pay")
    stripe.calls.clear()

    with Writes(app) as writes:
        page = client.get(f"/buyers/orders/{order_id}")
        poll = client.get(f"/buyers/orders/{order_id}/status")
    assert page.status_code == 200 and poll.status_code == 200
    assert poll.get_json()["status"] == "pending_payment"
    assert stripe.calls == [] and settlements == []
    assert writes.statements == [] and writes.commits == 0

    with Writes(app) as writes:
        answer = client.post(f"/buyers/orders/{order_id}/pay/authenticated", json={},
                             headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.get_json() == {"status": "paid", "payment_status": "succeeded"}
    assert stripe.calls == [("retrieve", intent_id)] and settlements == [("pay_page", order_payments.PAID)]
    assert writes.commits == 1
    assert _paid_notes(app, order_id) == [("card_paid", {"intent": intent_id, "via": "pay_page"})]
    # The page now shows it, still without asking Stripe.
    assert client.get(f"/buyers/orders/{order_id}/status").get_json()["status"] == "paid"
    assert stripe.calls == [("retrieve", intent_id)]


def test_one_settle_function_serves_the_pay_page_the_webhook_and_the_re_read(app, factory, login, stripe,
                                                                              settlements):
    buyer = factory.user("buyer")
    paid_on_the_page = _card_order(app, factory, buyer)
    client = login(buyer.email)
    csrf = _csrf(client, f"/buyers/orders/{paid_on_the_page}/pay")

    # The pay page: the confirm's answer settles the order; the PaymentIntent is read once (before paying).
    answer = client.post(f"/buyers/orders/{paid_on_the_page}/pay/card", json={"token": "tok_visa"},
                         headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200 and answer.get_json()["status"] == "succeeded"
    [intent_id] = stripe.intents
    assert stripe.reads(intent_id) == 1

    # The webhook for the same payment: read from Stripe once more, changes nothing.
    body = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": stripe.intents[intent_id]}}).encode()
    delivered = app.test_client().post("/webhooks/stripe", data=body, content_type="application/json", headers={
        "Stripe-Signature": signature_header(body, [app.config["STRIPE_WEBHOOK_SECRET"]])})
    assert delivered.status_code == 200 and stripe.reads(intent_id) == 2

    # A payment nobody told us about: the periodic re-read settles it, reading it once.
    unheard_of = _card_order(app, factory, buyer)
    other_intent = _start_payment(app, unheard_of)
    stripe.intents[other_intent]["status"] = "succeeded"
    with app.app_context():
        db.session.execute(sa.update(PaymentAttempt).where(PaymentAttempt.payment_intent_id == other_intent)
                           .values(updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        assert order_payments.reconcile(db.session, older_than_seconds=60) == 1
    assert stripe.reads(other_intent) == 1

    assert settlements == [("pay_page", order_payments.PAID), ("webhook", order_payments.ALREADY_PAID),
                           ("reread", order_payments.PAID)]
    assert _paid_notes(app, paid_on_the_page) == [("card_paid", {"intent": intent_id, "via": "pay_page"})]
    assert _paid_notes(app, unheard_of) == [("card_paid", {"intent": other_intent, "via": "reread"})]


def test_a_payment_intent_for_another_amount_does_not_pay_the_order(app, factory, stripe):
    buyer = factory.user("buyer")
    order_id = _card_order(app, factory, buyer)
    intent_id = _start_payment(app, order_id)
    stripe.intents[intent_id].update(status="succeeded", amount=stripe.intents[intent_id]["amount"] - 1)
    with app.app_context():
        assert order_payments.settle(db.session, intent_id, via="webhook", event_id="evt_x").outcome == (
            order_payments.MISMATCH)
        db.session.commit()
        assert db.session.get(Order, order_id).status == "pending_payment"
        assert order_payments.settle(db.session, "pi_nobodys", via="webhook").outcome == order_payments.UNKNOWN


def test_a_transfer_confirmed_too_late_says_refund_needed_and_commits_once(app, factory, login, browser_like):
    listing = factory.listing(tonnes="10")
    late, other, bureau = factory.user("buyer"), factory.user("buyer"), factory.user("bureau")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, late.id), units=parse_tonnes("10"),
                                   payment_method="bank_transfer", beneficiary="甲", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.execute(sa.update(Order).values(reserved_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        order_id = order.id
        assert orders.expire_due(db.session) == 1
        orders.place_order(db.session, actor=db.session.get(User, other.id), units=parse_tonnes("10"),
                           payment_method="bank_transfer", beneficiary="乙", retirement_reason="测试",
                           listing_id=listing.id)
        db.session.commit()
    login(bureau.email)
    page = f"/bureau/orders/{order_id}"
    with Writes(app) as writes:
        answer = browser_like.post_form(page, {"transfer-reference": "ICBC-LATE-1"},
                                        action=f"{page}/confirm-transfer")
    assert answer.status_code == 422
    assert "预留已过期且减排量已售出，请退回该笔转账。" in answer.get_data(as_text=True)
    assert writes.commits == 1
    with app.app_context():
        stored = db.session.get(Order, order_id)
        assert (stored.status, stored.refund_status) == ("expired", "pending")
        # The service says what happened instead of raising; asking again flags nothing twice.
        outcome = orders.confirm_bank_transfer(db.session, stored, actor=db.session.get(User, bureau.id),
                                               reference="ICBC-LATE-1")
        assert outcome is orders.TransferOutcome.REFUND_NEEDED
        db.session.commit()
        codes = db.session.scalars(sa.select(OrderTransition.note_code).where(
            OrderTransition.order_id == order_id).order_by(OrderTransition.id)).all()
    assert codes == ["placed", "reservation_expired", "late_payment_units_gone"]
