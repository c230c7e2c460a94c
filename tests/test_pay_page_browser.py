"""A buyer's whole purchase in a real (headless) browser, through the real pages.

Sign in at /login, order at /buyers/orders/new (review, then confirm), pay on the pay page with the
Stripe emulator's Stripe.js (which posts the signed webhooks back to this live server), follow the
order page. The last test runs a real Celery worker on Redis: retirement, the certificate, the
/verify page and the PDF. Every page is also checked for console errors (CSP violations included).
"""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from marketplace.core.outbox_models import OutboxMessage
from marketplace.extensions import db
from marketplace.orders.models import Order, OrderTransition
from marketplace.orders.payment_models import PaymentAttempt, StripeEvent
from tests.conftest import free_port, wait_for
from tests.factories import PASSWORD

pytestmark = [pytest.mark.stripe, pytest.mark.browser]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000
RETIRE_TASK = "tanhui.retire_order"


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
def serve(make_app, stripe_emulator):
    """Start the application on a free port (settings may be changed) with the emulator's webhook
    pointed at it. Returns (app, base_url)."""
    servers = []

    def start(**overrides):
        port = free_port()
        app = make_app(**{**stripe_emulator.app_config(), "SERVER_NAME": f"127.0.0.1:{port}",
                          "PREFERRED_URL_SCHEME": "http", **overrides})
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        stripe_emulator.register_webhook(f"{base}/webhooks/stripe")
        return app, base

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def page(browser):
    """A zh-CN page that records console errors and uncaught exceptions (a CSP violation is one)."""
    context = browser.new_context(locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
    yield page
    context.close()


@pytest.fixture
def market(factory):
    """A buyer and a listing of 500 t at ¥30.00/t."""
    return factory.user("buyer"), factory.listing(tonnes="500", price="30.00")


# --- steps a buyer takes -------------------------------------------------------------------------

def log_in(page, base, user):
    page.goto(f"{base}/login")
    page.get_by_label("电子邮箱").fill(user.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)


def order_by_card(page, base, listing, tonnes: str = "12.5", *, twice: bool = False) -> int:
    """The order form, driven from the keyboard (labels, tab order, arrow keys on the radios),
    through the review step to the pay page. Returns the order's id."""
    page.goto(f"{base}/buyers/orders/new")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'main form input:not([type=hidden]), main form select, main form textarea')]
        .filter(el => !el.labels || el.labels.length === 0 || !el.labels[0].innerText.trim())
        .map(el => el.id || el.name)""")
    assert unlabelled == []

    page.get_by_label("数量（吨二氧化碳当量）").focus()
    page.keyboard.type(tonnes)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "listing_id"
    page.keyboard.press("ArrowDown")  # the only listing, after "cheapest first"
    assert page.input_value("#listing_id") == str(listing.id)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "prefer_county_id"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "eligible_only"
    page.keyboard.press("Tab")  # into the payment radios: the checked one (bank transfer) has focus
    assert page.evaluate("document.activeElement.value") == "bank_transfer"
    page.keyboard.press("ArrowUp")
    assert page.get_by_label("银行卡（在线支付）").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "purpose"
    # The period's two days (optional; a date field takes a Tab per part of the date in Chromium)
    for expected in ("period_start", "period_end", "beneficiary"):
        for _press in range(4):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == expected:
                break
        assert page.evaluate("document.activeElement.id") == expected
    assert page.input_value("#beneficiary")  # the organisation's name is filled in
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "retirement_reason"
    page.keyboard.type("2026年年会碳中和")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.innerText") == "查看明细和价格"
    page.keyboard.press("Enter")

    page.wait_for_selector("text=确认并预留")
    amount = f"{(Decimal(tonnes) * 30).quantize(Decimal('0.01')):.2f}"  # the listing's ¥30.00/t
    total = page.inner_text("main table tfoot")
    assert tonnes in total and amount in total, total
    if twice:
        # A double click on a slow line: the same confirmation reaches the server twice at once
        # (Chromium itself drops the first of two quick submissions, so send them as the form would).
        statuses = page.evaluate("""() => {
            const form = document.querySelector('main form');
            const send = () => { const data = new FormData(form); data.set('confirm', '1');
                                 return fetch(form.action, {method: 'POST', body: data}).then(r => r.status); };
            return Promise.all([send(), send()]); }""")
        assert statuses == [200, 200], statuses  # both followed their redirect to a page
    page.get_by_role("button", name="确认并预留").click()
    page.wait_for_url(re.compile(r"/buyers/orders/\d+/pay$"))
    assert f"¥{amount}" in page.inner_text("#card-pay-button")
    return int(re.search(r"/orders/(\d+)/pay$", page.url).group(1))


def fill_card(page, number: str, *, month: str = "12", year: str = "34", cvc: str = "123"):
    """The card's fields, found by their labels (pay.js labels the emulator's plain inputs)."""
    page.get_by_label("卡号").fill(number)
    page.get_by_label("有效期（月）").fill(month)
    page.get_by_label("有效期（年）").fill(year)
    page.get_by_label("安全码（CVC）").fill(cvc)


def pay(page, number: str, **fields):
    fill_card(page, number, **fields)
    page.click("#card-pay-button")


# --- what the database says ----------------------------------------------------------------------

def order_state(app, order_id):
    with app.app_context():
        status = db.session.scalar(sa.select(Order.status).where(Order.id == order_id))
        retire_rows = db.session.scalars(sa.select(OutboxMessage.kwargs).where(
            OutboxMessage.task_name == RETIRE_TASK)).all()
        paid = db.session.scalar(sa.select(sa.func.count()).select_from(OrderTransition).where(
            OrderTransition.order_id == order_id, OrderTransition.to_status == "paid"))
        notes = db.session.scalars(sa.select(OrderTransition.note_params).where(
            OrderTransition.order_id == order_id, OrderTransition.to_status == "paid")).all()
        attempts = db.session.scalars(sa.select(PaymentAttempt.status).where(PaymentAttempt.order_id == order_id)
                                      .order_by(PaymentAttempt.attempt_number)).all()
        db.session.remove()
    return {"status": status, "retire_rows": [r.get("order_id") for r in retire_rows], "paid_transitions": paid,
            "paid_notes": list(notes), "attempts": list(attempts)}


def webhook_recorded(app, order_id) -> bool:
    with app.app_context():
        intent_ids = db.session.scalars(sa.select(PaymentAttempt.payment_intent_id).where(
            PaymentAttempt.order_id == order_id, PaymentAttempt.status == "succeeded")).all()
        found = bool(intent_ids) and bool(db.session.scalar(
            sa.select(sa.func.count()).select_from(StripeEvent).where(
                StripeEvent.type == "payment_intent.succeeded",
                StripeEvent.payload["data"]["object"]["id"].as_string().in_(intent_ids))))
        db.session.remove()
    return found


def assert_paid_once(app, order_id):
    """Paid, with exactly one paid transition and one retirement request, after the webhook too."""
    wait_for(lambda: webhook_recorded(app, order_id), timeout=15)  # recorded and handled in one transaction
    state = order_state(app, order_id)
    assert state["status"] == "paid"
    assert state["paid_transitions"] == 1
    assert state["retire_rows"] == [order_id]
    return state


# --- the tests -----------------------------------------------------------------------------------

def test_a_buyer_orders_and_pays_with_4242_and_the_order_is_paid_once(serve, page, market):
    buyer, listing = market
    app, base = serve()
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing)
    assert page.get_attribute("#card-errors", "aria-live") == "assertive"
    assert order_state(app, order_id)["status"] == "pending_payment"

    pay(page, "4242424242424242")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    # The pay view marked it paid before answering (the emulator sends its webhook a second later).
    webhook_first = webhook_recorded(app, order_id)
    state = order_state(app, order_id)
    assert state["status"] == "paid"
    if not webhook_first:
        assert [note["via"] for note in state["paid_notes"]] == ["pay_page"]
    assert "已支付" in page.inner_text("#order-status-text")
    state = assert_paid_once(app, order_id)
    assert state["attempts"] == ["succeeded"]
    assert page.console_errors == []
    # The check can fail: an inline script (what the templates must never have) is refused and logged.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
                  " document.body.appendChild(s); }")
    page.wait_for_timeout(300)
    assert any("Content Security Policy" in e for e in page.console_errors), page.console_errors
    assert page.evaluate("window.x") is None


def test_a_declined_card_says_so_in_chinese_then_4242_pays(serve, page, market):
    buyer, listing = market
    app, base = serve()
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="0.5", twice=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1  # one order, not two
        db.session.remove()

    pay(page, "4000000000000341")
    page.wait_for_selector("#card-errors:not(:empty)")
    assert page.inner_text("#card-errors") == "银行卡被拒绝，请换一张卡或联系发卡银行。"
    assert page.is_enabled("#card-pay-button")
    assert order_state(app, order_id)["status"] == "pending_payment"

    pay(page, "4242424242424242")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    state = assert_paid_once(app, order_id)
    assert state["attempts"] == ["failed", "succeeded"]
    # The decline is answered 402 with its JSON message; Chromium logs every 4xx fetch. Nothing else.
    assert [e for e in page.console_errors if "status of 402" not in e] == []


def test_a_3d_secure_card_is_authenticated_then_the_order_is_paid(serve, page, market):
    buyer, listing = market
    app, base = serve()
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="1")

    pay(page, "4000002500003155")
    page.click("text=Complete authentication")  # the emulator's 3-D Secure dialog
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    # The pay view saw "requires_action": the page's return from 3-D Secure or the webhook marks it paid.
    wait_for(lambda: order_state(app, order_id)["status"] == "paid", timeout=15)
    page.wait_for_selector("#order-status-text:has-text('已支付')")  # the page follows without a reload
    state = assert_paid_once(app, order_id)
    assert state["attempts"] == ["succeeded"]
    assert page.console_errors == []


def test_after_3d_secure_the_order_page_sees_the_payment_without_the_webhook(serve, page, market,
                                                                           stripe_emulator):
    """The browser learns of the authentication before the server: the pay page tells the server, which
    settles the PaymentIntent instead of waiting for a webhook (here: lost) or the periodic re-read. The
    order page itself only shows the status (a GET never asks Stripe)."""
    buyer, listing = market
    app, base = serve()
    stripe_emulator.register_webhook(f"http://127.0.0.1:{free_port()}/webhooks/stripe")  # nobody listens
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="2")

    pay(page, "4000002500003155")
    page.click("text=Complete authentication")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    page.wait_for_selector("#order-status-text:has-text('已支付')", timeout=10_000)
    state = order_state(app, order_id)
    assert state["status"] == "paid" and state["paid_transitions"] == 1 and state["retire_rows"] == [order_id]
    assert state["attempts"] == ["succeeded"]
    assert [note["via"] for note in state["paid_notes"]] == ["pay_page"]
    assert not webhook_recorded(app, order_id)
    assert page.console_errors == []


@pytest.mark.redis
def test_the_whole_story_with_a_worker_certificate_verify_page_and_pdf(serve, page, market, redis_url,
                                                                      celery_worker, tmp_path):
    from marketplace.certificates.pdf import verify_pdf
    from marketplace.certificates.signing import public_keys

    buyer, listing = market
    app, base = serve(CELERY_BROKER_URL=redis_url)
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="175.402")
    started = time.monotonic()
    pay(page, "4242424242424242")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")

    # No reload from here: the page polls its status and shows the certificate when it is ready.
    link = page.wait_for_selector("#certificate-link a[href^='/verify/']", timeout=30_000)
    elapsed = time.monotonic() - started
    number = link.inner_text()
    assert re.fullmatch(r"TH-\d{4}-\d{6}", number), number
    state = order_state(app, order_id)
    assert state["status"] == "completed", celery_worker.log()[-3000:]
    assert state["paid_transitions"] == 1 and state["retire_rows"] == [order_id]
    print(f"paid → certificate link on the page in {elapsed:.1f}s")

    with page.expect_download() as download_info:
        page.click(f"#certificate-link a[href='/certificates/{number}.pdf']")
    pdf = tmp_path / f"{number}.pdf"
    download_info.value.save_as(pdf)

    page.click(f"#certificate-link a[href='/verify/{number}']")
    page.wait_for_url(f"{base}/verify/{number}")
    assert page.inner_text(".verdict .verdict-title") == "有效证书"
    assert "175.402" in page.inner_text("main")

    with app.app_context():
        ok, reason = verify_pdf(pdf, public_keys(db.session))
        db.session.remove()
    assert ok, reason
    assert number in reason
    assert page.console_errors == []


def test_with_stripe_down_the_pay_page_says_so_in_chinese_and_paying_later_works(serve, page, market, faulty_proxy):
    """Fault matrix case c (docs/fault-matrix.md), as the buyer sees it: this server cannot reach Stripe (the
    browser still can: Stripe.js makes the card token), the page says so and stays usable, the order payable."""
    buyer, listing = market
    app, base = serve(STRIPE_API_BASE=faulty_proxy.base_url, STRIPE_READ_TIMEOUT_MS=1000,
                      STRIPE_CONNECT_TIMEOUT_MS=1000, STRIPE_REQUEST_BUDGET_MS=2500)
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="1")

    faulty_proxy.mode = "down"
    pay(page, "4242424242424242")
    page.wait_for_selector("#card-errors:not(:empty)")
    assert page.inner_text("#card-errors") == "支付服务暂时没有响应，请一分钟后重试。"
    assert page.is_enabled("#card-pay-button")
    assert order_state(app, order_id)["status"] == "pending_payment"

    faulty_proxy.mode = "pass"
    pay(page, "4242424242424242")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    assert order_state(app, order_id)["status"] == "paid"
    # The 503 is logged by Chromium like every failed fetch; nothing else.
    assert [e for e in page.console_errors if "status of 503" not in e] == []


def test_the_pay_page_takes_the_card_as_printed_and_says_what_is_missing(serve, page, market):
    """Spaces in the number and a four-digit year are accepted; an empty field is named, not blamed on
    the network; the placeholders are whole and the postal code (not asked for) is hidden."""
    buyer, listing = market
    app, base = serve()
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, tonnes="3")

    placeholders = page.eval_on_selector_all("#card-element input:not([hidden])", "els => els.map(e => e.placeholder)")
    assert placeholders == ["1234 1234 1234 1234", "月", "年", "123"], placeholders
    assert page.is_hidden("#card-element input[placeholder=postal_code]")
    for field in ("#card-number", "#card-exp-month", "#card-exp-year", "#card-cvc"):  # nothing is cut
        assert page.evaluate(f"(() => {{ const e = document.querySelector('{field}'); "
                             "return e.scrollWidth <= e.clientWidth; })()"), field

    page.click("#card-pay-button")
    assert page.inner_text("#card-errors") == "请输入卡号。"
    assert page.get_attribute("#card-number", "aria-invalid") == "true"
    fill_card(page, "4242 4242 4242 4242", month="12", year="", cvc="")
    page.click("#card-pay-button")
    assert page.inner_text("#card-errors") == "请输入卡面上印的有效期月份和年份。"
    fill_card(page, "4242 4242 4242 4242", month="12", year="2034", cvc="")
    page.click("#card-pay-button")
    assert page.inner_text("#card-errors") == "请输入安全码（CVC），即卡背面的 3 或 4 位数字。"
    assert order_state(app, order_id)["attempts"] == []  # nothing reached the payment service

    pay(page, "4242 4242 4242 4242", month="12", year="2034", cvc="123")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    assert_paid_once(app, order_id)
    assert page.console_errors == []
