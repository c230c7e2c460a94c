"""Order histories are read in the reader's language: the services' audit notes are recognised and said in
Chinese (or English), with their identifiers kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.orders.history import describe_note

#: Every kind of note the services and pages write (services/orders.py, order_payments.py, retirement.py,
#: web/buyer_orders.py); test_every_note_written_is_known checks the sources for others.
NOTES = {
    "card": "通过银行卡支付",
    "bank_transfer": "通过银行转账支付",
    "card pi_123 (webhook evt_456)": "银行卡付款 pi_123 已由 Stripe 确认（事件 evt_456）",
    "card pi_123 (re-read)": "银行卡付款 pi_123 经向 Stripe 复核后确认",
    "card pi_123 (pay page)": "银行卡付款 pi_123 已在支付页确认",
    "card pi_123 (order page)": "银行卡付款 pi_123 已在订单页查询时确认",
    "card pi_123 (paid while cancelling)": "银行卡付款 pi_123 在取消订单时到账",
    "card refund re_789": "银行卡付款已退款（re_789）",
    "bank transfer ICBC-20261125-0001": "银行转账 ICBC-20261125-0001 已确认",
    "refund made: ABC-1": "已退款：ABC-1",
    "payment after cancellation: card pi_1 (webhook evt_2)":
        "取消后收到付款，待退款：银行卡付款 pi_1 已由 Stripe 确认（事件 evt_2）",
    "late payment, units gone: bank transfer X1": "逾期付款，减排量已售出，待退款：银行转账 X1 已确认",
    "cancelled by the buyer": "买方取消",
    "cancelled after payment": "付款后取消",
    "refund requested by the buyer": "买方申请退款",
    "reservation expired": "预留已过期",
    "retirement started": "开始注销减排量",
    "TH-2026-000123": "已出具证书 TH-2026-000123",
}


@pytest.mark.parametrize(("note", "chinese"), NOTES.items())
def test_each_service_note_is_said_in_chinese(app, note, chinese):
    with app.test_request_context("/"):
        assert describe_note(note) == chinese


def test_english_and_unknown_notes(app):
    with app.test_request_context("/?lang=en"):
        assert describe_note("bank transfer X1") == "bank transfer X1 confirmed"
        assert describe_note("card") == "to be paid by card"
    with app.test_request_context("/"):
        assert describe_note("手写的备注") == "手写的备注"
        assert describe_note(None) == ""


def test_the_summits_order_page_has_no_untranslated_notes(app, client, login):
    from marketplace.demo import service as demo
    from marketplace.orders.models import Order

    with app.app_context():
        ctx = demo.seed_demo(db.session)
        order_id = db.session.scalar(sa.select(Order.id).where(Order.buyer_organisation_id ==
                                                               ctx.users["summit"].organisation_id))
        email = ctx.users["summit"].email
    login(email, demo.DEMO_PASSWORD)
    html = client.get(f"/buyers/orders/{order_id}").get_data(as_text=True)
    assert "通过银行转账支付" in html and "已确认" in html and "已出具证书 TH-" in html
    for raw in ("bank_transfer", "bank transfer", "retirement started"):
        assert raw not in html


def test_every_note_written_is_known():
    """Each note literal in the code that writes order transitions has an example above, so a new kind of
    note cannot reach a page untranslated unnoticed."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "marketplace"
    written = set()
    for path in [*root.glob("services/*.py"), *root.glob("web/*.py")]:
        for literal in re.findall(r'note=f?"([^"]+)"', path.read_text(encoding="utf-8")):
            written.add(re.sub(r"\{[^}]*\}", "X", literal))
    # A literal matches an example when its {placeholders} can stand for the example's identifiers.
    unknown = {w for w in written if not w.startswith(("X", "材料"))
               and not any(re.fullmatch(re.escape(w).replace("X", ".+"), note) for note in NOTES)}
    assert unknown == set(), unknown
