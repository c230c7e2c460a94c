"""A card payment followed, in a real (headless) browser, from the pay page to the village's public benefit
page: the buyer pays, the bureau pays the cooperative out and records the bank's reference, the
cooperative shares the payout among its households, and anyone sees the village's figures — equal to the
journal to the fen."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.settlement import journal, money_check, payouts, shares
from marketplace.settlement.models import Distribution
from tests.test_pay_page_browser import (  # noqa: F401  (fixtures)
    assert_paid_once,
    browser,
    log_in,
    order_by_card,
    page,
    pay,
    serve,
)

pytestmark = [pytest.mark.stripe, pytest.mark.browser]


def test_a_card_payment_reaches_the_village_public_benefit_page(serve, page, factory):  # noqa: F811
    app, base = serve()
    bureau = factory.user("bureau")
    listing = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    seller = listing.batch.project.seller
    buyer = factory.user("buyer")
    with app.app_context():
        journal.set_fee_rule(db.session, actor=db.session.get(User, bureau.id), percent="2", floor_cny="0")
        coop = db.session.get(User, seller.id)
        payouts.set_payee_account(db.session, actor=coop, account_name="测试村股份经济合作社",
                                  bank_name="农商银行", account_number="6200000000001")
        shares.set_rule(db.session, actor=coop, collective_percent="20", households_percent="80")
        shares.replace_households(db.session, actor=coop, text="王建国 3\n李秀英 2\n张伟 1")
        db.session.commit()

    # The buyer pays 12.5 t × ¥30.00 = ¥375.00 by card; 2 % fee ¥7.50; the cooperative's part ¥367.50.
    log_in(page, base, buyer)
    order_id = order_by_card(page, base, listing, "12.5")
    pay(page, "4242424242424242")
    page.wait_for_url(re.compile(rf"/buyers/orders/{order_id}$"))
    assert_paid_once(app, order_id)
    page.context.clear_cookies()

    log_in(page, base, bureau)
    page.goto(f"{base}/bureau/money/")
    assert page.input_value(f"#amount_{seller.organisation_id}") == "367.50"
    page.get_by_role("button", name="生成结算批次").click()
    page.wait_for_url(re.compile(r"/bureau/money/batches/\d+$"))
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("银行批量代付表")).click()
    assert download.value.suggested_filename.endswith(".xlsx")
    page.get_by_label("银行流水号").first.fill("LQNS-20261204-0001")
    page.get_by_role("button", name="银行已支付").click()
    page.wait_for_selector('[data-payout-status="paid"]')
    page.context.clear_cookies()

    log_in(page, base, seller)
    page.goto(f"{base}/sellers/money/")
    assert "LQNS-20261204-0001" in page.inner_text("main")
    page.get_by_role("button", name="按规则分配").click()
    page.wait_for_url(re.compile(r"/sellers/money/distributions/\d+$"))
    assert "碳汇收益分配公示" in page.inner_text("h1")
    page.context.clear_cookies()

    with app.app_context():
        distribution = db.session.scalar(sa.select(Distribution))
        to_households = sum(line.amount_fen for line in distribution.lines)
        assert money_check.check_invariants(db.session) == []
    page.goto(f"{base}/villages")
    row = page.locator("tr[data-village]").filter(has_text=re.compile(r"\d")).first
    assert row.locator('[data-field="received"]').inner_text() == "367.50"
    assert row.locator('[data-field="paid_out"]').inner_text() == "367.50"
    assert row.locator('[data-field="distributed"]').inner_text() == f"{to_households // 100}.{to_households % 100:02d}"
    assert page.console_errors == []
