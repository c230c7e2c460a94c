"""The fault matrix: the services the marketplace stands on fail while people use it, and nothing is lost.

Every case ends with the ledger's invariants proved (``ledger.check_invariants``, what ``marketplace ledger
check`` runs) and the order in a state someone can act on. The services that a case stops, restarts or
slows down are its own (tests/faults.py: a private PostgreSQL cluster, a private Redis, a proxy in front of
the Stripe emulator), never the shared ones. docs/fault-matrix.md describes each case.

(d), a worker SIGKILLed mid-task, is in tests/test_retirement_worker.py beside the other crash tests:
``test_a_worker_killed_while_drawing_the_certificate_completes_exactly_once`` and
``test_a_worker_killed_inside_the_retirement_transaction_retires_exactly_once``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from marketplace.accounts.models import User
from marketplace.certificates.models import Certificate
from marketplace.core import outbox
from marketplace.core.db import utcnow
from marketplace.core.outbox_models import DeadLetter, OutboxMessage
from marketplace.core.quantities import fen, parse_tonnes
from marketplace.extensions import db
from marketplace.orders import history as notes
from marketplace.orders import payments
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.orders.payment_models import PaymentAttempt
from marketplace.orders.stripe.webhook import signature_header
from marketplace.registry import ledger
from marketplace.registry.models import SerialRange
from tests.conftest import CsrfClient, wait_for
from tests.factories import PASSWORD, Factory
from tests.test_payments_stripe import card_token, intents_for_order


def _sign_in(application, email: str):
    client = application.test_client()
    answer = CsrfClient(client).post_form("/login", {"email": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    return client


def _ledger_ok(application) -> None:
    with application.app_context():
        db.session.remove()
        report = ledger.check_invariants(db.session)
        assert report.ok, report.problems


def _orders(application) -> list[Order]:
    with application.app_context():
        db.session.remove()
        return list(db.session.scalars(sa.select(Order).order_by(Order.id)))


def _reserved(application, order_id: int) -> int:
    with application.app_context():
        return orders.reserved_units(db.session, db.session.get(Order, order_id))


def _card_order(application, factory, tonnes: str = "10") -> tuple[int, User]:
    listing = factory.listing(tonnes="100")
    buyer = factory.user("buyer")
    with application.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="card", beneficiary="测试受益方", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        return order.id, buyer


def _charges(emulator, order_id: int, not_in: set[str] = frozenset()) -> list[str]:
    """The succeeded PaymentIntents for the order at Stripe, but those in ``not_in`` (the emulator lives for
    the whole run, and order ids start again at 1 in every test)."""
    return [pi["id"] for pi in intents_for_order(emulator, order_id)
            if pi["status"] == "succeeded" and pi["id"] not in not_in]


def _in_language(application, locale: str, message) -> str:
    with application.test_request_context(), force_locale(locale):
        return str(message())


def _csrf(client, page: str) -> str:
    html = client.get(page).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


# --- (a) PostgreSQL restarted during order placement ----------------------------------------------

@pytest.fixture
def private_db_app(make_app, private_postgres):
    """The application on a PostgreSQL cluster of this test's own, its schema created."""
    application = make_app(SQLALCHEMY_DATABASE_URI=private_postgres.url, RATELIMIT_STORAGE_URI="memory://",
                           SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True})
    with application.app_context():
        db.create_all()
        db.session.remove()
    return application


class FaultOnce:
    """Restart (or stop) the private PostgreSQL the first time a statement containing ``when`` is about to be
    sent (or, with ``at_commit``, just before the transaction's COMMIT): the request's connection dies in the
    middle of its transaction."""

    def __init__(self, application, server, *, action: str = "restart", when: str = "", at_commit: bool = False):
        self.server, self.action, self.when, self.done = server, action, when, False
        with application.app_context():
            self.engine = db.engine
        self.event = "commit" if at_commit else "before_cursor_execute"

    def _fire(self, *args) -> None:
        statement = args[2] if self.event == "before_cursor_execute" else ""
        if not self.done and self.when in statement:
            self.done = True
            getattr(self.server, self.action)("fast")

    def __enter__(self):
        sa.event.listen(self.engine, self.event, self._fire)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, self.event, self._fire)


