"""Card payments of real orders: webhooks move an order once and forward only; the re-read settles a lost
webhook; late payments, refunds and cancelled intents (PostgreSQL and localstripe)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.db import utcnow
from marketplace.core.outbox_models import OutboxMessage
from marketplace.core.quantities import fen, parse_tonnes
from marketplace.extensions import db
from marketplace.orders import order_payments, payments
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderTransition
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.webhook import signature_header
from tests.factories import PASSWORD
from tests.test_payments_stripe import card_token

pytestmark = [pytest.mark.postgres, pytest.mark.stripe]


def _card_order(app, factory, tonnes="10"):
    listing = factory.listing(tonnes="100")
    buyer = factory.user("buyer")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="card", beneficiary="测试受益方", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        return order.id, listing.id


def _pay(app, emulator, order_id, number="4242424242424242"):
    with app.app_context():
        order = db.session.get(Order, order_id)
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        status = payments.pay_with_card_token(db.session, attempt, card_token(emulator, number))["status"]
        intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
        return status, intent


def _event(intent, event_id="evt_test_1", kind="payment_intent.succeeded"):
    return json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": intent}}).encode()


def _deliver(client, emulator, body):
    return client.post("/webhooks/stripe", data=body, content_type="application/json",
                       headers={"Stripe-Signature": signature_header(body, [emulator.webhook_secret])})


def _status_and_retire_rows(app, order_id):
    with app.app_context():
        order = db.session.get(Order, order_id)
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
            OutboxMessage.task_name == orders.RETIRE_TASK))
        paid = db.session.scalar(sa.select(sa.func.count()).select_from(OrderTransition).where(
            OrderTransition.order_id == order_id, OrderTransition.to_status == "paid"))
        return order.status, rows, paid


def test_the_same_webhook_five_times_and_twice_at_once_moves_the_order_once(stripe_app, stripe_emulator, factory):
    order_id, _listing = _card_order(stripe_app, factory)
    status, intent = _pay(stripe_app, stripe_emulator, order_id)
    assert status == "succeeded"
    client = stripe_app.test_client()
    for _ in range(5):
        assert _deliver(client, stripe_emulator, _event(intent)).status_code == 200
    barrier = threading.Barrier(2)
    codes = []

    def deliver_again():
        c = stripe_app.test_client()
        barrier.wait()
        codes.append(_deliver(c, stripe_emulator, _event(intent, "evt_test_2")).status_code)

    threads = [threading.Thread(target=deliver_again) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == [200, 200]
    assert _status_and_retire_rows(stripe_app, order_id) == ("paid", 1, 1)


def test_payment_failed_after_succeeded_changes_nothing(stripe_app, stripe_emulator, factory):
    order_id, _listing = _card_order(stripe_app, factory)
    _status, intent = _pay(stripe_app, stripe_emulator, order_id)
    client = stripe_app.test_client()
    _deliver(client, stripe_emulator, _event(intent))
    failed = {**intent, "status": "requires_payment_method"}
    assert _deliver(client, stripe_emulator, _event(failed, "evt_fail", "payment_intent.payment_failed")
                    ).status_code == 200
    assert _status_and_retire_rows(stripe_app, order_id) == ("paid", 1, 1)


def test_a_webhook_pays_only_what_stripe_confirms_for_the_orders_amount(stripe_app, stripe_emulator, factory):
    """The webhook names a PaymentIntent; whether it paid, and how much, is read from Stripe."""
    order_id, _listing = _card_order(stripe_app, factory)
    with stripe_app.app_context():
        order = db.session.get(Order, order_id)
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        unpaid = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
    client = stripe_app.test_client()
    # A signed event that says "succeeded" of a PaymentIntent Stripe has not been paid for.
    _deliver(client, stripe_emulator, _event({**unpaid, "status": "succeeded"}, "evt_claims_paid"))
    with stripe_app.app_context():
        assert db.session.get(Order, order_id).status == "pending_payment"
    # Paid at Stripe, but the order's amount is not what it paid (here: the order changed after it).
    _status, intent = _pay(stripe_app, stripe_emulator, order_id)
    with stripe_app.app_context():
        db.session.execute(sa.update(Order).where(Order.id == order_id).values(amount_cny=Order.amount_cny + 1))
        db.session.commit()
    _deliver(client, stripe_emulator, _event(intent, "evt_other_amount"))
    with stripe_app.app_context():
        assert db.session.get(Order, order_id).status == "pending_payment"


def test_a_lost_webhook_is_settled_by_the_periodic_re_read(stripe_app, stripe_emulator, factory):
    order_id, _listing = _card_order(stripe_app, factory)
    with stripe_app.app_context():
        order = db.session.get(Order, order_id)
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        # The card is confirmed at the processor, but we never hear of it (no pay view, no webhook).
        payments.get_client().confirm_payment_intent(attempt.payment_intent_id, "pm_card_visa")
        db.session.execute(sa.update(PaymentAttempt).values(updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        assert order_payments.reconcile(db.session, older_than_seconds=60) == 1
        assert db.session.get(Order, order_id).status == "paid"
        assert order_payments.reconcile(db.session, older_than_seconds=0) == 0


def test_expiry_then_a_late_payment_is_honoured_when_the_units_are_still_there(stripe_app, stripe_emulator, factory):
    order_id, listing_id = _card_order(stripe_app, factory)
    _status, intent = _pay(stripe_app, stripe_emulator, order_id)
    with stripe_app.app_context():
        db.session.execute(sa.update(Order).values(reserved_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert orders.expire_due(db.session) == 1
        db.session.commit()
        assert order_payments.settle(db.session, intent["id"], via="webhook").outcome == order_payments.PAID
        db.session.commit()
        assert db.session.get(Order, order_id).status == "paid"
        assert orders.reserved_units(db.session, db.session.get(Order, order_id)) == 100_000


def test_a_late_payment_for_units_sold_meanwhile_is_refunded(stripe_app, stripe_emulator, factory):
    order_id, listing_id = _card_order(stripe_app, factory, tonnes="100")
    _status, intent = _pay(stripe_app, stripe_emulator, order_id)
    other = factory.user("buyer")
    with stripe_app.app_context():
        db.session.execute(sa.update(Order).values(reserved_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        orders.expire_due(db.session)
        db.session.commit()
        orders.place_order(db.session, actor=db.session.get(User, other.id), units=parse_tonnes("100"),
                           payment_method="bank_transfer", beneficiary="别人", retirement_reason="测试",
                           listing_id=listing_id)
        db.session.commit()
        assert order_payments.settle(db.session, intent["id"], via="webhook").outcome == order_payments.REFUND_NEEDED
        db.session.commit()
        order = db.session.get(Order, order_id)
        assert (order.status, order.refund_status) == ("expired", "pending")
        assert order_payments.refund(db.session, order_id) == "refunded"
        db.session.commit()
        assert db.session.get(Order, order_id).refund_status == "done"
        assert order_payments.refund(db.session, order_id) == "nothing to do"


def test_cancelling_a_card_order_cancels_its_payment_intent(stripe_app, stripe_emulator, factory):
    order_id, _listing = _card_order(stripe_app, factory)
    buyer_id = None
    with stripe_app.app_context():
        order = db.session.get(Order, order_id)
        buyer_id = order.created_by_id
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        orders.cancel(db.session, order, actor=db.session.get(User, buyer_id))
        db.session.commit()
        assert order_payments.cancel_open_payment(db.session, order_id) == "cancelled"
        db.session.commit()
        intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
        assert intent["status"] == "canceled"


def test_a_forged_succeeded_event_for_an_invented_or_unrecorded_payment_intent_pays_nothing(
        stripe_app, stripe_emulator, factory):
    """The audit's forged payment: a signed ``payment_intent.succeeded`` naming the order in its metadata with
    the right amount pays it only if the PaymentIntent is the one the order's attempt recorded, as Stripe has it."""
    order_id, _listing = _card_order(stripe_app, factory)
    with stripe_app.app_context():
        amount = fen(db.session.get(Order, order_id).amount_cny)
    invented = {"id": "pi_forged0000000000000000", "object": "payment_intent", "status": "succeeded",
                "amount": amount, "amount_received": amount, "currency": "cny", "metadata": {"order_id": str(order_id)}}
    client = stripe_app.test_client()
    assert _deliver(client, stripe_emulator, _event(invented, "evt_forged")).status_code == 200
    # A real, paid PaymentIntent at Stripe for the right amount and order id, but not one of this order's attempts.
    with stripe_app.app_context():
        stray = payments.get_client().create_payment_intent(amount_fen=amount, metadata={"order_id": str(order_id)},
                                                            idempotency_key="stray-intent-1")
        paid_stray = payments.get_client().confirm_payment_intent(stray["id"], "pm_card_visa")
    assert paid_stray["status"] == "succeeded"
    assert _deliver(client, stripe_emulator, _event(paid_stray, "evt_stray")).status_code == 200
    with stripe_app.app_context():
        # The order's own attempt, recorded but never paid, named in a forged "succeeded": read back, not paid.
        attempt = payments.ensure_payment_intent(db.session, order_id=order_id, amount_fen=amount,
                                                 metadata={"order_id": order_id})
        own = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
    assert _deliver(client, stripe_emulator, _event({**own, "status": "succeeded"}, "evt_own_unpaid")).status_code == 200
    assert _status_and_retire_rows(stripe_app, order_id) == ("pending_payment", 0, 0)


