"""The Stripe client retries only what is safe to retry, with identical requests, and types its errors.

A tiny HTTP server on 127.0.0.1 plays Stripe's part with scripted answers (500s, 429s, slow
answers, declines), so every retry the client makes is seen and compared.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from marketplace.orders.stripe.client import StripeClient, StripeError, StripeUnavailable, encode_params
from tests.conftest import free_port

PI = {"id": "pi_123", "object": "payment_intent", "status": "requires_payment_method", "client_secret": "pi_123_secret_x"}


class ScriptedStripe:
    """Answers each request with the next scripted reply: (status, body, headers, delay seconds)."""

    def __init__(self):
        self.replies: list[tuple[int, dict, dict, float]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "key": self.headers.get("Idempotency-Key"),
                                       "auth": self.headers.get("Authorization")})
                status, payload, headers, delay = outer.replies.pop(0) if outer.replies else (200, PI, {}, 0)
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *replies):
        for reply in replies:
            status, body, *rest = reply
            headers = rest[0] if len(rest) > 0 else {}
            delay = rest[1] if len(rest) > 1 else 0
            self.replies.append((status, body, headers, delay))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_stripe():
    server = ScriptedStripe()
    yield server
    server.close()


@pytest.fixture
def slept():
    return []


@pytest.fixture
def client(fake_stripe, slept):
    return StripeClient(fake_stripe.url, "sk_test_x", read_timeout_ms=500, connect_timeout_ms=500,
                        sleep=slept.append)


def create(client):
    return client.create_payment_intent(amount_fen=17540200, metadata={"order_id": 7}, idempotency_key="order-7-a1")


def test_5xx_answers_are_retried_with_identical_parameters_and_the_same_idempotency_key(fake_stripe, client, slept):
    fake_stripe.script((500, {"error": {"message": "boom"}}), (502, {}), (200, PI))
    assert create(client)["id"] == "pi_123"
    assert len(fake_stripe.requests) == 3
    assert {r["key"] for r in fake_stripe.requests} == {"order-7-a1"}
    assert len({r["body"] for r in fake_stripe.requests}) == 1
    form = dict(parse_qsl(fake_stripe.requests[0]["body"].decode()))
    assert form["metadata[order_id]"] == "7" and form["amount"] == "17540200" and form["currency"] == "cny"
    assert form["payment_method_types[0]"] == "card"
    assert len(slept) == 2 and 0.25 <= slept[0] < 0.75 and 0.5 <= slept[1] < 1.5  # exponential, jittered


def test_429_is_retried_honouring_retry_after(fake_stripe, client, slept):
    fake_stripe.script((429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), (200, PI))
    assert create(client)["id"] == "pi_123"
    assert len(fake_stripe.requests) == 2 and slept == [1.0]
    assert fake_stripe.requests[0]["key"] == fake_stripe.requests[1]["key"] == "order-7-a1"


def test_timeouts_are_retried_then_succeed(fake_stripe, client):
    fake_stripe.script((200, PI, {}, 1.0), (200, PI, {}, 1.0), (200, PI))
    assert create(client)["id"] == "pi_123"
    assert len(fake_stripe.requests) == 3
    assert len({(r["body"], r["key"]) for r in fake_stripe.requests}) == 1


def test_persistent_failure_raises_stripe_unavailable_after_three_attempts(fake_stripe, client):
    fake_stripe.script((500, {}), (503, {}), (500, {}), (200, PI))
    with pytest.raises(StripeUnavailable) as caught:
        create(client)
    assert caught.value.attempts == 3 and caught.value.last_status == 500
    assert len(fake_stripe.requests) == 3


def test_an_unreachable_stripe_raises_stripe_unavailable(slept):
    client = StripeClient(f"http://127.0.0.1:{free_port()}", "sk_test_x", sleep=slept.append)
    with pytest.raises(StripeUnavailable) as caught:
        client.retrieve_payment_intent("pi_123")
    assert caught.value.attempts == 3 and len(slept) == 2


@pytest.mark.parametrize("status", [402, 400, 404])
def test_4xx_answers_are_final_and_typed(fake_stripe, client, status, slept):
    fake_stripe.script((status, {"error": {"type": "card_error" if status == 402 else "invalid_request_error",
                                           "code": "card_declined" if status == 402 else "parameter_invalid",
                                           "decline_code": "insufficient_funds" if status == 402 else None,
                                           "message": "Your card has insufficient funds."}}))
    with pytest.raises(StripeError) as caught:
        create(client)
    assert len(fake_stripe.requests) == 1 and slept == []
    error = caught.value
    assert error.http_status == status and error.message == "Your card has insufficient funds."
    if status == 402:
        assert error.code == "card_declined" and error.decline_code == "insufficient_funds" and error.is_card_error
    else:
        assert error.code == "parameter_invalid" and error.decline_code is None and not error.is_card_error


def test_stripe_should_retry_false_stops_retries(fake_stripe, client):
    fake_stripe.script((500, {}, {"Stripe-Should-Retry": "false"}), (200, PI))
    with pytest.raises(StripeUnavailable):
        create(client)
    assert len(fake_stripe.requests) == 1


def test_every_post_carries_an_idempotency_key_and_the_secret_key(fake_stripe, client):
    client.cancel_payment_intent("pi_123")
    client.cancel_payment_intent("pi_123")
    first, second = fake_stripe.requests
    assert first["key"] and second["key"] and first["key"] != second["key"]
    assert first["auth"].startswith("Basic ")
    client.retrieve_payment_intent("pi_123")
    assert fake_stripe.requests[-1]["method"] == "GET" and fake_stripe.requests[-1]["key"] is None


def test_confirm_with_a_payment_method_updates_first_and_confirms_without_one(fake_stripe, client):
    client.confirm_payment_intent("pi_123", "card_abc", idempotency_key="k")
    update, confirm = fake_stripe.requests
    assert update["path"] == "/v1/payment_intents/pi_123" and b"payment_method=card_abc" in update["body"]
    assert confirm["path"] == "/v1/payment_intents/pi_123/confirm" and b"payment_method" not in confirm["body"]
    assert update["key"] != confirm["key"]


def test_ids_in_paths_are_checked():
    client = StripeClient("http://127.0.0.1:1", "sk_test_x")
    with pytest.raises(ValueError):
        client.retrieve_payment_intent("../v1/customers")


def test_nested_parameters_are_form_encoded_like_stripe():
    assert encode_params({"amount": 5, "metadata": {"order_id": 7}, "confirm": True, "skip": None,
                          "payment_method_types": ["card"], "items": [{"price": "p"}]}) == [
        ("amount", "5"), ("metadata[order_id]", "7"), ("confirm", "true"), ("payment_method_types[0]", "card"),
        ("items[0][price]", "p")]


def test_calls_inside_a_deadline_end_within_its_budget_retries_included(fake_stripe):
    """The pay page makes several calls, each retried: a deadline bounds them all (STRIPE_REQUEST_BUDGET_MS)."""
    client = StripeClient(fake_stripe.url, "sk_test_x", read_timeout_ms=500, connect_timeout_ms=500, backoff_ms=10)
    fake_stripe.script(*[(200, PI, {}, 1.0)] * 6)  # every answer too slow
    started = time.monotonic()
    with client.deadline(800), pytest.raises(StripeUnavailable):
        client.retrieve_payment_intent("pi_123")  # 0.5 s, then the rest of the budget: 0.3 s
    assert 0.7 < time.monotonic() - started < 1.2
    assert len(fake_stripe.requests) == 2
    with client.deadline(800), pytest.raises(StripeUnavailable):
        time.sleep(0.8)  # the budget is spent before the call: no request at all
        client.retrieve_payment_intent("pi_123")
    assert len(fake_stripe.requests) == 2
    fake_stripe.replies.clear()
    assert client.retrieve_payment_intent("pi_123")["id"] == "pi_123"  # outside a deadline: as before