def _confirmation(client, form: dict) -> dict:
    """The order form's review step, then what its "confirm" button sends."""
    review = CsrfClient(client).post_form("/buyers/orders/new", {**form, "confirm": "0"})
    html = review.get_data(as_text=True)
    return {**form, "confirm": "1", "csrf_token": _csrf(client, "/buyers/orders/new"),
            "request_token": re.search(r'name="request_token" type="hidden" value="([0-9a-f]+)"', html).group(1)}


@pytest.mark.postgres
def test_a_postgres_restart_while_placing_an_order_is_retried_or_a_clear_error_and_the_retry_places_it_once(
        private_db_app, private_postgres):
    application, server = private_db_app, private_postgres
    factory = Factory(application)
    listing = factory.listing(tonnes="50", price="30.00")
    buyer = factory.user("buyer")
    client = _sign_in(application, buyer.email)
    form = {"quantity": "2", "listing_id": str(listing.id), "prefer_county_id": "", "event_id": "",
            "payment_method": "card", "beneficiary": "甲公司", "retirement_reason": "测试"}

    # The server restarts while the order's transaction is open (the reservation written, the order row
    # not yet): the transaction dies with its connection, and the placement is tried again from scratch on
    # a fresh one (pool pre-ping) — the buyer sees nothing but a placed order.
    with FaultOnce(application, server, when="INSERT INTO orders") as fault:
        placed = client.post("/buyers/orders/new", data=_confirmation(client, form))
    assert fault.done
    assert placed.status_code == 302, placed.get_data(as_text=True)[:2000]
    [first] = _orders(application)
    assert _reserved(application, first.id) == parse_tonnes("2")
    _ledger_ok(application)

    # The server stops at the same point and stays down: a clear answer (503, in the buyer's language, a
    # Retry-After), not an error page, and nothing half-placed.
    confirm = _confirmation(client, form)
    with FaultOnce(application, server, action="stop", when="INSERT INTO orders") as fault:
        failed = client.post("/buyers/orders/new", data=confirm)
    assert fault.done
    try:
        assert failed.status_code == 503, failed.get_data(as_text=True)[:2000]
        assert failed.headers["Retry-After"] and failed.mimetype == "text/html", failed.get_data(as_text=True)[:300]
        page = failed.get_data(as_text=True)
        assert _in_language(application, "zh_CN", _503_message) in page
        assert "Traceback" not in page
    finally:
        server.start()
    assert [o.id for o in _orders(application)] == [first.id]
    _ledger_ok(application)

    # The same confirmation again once the server is back (the buyer presses the button once more): placed,
    # once; a third press finds it.
    again = client.post("/buyers/orders/new", data=confirm)
    assert again.status_code == 302, again.get_data(as_text=True)[:2000]
    first_row, second = _orders(application)
    assert again.headers["Location"] == f"/buyers/orders/{second.id}/pay"
    assert client.post("/buyers/orders/new", data=confirm).headers["Location"] == again.headers["Location"]
    assert len(_orders(application)) == 2 and _reserved(application, second.id) == parse_tonnes("2")
    _ledger_ok(application)


def _503_message() -> str:
    from marketplace.core.http_errors import default_message

    return default_message(503)