def test_three_parallel_card_submissions_make_one_charge_and_nobody_is_told_it_failed(stripe_app, stripe_emulator,
                                                                                       factory):
    order_id, _listing = _card_order(stripe_app, factory)
    with stripe_app.app_context():
        order = db.session.get(Order, order_id)
        payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                       metadata={"order_id": order.id})
    tokens = [card_token(stripe_emulator, "4242424242424242") for _ in range(3)]
    barrier = threading.Barrier(3)
    outcomes = []

    def submit(token):
        with stripe_app.app_context():
            order = db.session.get(Order, order_id)
            barrier.wait()
            try:
                payment = order_payments.pay_with_card(db.session, order, token)
                db.session.commit()
                outcomes.append(payment.status)
            except payments.PaymentInProgress as exc:
                db.session.rollback()
                outcomes.append(exc.code)
            except Exception as exc:  # noqa: BLE001 — what the audit saw: "payment failed"
                db.session.rollback()
                outcomes.append(f"{type(exc).__name__}: {getattr(exc, 'code', exc)}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit, args=(token,)) for token in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # One charges; the others are told it is in progress (or, arriving after it finished, that it succeeded).
    assert len(outcomes) == 3 and set(outcomes) <= {"payment_in_progress", "succeeded"}, outcomes
    assert "succeeded" in outcomes
    with stripe_app.app_context():
        attempts = db.session.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id)).all()
        assert len(attempts) == 1
        intent = payments.get_client().retrieve_payment_intent(attempts[0].payment_intent_id)
    assert intent["status"] == "succeeded"
    assert _status_and_retire_rows(stripe_app, order_id) == ("paid", 1, 1)


