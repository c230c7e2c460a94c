"""Stripe webhooks: only genuine, fresh deliveries pass, and each event is handled exactly once."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.orders.payment_models import StripeEvent
from marketplace.orders.stripe.webhook import (
    SignatureError,
    register_handler,
    sign,
    signature_header,
    unregister_handler,
    verify_signature,
    webhook_secrets,
)

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"
NOW = 1_790_000_000
EVENT = {"id": "evt_test_1", "object": "event", "type": "tanhui.test",
         "data": {"object": {"id": "pi_1", "metadata": {"order_id": "7"}}}}


def body(event=EVENT) -> bytes:
    return json.dumps(event, indent=2, sort_keys=True).encode()


# --- the signature -------------------------------------------------------------------------------

def test_a_genuine_delivery_passes_and_returns_the_event():
    payload = body()
    assert verify_signature(payload, f"t={NOW},v1={sign(payload, SECRET, NOW)}", [SECRET], now=NOW) == EVENT


def test_the_signature_is_stripes_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac

    payload = body()
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + payload, hashlib.sha256).hexdigest()
    assert sign(payload, SECRET, NOW) == expected


def reason(payload, header, secrets=(SECRET,), now=NOW):
    with pytest.raises(SignatureError) as caught:
        verify_signature(payload, header, list(secrets), now=now)
    return caught.value.reason


def test_a_wrong_secret_is_refused():
    payload = body()
    assert reason(payload, signature_header(payload, ["whsec_someone_else"], NOW)) == "no_matching_signature"


def test_one_changed_byte_is_refused():
    payload = body()
    header = signature_header(payload, [SECRET], NOW)
    tampered = payload.replace(b'"7"', b'"8"')
    assert tampered != payload and reason(tampered, header) == "no_matching_signature"
    signature = header.split("v1=")[1]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert reason(payload, f"t={NOW},v1={flipped}") == "no_matching_signature"


@pytest.mark.parametrize("skew", [-301, 301, -3600, 86400])
def test_timestamps_beyond_300_seconds_either_way_are_refused(skew):
    payload = body()
    stamp = NOW + skew
    assert reason(payload, signature_header(payload, [SECRET], stamp)) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("skew", [-300, 300, 0])
def test_timestamps_within_300_seconds_pass(skew):
    payload = body()
    assert verify_signature(payload, signature_header(payload, [SECRET], NOW + skew), [SECRET], now=NOW)


def test_a_missing_header_is_refused():
    assert reason(body(), None) == "missing_header"
    assert reason(body(), "") == "missing_header"


@pytest.mark.parametrize("header,why", [
    ("garbage", "malformed_header"),
    ("t=abc,v1=00", "malformed_header"),
    (f"v1={'0' * 64}", "malformed_header"),
    (f"t={NOW}", "no_v1_signature"),
    (f"t={NOW},v0={'0' * 64}", "no_v1_signature"),
    (f"t={NOW},t={NOW},v1={'0' * 64}", "malformed_header"),
    (f"t={NOW},v1=ünicode", "no_matching_signature"),
])
def test_malformed_headers_are_refused(header, why):
    assert reason(body(), header) == why


def test_during_rotation_either_secret_and_either_v1_passes():
    payload = body()
    both = signature_header(payload, [OLD_SECRET, SECRET], NOW)  # Stripe signs with both while rolling
    assert verify_signature(payload, both, [SECRET], now=NOW)
    assert verify_signature(payload, both, [OLD_SECRET], now=NOW)
    only_old = signature_header(payload, [OLD_SECRET], NOW)
    assert verify_signature(payload, only_old, webhook_secrets(f"{SECRET}, {OLD_SECRET}"), now=NOW)
    assert reason(payload, only_old, [SECRET]) == "no_matching_signature"


def test_no_configured_secret_refuses_everything():
    payload = body()
    assert reason(payload, signature_header(payload, [""], NOW), secrets=[]) == "no_secret_configured"
    assert webhook_secrets(" , ") == []


def test_a_signed_body_that_is_not_an_event_is_refused():
    payload = b"[1, 2]"
    assert reason(payload, signature_header(payload, [SECRET], NOW)) == "invalid_payload"


# --- the endpoint --------------------------------------------------------------------------------

@pytest.fixture
def webhook_app(make_app):
    return make_app(STRIPE_WEBHOOK_SECRET=f"{SECRET},{OLD_SECRET}")


@pytest.fixture
def handled():
    """A handler for tanhui.test events that records each call and writes a row in the same transaction."""
    calls = []
    lock = threading.Lock()

    def handler(session, event):
        with lock:
            calls.append(event["id"])
        time.sleep(event.get("sleep", 0))
        if event.get("fail"):
            raise RuntimeError("handler failed")

    register_handler("tanhui.test", handler)
    yield calls
    unregister_handler("tanhui.test", handler)


def deliver(client, event=EVENT, secret=SECRET, stamp=None):
    payload = body(event)
    return client.post("/webhooks/stripe", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": signature_header(payload, [secret], stamp)})


def recorded(app, event_id=EVENT["id"]) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)
                                 .where(StripeEvent.event_id == event_id))


def test_a_signed_event_is_recorded_and_handled_without_a_csrf_token(webhook_app, handled):
    response = deliver(webhook_app.test_client())
    assert response.status_code == 200 and response.get_json() == {"received": True, "handled": 1}
    assert handled == [EVENT["id"]] and recorded(webhook_app) == 1
    with webhook_app.app_context():
        row = db.session.scalars(sa.select(StripeEvent)).one()
        assert row.type == "tanhui.test" and row.payload == EVENT and row.received_at.tzinfo is not None


def test_the_same_event_delivered_five_times_is_handled_once(webhook_app, handled):
    client = webhook_app.test_client()
    answers = [deliver(client) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.get_json().get("duplicate") for a in answers] == [None, True, True, True, True]
    assert handled == [EVENT["id"]] and recorded(webhook_app) == 1


def test_a_bad_signature_gets_a_400_json_error_and_nothing_is_recorded(webhook_app, handled):
    client = webhook_app.test_client()
    response = deliver(client, secret="whsec_forged")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_signature"
    missing = client.post("/webhooks/stripe", data=body(), content_type="application/json")
    assert missing.status_code == 400 and missing.get_json()["error"]["reason"] == "missing_header"
    stale = deliver(client, stamp=int(time.time()) - 301)
    assert stale.status_code == 400 and stale.get_json()["error"]["reason"] == "timestamp_out_of_tolerance"
    assert handled == [] and recorded(webhook_app) == 0


def test_the_previous_secret_still_works_during_rotation(webhook_app, handled):
    assert deliver(webhook_app.test_client(), secret=OLD_SECRET).status_code == 200
    assert handled == [EVENT["id"]]


def test_a_failing_handler_leaves_the_event_unrecorded_for_redelivery(make_app, handled):
    app = make_app(STRIPE_WEBHOOK_SECRET=SECRET, PROPAGATE_EXCEPTIONS=False, TESTING=False)
    client = app.test_client()
    failing = {**EVENT, "fail": True}
    response = deliver(client, failing)
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "server_error"
    assert recorded(app) == 0
    assert deliver(client).status_code == 200  # Stripe's retry, now handled
    assert recorded(app) == 1 and handled == [EVENT["id"], EVENT["id"]]


def test_an_event_without_a_handler_is_recorded_and_acknowledged(webhook_app):
    other = {**EVENT, "id": "evt_other", "type": "customer.created"}
    response = deliver(webhook_app.test_client(), other)
    assert response.status_code == 200 and response.get_json()["handled"] == 0
    assert recorded(webhook_app, "evt_other") == 1


@pytest.mark.postgres
def test_the_same_event_delivered_twice_at_once_is_handled_once(webhook_app, handled):
    slow = {**EVENT, "sleep": 0.5}  # the first delivery's transaction stays open while the second arrives
    barrier = threading.Barrier(2)
    answers = []

    def post():
        client = webhook_app.test_client()
        barrier.wait()
        answers.append(deliver(client, slow))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert sorted(str(a.get_json().get("duplicate")) for a in answers) == ["None", "True"]
    assert handled == [EVENT["id"]] and recorded(webhook_app) == 1