@pytest.mark.postgres
def test_a_postgres_restart_at_commit_and_a_stopped_postgres_answer_the_api_with_503_and_the_key_retries(
        private_db_app, private_postgres):
    application, server = private_db_app, private_postgres
    factory = Factory(application)
    listing = factory.listing(tonnes="50", price="30.00")
    buyer = factory.user("buyer")
    token = factory.token(buyer)
    client = application.test_client()
    body = {"quantity_tonnes": "1.5", "listing_id": listing.id, "payment_method": "bank_transfer",
            "beneficiary": "乙公司", "retirement_reason": "测试"}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "fault-matrix-a-1"}

    with FaultOnce(application, server, at_commit=True) as fault:
        at_commit = client.post("/api/v1/orders", json=body, headers=headers)
    assert fault.done
    assert at_commit.status_code == 503, at_commit.get_data(as_text=True)[:2000]
    assert at_commit.get_json()["error"]["code"] == "database_unavailable"
    assert _orders(application) == []

    server.stop()  # down for a while: every call is a 503 with a message, none a 500
    try:
        down = client.post("/api/v1/orders", json=body, headers=headers)
        assert down.status_code == 503 and down.get_json()["error"]["message"]
        assert client.get("/api/v1/orders/1", headers=headers).status_code == 503
    finally:
        server.start()

    created = client.post("/api/v1/orders", json=body, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)[:2000]
    again = client.post("/api/v1/orders", json=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == created.get_json()["id"]
    [order] = _orders(application)
    assert _reserved(application, order.id) == parse_tonnes("1.5")
    _ledger_ok(application)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_postgres_outage_under_a_worker_is_retried_and_the_order_is_retired_once(
        private_db_app, private_postgres, make_app, worker_factory, redis_url):
    server = private_postgres
    application = make_app(SQLALCHEMY_DATABASE_URI=server.url, CELERY_BROKER_URL=redis_url,
                           RATELIMIT_STORAGE_URI="memory://", OUTBOX_PUBLISH_ON_COMMIT=False)
    worker = worker_factory(redis_url, DATABASE_URL=server.url)
    factory = Factory(application)
    listing = factory.listing(tonnes="50")
    buyer, bureau = factory.user("buyer"), factory.user("bureau")
    with application.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("7"),
                                   payment_method="bank_transfer", beneficiary="丙公司", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference="B-7")
        db.session.commit()
        order_id = order.id

    server.stop()  # the database goes away just as the retirement is asked for
    try:
        with application.app_context():
            application.extensions["celery"].send_task(orders.RETIRE_TASK, kwargs={"order_id": order_id})
        # The task meets the dead database and is retried with back-off (not dropped, not a dead letter yet).
        wait_for(lambda: re.search(r"Task tanhui\.retire_order\[[^\]]+\] retry", worker.log()), timeout=60)
    finally:
        server.start()
    with application.app_context():
        # The certificate and notification requests the worker writes are published by it; nothing to sweep.
        wait_for(lambda: db.session.get(Order, order_id, populate_existing=True).status == "completed",
                 timeout=90, interval=0.5)
        ranges = db.session.scalars(sa.select(SerialRange).where(SerialRange.ref == f"order:{order_id}")).all()
        assert sum(r.units for r in ranges) == parse_tonnes("7")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 1
        assert db.session.scalars(sa.select(DeadLetter)).all() == []
    _ledger_ok(application)


# --- (b) Redis stopped and started during a card payment ------------------------------------------

@pytest.fixture
def limiter_rebound(make_app):
    """The rate limiter is one object, bound to the storage of the last application built: after a test
    that put it on a private Redis, bind it back to the suite's (before that Redis is gone, the counters
    are reset after each test)."""
    yield
    make_app()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.stripe
def test_redis_stopped_during_a_card_payment_the_payment_and_the_retirement_complete_once_it_is_back(
        make_app, factory, worker_factory, private_redis, stripe_emulator, limiter_rebound):
    application = make_app(**stripe_emulator.app_config(), CELERY_BROKER_URL=private_redis.url,
                           RATELIMIT_STORAGE_URI=private_redis.url)
    worker_factory(private_redis.url, **{k: v for k, v in stripe_emulator.app_config().items()
                                         if k.startswith("STRIPE_")})
    order_id, buyer = _card_order(application, factory)
    earlier_charges = set(_charges(stripe_emulator, order_id))
    client = _sign_in(application, buyer.email)  # the sign-in limiter counts on this Redis
    csrf = _csrf(client, f"/buyers/orders/{order_id}/pay")

    private_redis.stop()  # broker and limiter gone while the buyer pays
    token = card_token(stripe_emulator, "4242424242424242")
    started = time.monotonic()
    answer = client.post(f"/buyers/orders/{order_id}/pay/card", json={"token": token}, headers={"X-CSRFToken": csrf})
    elapsed = time.monotonic() - started
    # The relay's failed publish (after the commit) costs the payer little.
    assert elapsed < 5, elapsed
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    assert answer.get_json()["status"] == "succeeded"
    with application.app_context():
        assert db.session.get(Order, order_id).status == "paid"
        waiting = db.session.scalars(sa.select(OutboxMessage).where(
            OutboxMessage.task_name == orders.RETIRE_TASK, OutboxMessage.published_at.is_(None))).all()
    assert len(waiting) == 1 and waiting[0].last_error  # the relay could not publish: kept for the sweeper

    private_redis.start()  # back, empty (nothing was persisted)
    assert _sign_in(application, buyer.email)  # signing in works again
    with application.app_context():
        wait_for(lambda: outbox.sweep(0) >= 0 and db.session.get(Order, order_id, populate_existing=True).status
                 == "completed", timeout=90, interval=1)
    with application.app_context():
        certificates = db.session.scalars(sa.select(Certificate).where(Certificate.order_id == order_id)).all()
        ranges = db.session.scalars(sa.select(SerialRange).where(SerialRange.ref == f"order:{order_id}")).all()
    assert len(certificates) == 1 and sum(r.units for r in ranges) == parse_tonnes("10")
    assert len(_charges(stripe_emulator, order_id, earlier_charges)) == 1
    _ledger_ok(application)