def test_a_declined_card_is_in_the_order_history_for_the_buyer_and_the_bureau(stripe_app, stripe_emulator, factory):
    """A refused card changes no status (the order still awaits payment) but is recorded: the buyer's
    order page and the bureau's show when, which attempt, and the reason the buyer was given."""
    from tests.conftest import CsrfClient

    listing = factory.listing(tonnes="100")
    buyer = factory.user("buyer")
    with stripe_app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("2"),
                                   payment_method="card", beneficiary="测试受益方", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        order_id = order.id
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        with pytest.raises(payments.PaymentFailed):
            payments.pay_with_card_token(db.session, attempt, card_token(stripe_emulator, "4000000000000002"))
        db.session.remove()
    refused = "第 1 次银行卡付款被拒：银行卡被拒绝，请换一张卡或联系发卡银行。"
    for user, url in ((buyer, f"/buyers/orders/{order_id}"), (factory.user("bureau"), f"/bureau/orders/{order_id}")):
        client = CsrfClient(stripe_app.test_client())
        assert client.post_form("/login", {"email": user.email, "password": PASSWORD}).status_code == 302
        page = client.client.get(url).get_data(as_text=True)
        history = page[page.index('id="order-history"'):]
        assert "银行卡被拒" in history and refused in history, history[:800]
