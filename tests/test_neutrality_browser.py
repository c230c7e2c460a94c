"""The organiser's whole neutralisation in a real (headless) browser: plan → publish → actual footprint →
the top-up order for exactly what is missing → card payment → the worker retires and certifies → the
declaration → the public disclosure page shows 100.00 % and the declaration."""

from __future__ import annotations

import re

import pytest

from tests.test_neutrality import _pdf, make_event
from tests.test_pay_page_browser import browser, log_in, order_state, page, pay, serve  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.stripe, pytest.mark.browser, pytest.mark.redis]


def test_the_organiser_plans_orders_pays_declares_and_the_public_page_shows_it(
        serve, page, factory, redis_url, celery_worker):  # noqa: F811
    bureau = factory.user("bureau")
    factory.listing(factory.batch(factory.project(bureau=bureau), tonnes="2000", bureau=bureau,
                                  scheme="zhejiang_forestry", event_eligible=True), tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    app, base = serve(CELERY_BROKER_URL=redis_url)
    event_id = make_event(app, buyer, "175.402", reductions=["2"])
    log_in(page, base, buyer)

    page.goto(f"{base}/buyers/events/{event_id}/neutrality")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'main form input:not([type=hidden]), main form select, main form textarea')]
        .filter(el => !el.labels || el.labels.length === 0 || !el.labels[0].innerText.trim())
        .map(el => el.id || el.name)""")
    assert unlabelled == []
    page.uncheck("#source-venue_heat")
    page.get_by_role("button", name="保存实施计划").click()
    assert "请说明该排放源未纳入边界的原因" in page.inner_text("main")  # refused, in Chinese
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 422 "
                                   "(UNPROCESSABLE ENTITY)"]  # the refusal's status, nothing else
    page.console_errors.clear()
    page.fill("#reason-venue_heat", "会场无集中供热")
    page.get_by_role("button", name="保存实施计划").click()
    page.wait_for_selector("text=实施计划已保存")
    page.get_by_role("button", name="公开实施计划主要内容").click()
    page.get_by_role("button", name="记录实际排放量").click()
    page.wait_for_selector("text=实际排放量已记录")
    assert 'data-source="venue_stationary_fuel"' in page.inner_html("#plan-and-actual")

    # the reduction measure: what it achieved, and its evidence (a refusal first, typed value kept)
    page.fill("input[id^='achieved-']", "-1")
    page.get_by_role("button", name="记录实际减排量").click()
    assert "实际减排量不能为负数" in page.inner_text("#reductions")
    assert page.input_value("input[id^='achieved-']") == "-1"
    page.console_errors.clear()
    page.fill("input[id^='achieved-']", "2.5")
    page.get_by_role("button", name="记录实际减排量").click()
    page.wait_for_selector("text=实际减排量已记录")
    page.fill("input[id^='title-']", "光伏发电量记录")
    page.set_input_files("input[id^='file-']", files=[{"name": "pv.pdf", "mimeType": "application/pdf",
                                                        "buffer": _pdf()}])
    page.get_by_role("button", name="上传证明材料").click()
    page.wait_for_selector("text=证明材料已上传")
    assert "光伏发电量记录" in page.inner_text("#reductions") and "2.5000 t" in page.inner_text("#reductions")

    page.click("#top-up")
    page.wait_for_url(re.compile(r"/buyers/orders/new\?"))
    assert page.input_value("#quantity") == "175.4020" and page.is_checked("#eligible_only")
    assert page.input_value("#purpose") == "event"
    page.get_by_label("银行卡（在线支付）").check()
    page.get_by_role("button", name="查看明细和价格").click()
    page.get_by_role("button", name="确认并预留").click()
    page.wait_for_url(re.compile(r"/buyers/orders/\d+/pay$"))
    order_id = int(re.search(r"/orders/(\d+)/pay$", page.url).group(1))
    pay(page, "4242424242424242")
    page.wait_for_url(f"{base}/buyers/orders/{order_id}")
    page.wait_for_selector("#certificate-link a[href^='/verify/']", timeout=30_000)
    assert order_state(app, order_id)["status"] == "completed", celery_worker.log()[-3000:]

    page.goto(f"{base}/buyers/events/{event_id}/neutrality")
    assert page.inner_text("#coverage") == "100.00 %"
    page.click("#declare")
    page.wait_for_selector("text=碳中和声明已签署")
    number = page.inner_text("main a[href^='/neutrality/declarations/THN-']")
    assert re.fullmatch(r"THN-\d{4}-\d{6}", number)

    page.goto(f"{base}/neutrality/events/{event_id}")
    assert page.inner_text("#coverage") == "100.00 %"
    assert number in page.inner_text("#declaration") and "签名有效" in page.inner_text("#declaration")
    assert "光伏发电量记录" in page.inner_text("main") and "2.5000" in page.inner_text("main")
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert page.console_errors == [], page.console_errors