# --- (c) the Stripe endpoint down, and slow ---------------------------------------------------------

@pytest.fixture
def stripe_behind_proxy(make_app, stripe_emulator, faulty_proxy):
    """The application talking to the Stripe emulator through the faulty proxy, with the production settings
    scaled down tenfold (one second to answer, three tries, 2.5 s for all the calls of one request) so that
    a slow Stripe costs the test seconds, not minutes."""
    faulty_proxy.delay = 3.0
    return make_app(**{**stripe_emulator.app_config(), "STRIPE_API_BASE": faulty_proxy.base_url,
                       "STRIPE_CONNECT_TIMEOUT_MS": 1000, "STRIPE_READ_TIMEOUT_MS": 1000, "STRIPE_MAX_ATTEMPTS": 3,
                       "STRIPE_REQUEST_BUDGET_MS": BUDGET_MS})


#: What one pay request may spend on Stripe in the test (its three tries of one second, with back-off
#: between them, would take 3.75 s or more).
BUDGET_MS = 2500


@pytest.mark.postgres
@pytest.mark.stripe
def test_stripe_down_or_slow_tells_the_payer_in_their_language_and_the_order_stays_payable(
        stripe_behind_proxy, stripe_emulator, faulty_proxy, factory):
    application = stripe_behind_proxy
    order_id, buyer = _card_order(application, factory)
    earlier_charges = set(_charges(stripe_emulator, order_id))
    client = _sign_in(application, buyer.email)
    csrf = _csrf(client, f"/buyers/orders/{order_id}/pay")

    def pay(lang: str = "zh_CN"):
        # The card goes from the browser to Stripe directly (it is our server that cannot reach Stripe).
        token = card_token(stripe_emulator, "4242424242424242")
        started = time.monotonic()
        answer = client.post(f"/buyers/orders/{order_id}/pay/card?lang={lang}", json={"token": token},
                             headers={"X-CSRFToken": csrf, "Accept": "application/json"})
        # The payer hears back within the request's budget for Stripe (plus this server's own work).
        assert time.monotonic() - started < BUDGET_MS / 1000 + 1.0
        return answer

    def still_payable():
        with application.app_context():
            order = db.session.get(Order, order_id)
            assert order.status == "pending_payment" and orders.reserved_units(db.session, order) == parse_tonnes("10")
        assert client.get(f"/buyers/orders/{order_id}/pay").status_code == 200

    for mode, lang in (("down", "zh_CN"), ("slow", "en")):
        faulty_proxy.mode, faulty_proxy.slow_paths = mode, ()
        answer = pay(lang)
        assert answer.status_code == 503, (mode, answer.get_data(as_text=True)[:2000])
        error = answer.get_json()["error"]
        assert error["code"] == "payment_unavailable"
        assert error["message"] == _in_language(application, lang, payments.unavailable_message)
        still_payable()
    assert _in_language(application, "en", payments.unavailable_message) != _in_language(
        application, "zh_CN", payments.unavailable_message)

    # Slow only on the confirmation: the card is charged at Stripe, but our server never hears it.
    faulty_proxy.mode, faulty_proxy.slow_paths = "slow", ("/confirm",)
    answer = pay()
    assert answer.status_code == 503, answer.get_data(as_text=True)[:2000]
    still_payable()
    # Stripe's webhook for that charge arrives while Stripe's API is still slow to answer the read-back: a
    # 503 within the budget, nothing recorded, so Stripe delivers it again later.
    with application.app_context():
        intent_id = payments.current_attempt(db.session, order_id).payment_intent_id
    event = json.dumps({"id": "evt_fault_c3", "object": "event", "type": "payment_intent.succeeded",
                        "data": {"object": {"id": intent_id, "object": "payment_intent"}}}).encode()

    def deliver():
        started = time.monotonic()
        answer = application.test_client().post(
            "/webhooks/stripe", data=event, content_type="application/json",
            headers={"Stripe-Signature": signature_header(event, [stripe_emulator.webhook_secret])})
        assert time.monotonic() - started < BUDGET_MS / 1000 + 1.0
        return answer

    faulty_proxy.slow_paths = ()
    webhook = deliver()
    assert webhook.status_code == 503, webhook.get_data(as_text=True)[:2000]
    still_payable()
    # Later, Stripe answers again and the buyer presses "pay" once more: the charge already made is found
    # (no second one), and the order is paid.
    faulty_proxy.mode = "pass"
    answer = pay()
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    assert answer.get_json()["status"] == "succeeded"
    with application.app_context():
        assert db.session.get(Order, order_id).status == "paid"
    # The webhook's redelivery is accepted and changes nothing more.
    redelivered = deliver()
    assert redelivered.status_code == 200 and redelivered.get_json()["handled"]
    assert len(_charges(stripe_emulator, order_id, earlier_charges)) == 1
    _ledger_ok(application)


