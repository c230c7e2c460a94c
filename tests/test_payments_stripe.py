"""Card payments against the real Stripe emulator: one PaymentIntent per order, whatever happens."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.orders import payments
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.client import StripeClient, StripeError, get_client

pytestmark = pytest.mark.stripe


@pytest.fixture(autouse=True)
def _orders(app):
    """The orders these tests attach payments or certificates to."""
    from tests.factories import orders_with_ids

    orders_with_ids(app, [101, 202, 301, 401, 501, 601, 701])

AMOUNT_FEN = 17_540_200  # 175.402 t at ¥1,000/t


def card_token(emulator, number: str) -> str:
    """What Stripe.js does in the browser: the card goes to the processor, a token comes back."""
    response = requests.post(f"{emulator.base_url}/v1/tokens", timeout=5, data={
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
        "key": emulator.publishable_key})
    response.raise_for_status()
    return response.json()["id"]


def intents_for_order(emulator, order_id: int) -> list[dict]:
    listing = emulator.get("/v1/payment_intents", limit=100)
    return [pi for pi in listing["data"] if pi["metadata"].get("order_id") == str(order_id)]


def test_create_and_retrieve_a_payment_intent(stripe_emulator):
    client = StripeClient(stripe_emulator.base_url, stripe_emulator.secret_key)
    created = client.create_payment_intent(amount_fen=AMOUNT_FEN, metadata={"order_id": 9001},
                                           idempotency_key="test-create-1")
    assert created["id"].startswith("pi_") and created["status"] == "requires_payment_method"
    assert created["amount"] == AMOUNT_FEN and created["currency"] == "cny"
    assert created["metadata"] == {"order_id": "9001"}
    again = client.retrieve_payment_intent(created["id"])
    assert again["id"] == created["id"] and again["client_secret"] == created["client_secret"]
    with pytest.raises(StripeError) as caught:
        client.retrieve_payment_intent("pi_doesnotexist")
    assert caught.value.http_status == 404


def test_the_emulator_really_ignores_idempotency_keys(stripe_emulator):
    """Why the application de-duplicates on its own: the same key twice makes two PaymentIntents."""
    client = StripeClient(stripe_emulator.base_url, stripe_emulator.secret_key)
    first = client.create_payment_intent(amount_fen=100, metadata={"order_id": 9002}, idempotency_key="same")
    second = client.create_payment_intent(amount_fen=100, metadata={"order_id": 9002}, idempotency_key="same")
    assert first["id"] != second["id"]


def test_ensure_payment_intent_twice_gives_one_payment_intent(stripe_app, stripe_emulator):
    with stripe_app.app_context():
        first = payments.ensure_payment_intent(db.session, order_id=101, amount_fen=AMOUNT_FEN,
                                               metadata={"buyer": "丽水市生态环境局"})
        second = payments.ensure_payment_intent(db.session, order_id=101, amount_fen=AMOUNT_FEN)
        assert first.id == second.id and first.payment_intent_id == second.payment_intent_id
        assert first.status == "requires_payment_method" and first.client_secret.startswith(first.payment_intent_id)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PaymentAttempt)) == 1
    intents = intents_for_order(stripe_emulator, 101)
    assert [pi["id"] for pi in intents] == [first.payment_intent_id]
    assert intents[0]["metadata"]["buyer"] == "丽水市生态环境局"


@pytest.mark.postgres
def test_double_clicks_racing_create_one_payment_intent(stripe_app, stripe_emulator):
    barrier = threading.Barrier(4)
    ids, errors = [], []

    def click():
        try:
            with stripe_app.app_context():
                barrier.wait()
                attempt = payments.ensure_payment_intent(db.session, order_id=202, amount_fen=AMOUNT_FEN)
                ids.append(attempt.payment_intent_id)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(ids) == 4 and len(set(ids)) == 1
    assert [pi["id"] for pi in intents_for_order(stripe_emulator, 202)] == ids[:1]


def test_a_4242_card_pays(stripe_app, stripe_emulator):
    with stripe_app.app_context():
        attempt = payments.ensure_payment_intent(db.session, order_id=301, amount_fen=AMOUNT_FEN)
        status = payments.pay_with_card_token(db.session, attempt, card_token(stripe_emulator, "4242424242424242"))["status"]
        assert status == "succeeded" and attempt.status == "succeeded"
        assert get_client().retrieve_payment_intent(attempt.payment_intent_id)["status"] == "succeeded"
        # Submitting again (a double click) charges nothing more.
        again = payments.pay_with_card_token(db.session, attempt, card_token(stripe_emulator, "4242424242424242"))
        assert again["status"] == "succeeded"
        assert payments.ensure_payment_intent(db.session, order_id=301, amount_fen=AMOUNT_FEN).id == attempt.id
        refund = payments.refund_attempt(db.session, attempt)
        assert refund["status"] == "succeeded" and refund["amount"] == AMOUNT_FEN
    assert len(intents_for_order(stripe_emulator, 301)) == 1


def test_a_declined_card_gets_a_clear_message_and_the_next_try_a_fresh_payment_intent(stripe_app, stripe_emulator):
    with stripe_app.app_context(), stripe_app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        attempt = payments.ensure_payment_intent(db.session, order_id=401, amount_fen=AMOUNT_FEN)
        with pytest.raises(payments.PaymentFailed) as caught:
            payments.pay_with_card_token(db.session, attempt, card_token(stripe_emulator, "4000000000000341"))
        assert caught.value.code == "card_declined" and caught.value.status == 402
        assert "拒绝" in str(caught.value.message)
        db.session.refresh(attempt)
        assert attempt.status == "failed" and attempt.last_error_code == "card_declined"
        assert get_client().retrieve_payment_intent(attempt.payment_intent_id)["status"] == "canceled"

        retry = payments.ensure_payment_intent(db.session, order_id=401, amount_fen=AMOUNT_FEN)
        assert retry.id != attempt.id and retry.attempt_number == 2
        assert retry.payment_intent_id != attempt.payment_intent_id
        status = payments.pay_with_card_token(db.session, retry, card_token(stripe_emulator, "4242424242424242"))
        assert status["status"] == "succeeded"


def test_a_3d_secure_card_needs_authentication_then_pays(stripe_app, stripe_emulator):
    with stripe_app.app_context():
        attempt = payments.ensure_payment_intent(db.session, order_id=501, amount_fen=AMOUNT_FEN)
        status = payments.pay_with_card_token(db.session, attempt, card_token(stripe_emulator, "4000002500003155"))
        assert status["status"] == "requires_action" and attempt.status == "requires_action"
        # What stripe.confirmCardPayment(client_secret) does in the emulator once the buyer confirms.
        response = requests.post(
            f"{stripe_emulator.base_url}/v1/payment_intents/{attempt.payment_intent_id}/_authenticate",
            params={"success": "true"}, timeout=5,
            json={"key": stripe_emulator.publishable_key, "client_secret": attempt.client_secret})
        assert response.status_code == 200 and response.json()["status"] == "succeeded"
        # No webhook reaches this test: the periodic re-read finds the attempt and settles it.
        assert payments.attempts_to_refresh(db.session, older_than_seconds=0) == [attempt]
        assert payments.refresh_attempt(db.session, attempt)["status"] == "succeeded"
        assert payments.attempts_to_refresh(db.session, older_than_seconds=0) == []
        db.session.commit()
        assert attempt.status == "succeeded"


def test_a_malformed_token_is_refused_before_calling_stripe(stripe_app):
    with stripe_app.app_context():
        attempt = payments.ensure_payment_intent(db.session, order_id=601, amount_fen=AMOUNT_FEN)
        with pytest.raises(payments.ValidationFailed):
            payments.pay_with_card_token(db.session, attempt, "tok_../../v1/charges")


def test_stripe_down_while_starting_a_payment_leaves_a_retryable_attempt(make_app, stripe_emulator):
    from tests.conftest import free_port

    down = make_app(**{**stripe_emulator.app_config(), "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"})
    with down.app_context():
        down.extensions["tanhui_stripe"] = StripeClient(down.config["STRIPE_API_BASE"], "sk_test_x",
                                                        sleep=lambda _s: None)
        with pytest.raises(payments.PaymentUnavailable):
            payments.ensure_payment_intent(db.session, order_id=701, amount_fen=AMOUNT_FEN)
        attempt = db.session.scalars(sa.select(PaymentAttempt)).one()
        assert attempt.status == "new" and attempt.payment_intent_id is None
        key = attempt.idempotency_key
        # Stripe is back: the same attempt, with the same persisted key, gets its PaymentIntent.
        down.extensions["tanhui_stripe"] = StripeClient(stripe_emulator.base_url, stripe_emulator.secret_key)
        again = payments.ensure_payment_intent(db.session, order_id=701, amount_fen=AMOUNT_FEN)
        assert again.id == attempt.id and again.idempotency_key == key and again.payment_intent_id
