"""Daily use in a real (headless) browser: forms keep what was typed across a language switch and a
sign-in after the session ended elsewhere, the line form's factor list follows its category, and the
bureau's grouped menu fits on one line at 1366 px (and opens without script)."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors
from tests.factories import PASSWORD
from tests.test_pay_page_browser import CHROMIUM_ARGS, TIMEOUT_MS

pytestmark = [pytest.mark.browser]


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
def base(make_app):
    from tests.conftest import free_port

    port = free_port()
    app = make_app(SERVER_NAME=f"127.0.0.1:{port}", PREFERRED_URL_SCHEME="http")
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture
def context(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    context.console_errors = []
    yield context
    context.close()


def _page(context):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda msg: msg.type == "error" and context.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: context.console_errors.append(f"uncaught: {exc}"))
    return page


def log_in(page, base, user):
    page.goto(f"{base}/login")
    page.get_by_label("电子邮箱").fill(user.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_order_form_keeps_what_was_typed_across_a_language_switch(base, context, factory):
    buyer = factory.user("buyer")
    listing = factory.listing(tonnes="100")
    page = _page(context)
    log_in(page, base, buyer)
    page.goto(f"{base}/buyers/orders/new?listing_id={listing.id}")
    page.fill("#quantity", "12.5")
    page.fill("#beneficiary", "丽水市某某局")
    page.fill("#retirement_reason", "年会碳中和")
    page.check("input[name=payment_method][value=card]")
    page.click("a[lang=en]")
    page.wait_for_url(lambda url: "lang=en" in url)
    assert f"listing_id={listing.id}" in page.url  # the query string stays
    assert page.inner_text("h1")  # English page
    assert page.input_value("#quantity") == "12.5"
    assert page.input_value("#beneficiary") == "丽水市某某局"
    assert page.input_value("#retirement_reason") == "年会碳中和"
    assert page.is_checked("input[name=payment_method][value=card]")
    assert page.input_value("#listing_id") == str(listing.id)
    assert context.console_errors == []


def test_after_signing_out_in_another_tab_the_form_comes_back_filled_after_sign_in(base, context, factory):
    buyer = factory.user("buyer")
    page = _page(context)
    log_in(page, base, buyer)
    page.goto(f"{base}/buyers/events/new")
    page.fill("#name", "第十届人才科技峰会")
    page.fill("#location", "浙江省丽水市")
    page.fill("#attendees", "800")
    other = _page(context)  # a second tab signs out
    other.goto(f"{base}/buyers/")
    other.click("header button:has-text(\"退出\")")
    other.wait_for_url(f"{base}/")
    other.close()

    page.click("text=创建活动")
    page.wait_for_url(lambda url: "/login" in url)
    assert "会话已结束" in page.inner_text(".flashes")
    page.get_by_label("电子邮箱").fill(buyer.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(f"{base}/buyers/events/new")
    assert "重新填入" in page.inner_text(".flashes")
    assert page.input_value("#name") == "第十届人才科技峰会"
    assert page.input_value("#location") == "浙江省丽水市"
    assert page.input_value("#attendees") == "800"
    assert context.console_errors == []


def test_the_line_forms_factor_list_follows_the_category(base, context, factory):
    buyer = factory.user("buyer")
    page = _page(context)
    log_in(page, base, buyer)
    page.goto(f"{base}/buyers/events/new")
    page.fill("#name", "年会")
    page.fill("#starts_on", "2026-10-30")
    page.fill("#ends_on", "2026-10-30")
    page.fill("#location", "丽水")
    page.click("text=创建活动")
    page.wait_for_url(lambda url: "/buyers/events/" in url and url.rstrip("/").split("/")[-1].isdigit())
    visible_groups = "() => [...document.querySelectorAll('#line-factor_code optgroup')].filter(g => !g.hidden).map(g => g.label)"
    page.select_option("#line-category", "catering")
    assert page.evaluate(visible_groups) == ["餐饮"]
    assert page.input_value("#line-factor_code").startswith("catering.")
    page.select_option("#line-category", "venue")
    assert page.evaluate(visible_groups) == ["会场"]
    assert page.input_value("#line-factor_code").startswith("venue.")
    assert context.console_errors == []


def test_the_bureaus_menu_fits_one_line_at_1366_px_and_its_groups_open(base, context, factory):
    page = _page(context)
    log_in(page, base, factory.user("bureau"))
    page.goto(f"{base}/bureau/")
    tops = page.evaluate("() => [...document.querySelectorAll('#main-nav > ul > li')].map(li => "
                         "Math.round(li.getBoundingClientRect().top))")
    assert len(set(tops)) == 1, tops  # one line
    header = page.evaluate("() => document.querySelector('.site-header').getBoundingClientRect().height")
    print(f"bureau menu: {len(tops)} top-level entries, header {header:.0f} px high at 1366 px")
    page.click("#main-nav summary:has-text('登记簿')")
    page.click("#main-nav a:has-text('账本核验')")
    page.wait_for_url(f"{base}/bureau/ledger")
    page.click("text=立即检查")
    page.wait_for_selector("#ledger-result")
    assert "通过" in page.inner_text("#ledger-result")
    assert context.console_errors == []


def test_a_file_over_the_limit_is_answered_on_its_form_in_the_browser(base, context, factory, tmp_path):
    project = factory.project(verified=False)
    page = _page(context)
    log_in(page, base, project.seller)
    page.goto(f"{base}/sellers/projects/{project.id}")
    assert "最多 10 MB。" in page.inner_text("main")
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (12 * 1024 * 1024))
    page.select_option("#kind", "monitoring_report")
    page.set_input_files("#file", str(big))
    page.click("main button:has-text('上传')")
    page.wait_for_url(f"{base}/sellers/projects/{project.id}")
    assert "文件太大：最多 10 MB。未上传任何内容，请选择较小的文件。" in page.inner_text(".flashes")
    assert page.input_value("#kind") == "monitoring_report"  # the rest of the form is kept
    assert context.console_errors == []