# --- (e) beat stopped for an hour -------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.stripe
def test_beat_stopped_for_an_hour_the_periodic_tasks_catch_up_when_it_runs_again(
        make_app, factory, worker_factory, redis_url, stripe_emulator):
    stripe_settings = stripe_emulator.app_config()
    application = make_app(**stripe_settings, CELERY_BROKER_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url)
    # A worker with the default of what "stalled" means (ORDER_REDRIVE_AFTER_SECONDS): time is moved instead.
    worker_factory(redis_url, **{k: v for k, v in stripe_settings.items() if k.startswith("STRIPE_")})
    an_hour_ago = utcnow() - timedelta(hours=1)

    # 1. A card order nobody paid: its reservation ran out during the hour.
    abandoned, _buyer = _card_order(application, factory, tonnes="3")
    # 2. A card order paid at Stripe whose webhook was lost: only the re-read can find out.
    unheard_of, _buyer = _card_order(application, factory, tonnes="4")
    # 3. A paid order whose retirement task was lost (the broker restarted, say).
    stalled, _buyer = _card_order(application, factory, tonnes="5")
    with application.app_context():
        for order_id in (unheard_of, stalled):
            order = db.session.get(Order, order_id)
            attempt = payments.ensure_payment_intent(db.session, order_id=order_id, amount_fen=fen(order.amount_cny),
                                                     metadata={"order_id": order_id})
            payments.get_client().confirm_payment_intent(attempt.payment_intent_id, "pm_card_visa")
        # Paid by the pay page, and its retirement request marked published but lost on the way (a broker
        # restart without persistence loses messages it held).
        application.config["OUTBOX_PUBLISH_ON_COMMIT"] = False
        assert orders.mark_paid(db.session, stalled, note=notes.card_paid(attempt.payment_intent_id, via="pay_page"))
        db.session.commit()
        application.config["OUTBOX_PUBLISH_ON_COMMIT"] = True
        db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.task_name == orders.RETIRE_TASK)
                           .values(published_at=an_hour_ago))
        # The hour passes: every clock the periodic tasks look at is moved back.
        db.session.execute(sa.update(Order).where(Order.id.in_((abandoned, unheard_of)))
                           .values(reserved_until=an_hour_ago, updated_at=an_hour_ago))
        db.session.execute(sa.update(Order).where(Order.id == stalled).values(updated_at=an_hour_ago))
        db.session.execute(sa.update(PaymentAttempt).values(updated_at=an_hour_ago))
        db.session.commit()

    # Beat runs again: each periodic task once, as beat sends them.
    celery = application.extensions["celery"]
    with application.app_context():
        for task in ("tanhui.reconcile_payments", "tanhui.expire_reservations", "tanhui.redrive_orders",
                     "tanhui.sweep_outbox"):
            celery.send_task(task)

    def status(order_id):
        with application.app_context():
            return db.session.get(Order, order_id).status

    # The payment found by the re-read was paid before expiry could take its units (the re-read runs first,
    # as beat's first tick would run both; either order is safe: a late payment is honoured while the
    # units are there).
    wait_for(lambda: status(unheard_of) == "completed" and status(stalled) == "completed"
             and status(abandoned) == "expired", timeout=90, interval=0.5)
    with application.app_context():
        assert orders.reserved_units(db.session, db.session.get(Order, abandoned)) == 0
        for order_id, tonnes in ((unheard_of, "4"), (stalled, "5")):
            ranges = db.session.scalars(sa.select(SerialRange).where(SerialRange.ref == f"order:{order_id}")).all()
            assert sum(r.units for r in ranges) == parse_tonnes(tonnes)
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)
                                     .where(Certificate.order_id == order_id)) == 1
    _ledger_ok(application)
