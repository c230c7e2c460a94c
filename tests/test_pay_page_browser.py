"""The card form in a real (headless) browser, against the Stripe emulator's Stripe.js.

A test-only blueprint stands in for the orders module's pay view: it renders the card form
partial and calls ensure_payment_intent / pay_with_card_token exactly as that view will.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template_string, request, url_for
from werkzeug.serving import make_server

from marketplace.extensions import db
from marketplace.models import PaymentAttempt, StripeEvent
from marketplace.services import payments
from tests.conftest import free_port, wait_for

pytestmark = [pytest.mark.stripe, pytest.mark.browser]

AMOUNT_FEN = 17_540_200
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PAGE = """{% extends "base.html" %}
{% block content %}<h1>订单 {{ order_id }}</h1>{% include "payments/_card_form.html" %}{% endblock %}"""


def pay_blueprint() -> Blueprint:
    bp = Blueprint("test_pay", __name__)

    @bp.get("/_test/orders/<int:order_id>/pay")
    def page(order_id):
        return render_template_string(PAGE, order_id=order_id, amount_cny="175402.00",
                                      pay_url=url_for("test_pay.pay", order_id=order_id),
                                      return_url=url_for("test_pay.done", order_id=order_id))

    @bp.post("/_test/orders/<int:order_id>/pay")
    def pay(order_id):
        token = (request.get_json(silent=True) or {}).get("token")
        attempt = payments.ensure_payment_intent(db.session, order_id=order_id, amount_fen=AMOUNT_FEN)
        status = payments.pay_with_card_token(db.session, attempt, token)
        return jsonify(status=status, client_secret=attempt.client_secret)

    @bp.get("/_test/orders/<int:order_id>/done")
    def done(order_id):
        attempt = payments.current_attempt(db.session, order_id)
        status = payments.refresh_attempt(db.session, attempt)
        db.session.commit()
        return f"<p id='status'>{status}</p>"

    return bp


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001
            from tests.conftest import service_missing

            service_missing("Chromium", str(exc))
        yield instance
        instance.close()


@pytest.fixture
def live_server(make_app, stripe_emulator):
    port = free_port()
    app = make_app(**stripe_emulator.app_config(), SERVER_NAME=f"127.0.0.1:{port}",
                   PREFERRED_URL_SCHEME="http")
    app.register_blueprint(pay_blueprint())
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    stripe_emulator.register_webhook(f"{base}/webhooks/stripe")
    yield app, base
    server.shutdown()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.csp_violations = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and page.csp_violations.append(msg.text))
    yield page
    context.close()


def fill_card(page, number: str):
    page.fill("#card-element input[placeholder=number]", number)
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "34")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "323000")


def attempts(app, order_id) -> list[PaymentAttempt]:
    with app.app_context():
        rows = db.session.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id)
                                  .order_by(PaymentAttempt.attempt_number)).all()
        db.session.expunge_all()
        return rows


def test_a_4242_card_pays_and_the_webhook_confirms_it(live_server, page):
    app, base = live_server
    page.goto(f"{base}/_test/orders/11/pay")
    assert page.get_attribute("#card-errors", "aria-live") == "assertive"
    assert "银行卡信息" in page.inner_text("#card-form")
    fill_card(page, "4242424242424242")
    page.click("#card-pay-button")
    page.wait_for_url(f"{base}/_test/orders/11/done", timeout=15000)
    assert page.inner_text("#status") == "succeeded"
    [attempt] = attempts(app, 11)
    assert attempt.status == "succeeded"

    def webhook_recorded():
        with app.app_context():
            return db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent).where(
                StripeEvent.type == "payment_intent.succeeded",
                StripeEvent.payload["data"]["object"]["id"].as_string() == attempt.payment_intent_id))

    wait_for(webhook_recorded, timeout=15)
    assert page.csp_violations == []


def test_a_declined_card_shows_a_clear_message_in_chinese(live_server, page):
    app, base = live_server
    page.goto(f"{base}/_test/orders/12/pay")
    fill_card(page, "4000000000000341")
    page.click("#card-pay-button")
    page.wait_for_selector("#card-errors:not(:empty)", timeout=15000)
    assert page.inner_text("#card-errors") == "银行卡被拒绝，请换一张卡或联系发卡银行。"
    assert page.is_enabled("#card-pay-button")  # they may try another card
    assert [a.status for a in attempts(app, 12)] == ["failed"]

    fill_card(page, "4242424242424242")
    page.click("#card-pay-button")
    page.wait_for_url(f"{base}/_test/orders/12/done", timeout=15000)
    assert [a.status for a in attempts(app, 12)] == ["failed", "succeeded"]
    assert page.csp_violations == []


def test_a_3d_secure_card_is_authenticated_then_paid(live_server, page):
    app, base = live_server
    page.goto(f"{base}/_test/orders/13/pay")
    fill_card(page, "4000002500003155")
    page.click("#card-pay-button")
    page.click("text=Complete authentication", timeout=15000)  # the emulator's 3-D Secure dialog
    page.wait_for_url(f"{base}/_test/orders/13/done", timeout=15000)
    assert page.inner_text("#status") == "succeeded"
    assert [a.status for a in attempts(app, 13)] == ["succeeded"]


def test_a_failed_3d_secure_says_so_and_another_try_succeeds(live_server, page):
    app, base = live_server
    page.goto(f"{base}/_test/orders/14/pay")
    fill_card(page, "4000002500003155")
    page.click("#card-pay-button")
    page.click("text=Fail authentication", timeout=15000)
    page.wait_for_selector("#card-errors:not(:empty)", timeout=15000)
    assert "身份验证" in page.inner_text("#card-errors")
    fill_card(page, "4000002500003155")
    page.click("#card-pay-button")
    page.click("text=Complete authentication", timeout=15000)
    page.wait_for_url(f"{base}/_test/orders/14/done", timeout=15000)
    assert [a.status for a in attempts(app, 14)] == ["succeeded"]  # the same PaymentIntent, paid
