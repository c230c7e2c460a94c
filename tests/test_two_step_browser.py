"""Two-step enrolment in a real (headless) browser at phone width: the QR code renders under the CSP (an
inline SVG data: image, no script), the secret can be read as text, and the code signs the bureau in."""

from __future__ import annotations

import threading

import pyotp
import pytest
from werkzeug.serving import make_server

from tests.conftest import free_port
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def served(make_app):
    port = free_port()
    app = make_app(SERVER_NAME=f"127.0.0.1:{port}", PREFERRED_URL_SCHEME="http",
                   TWO_STEP_REQUIRED_ROLES=frozenset({"bureau"}))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def phone_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001
            from tests.conftest import service_missing

            service_missing("Chromium", str(exc))
        context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.console_errors = []
        page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
        yield page
        browser.close()


def test_a_bureau_user_enrols_on_a_phone_sized_screen_and_signs_in(served, phone_page, factory):
    _app, base = served
    bureau = factory.user("bureau")
    page = phone_page
    page.goto(f"{base}/login")
    page.fill("#email", bureau.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/login/second-step")
    qr = page.locator("img.qr")
    qr.wait_for()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", qr.element_handle())
    box = qr.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    secret = page.inner_text("#two-step-secret").strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    page.locator(".recovery-codes li").first.wait_for()
    assert page.locator(".recovery-codes li").count() == 10
    page.click("text=继续")
    page.wait_for_url(f"{base}/bureau/")
    assert page.console_errors == []
