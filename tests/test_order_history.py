"""Order histories are stored as data (a code and its parameters) and read in the reader's language: every
note the services write is said in Chinese (or English), with its identifiers kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.orders import history as notes
from marketplace.orders.history import describe

#: One example of every note the services write (orders.service, order_payments, certificates.retirement),
#: in Chinese; test_every_code_written_has_an_example checks the sources for others.
NOTES = [
    (notes.placed("card"), "通过银行卡支付"),
    (notes.placed("bank_transfer"), "通过银行转账支付"),
    (notes.card_paid("pi_123", via="webhook", event_id="evt_456"), "银行卡付款 pi_123 已由 Stripe 确认（事件 evt_456）"),
    (notes.card_paid("pi_123", via="reread"), "银行卡付款 pi_123 经向 Stripe 复核后确认"),
    (notes.card_paid("pi_123", via="pay_page"), "银行卡付款 pi_123 已在支付页确认"),
    (notes.card_paid("pi_123", via="order_page"), "银行卡付款 pi_123 已在订单页查询时确认"),
    (notes.card_paid("pi_123", via="cancelling"), "银行卡付款 pi_123 在取消订单时到账"),
    (notes.card_refunded("re_789"), "银行卡付款已退款（re_789）"),
    (notes.bank_transfer("ICBC-20261125-0001"), "银行转账 ICBC-20261125-0001 已确认"),
    (notes.refund_made("ABC-1"), "已退款：ABC-1"),
    (notes.payment_after_cancellation(notes.card_paid("pi_1", via="webhook", event_id="evt_2")),
     "取消后收到付款，待退款：银行卡付款 pi_1 已由 Stripe 确认（事件 evt_2）"),
    (notes.late_payment_units_gone(notes.bank_transfer("X1")), "逾期付款，减排量已售出，待退款：银行转账 X1 已确认"),
    (notes.late_payment_units_gone("手写的付款说明"), "逾期付款，减排量已售出，待退款：手写的付款说明"),
    (notes.CANCELLED_BY_BUYER, "买方取消"),
    (notes.CANCELLED_AFTER_PAYMENT, "付款后取消"),
    (notes.REFUND_REQUESTED, "买方申请退款"),
    (notes.RESERVATION_EXPIRED, "预留已过期"),
    (notes.RETIREMENT_STARTED, "开始注销减排量"),
    (notes.certificate_issued("TH-2026-000123"), "已出具证书 TH-2026-000123"),
]


@pytest.mark.parametrize(("note", "chinese"), NOTES, ids=[f"{n.code}-{i}" for i, (n, _c) in enumerate(NOTES)])
def test_each_service_note_is_said_in_chinese(app, note, chinese):
    with app.test_request_context("/"):
        assert describe(note.code, note.params) == chinese


def test_the_same_notes_in_english_and_free_text_as_written(app):
    class Row:
        def __init__(self, code=None, params=None, note=""):
            self.note_code, self.note_params, self.note = code, params, note

    with app.test_request_context("/?lang=en"):
        assert describe("bank_transfer", {"reference": "X1"}) == "bank transfer X1 confirmed"
        assert describe("placed", {"payment_method": "card"}) == "to be paid by card"
        assert describe("card_paid", {"intent": "pi_1", "via": "webhook", "event": "evt_2"}) == (
            "card payment pi_1 confirmed by Stripe (event evt_2)")
        assert notes.describe_transition(Row("certificate_issued", {"number": "TH-2026-000001"})) == (
            "certificate TH-2026-000001 issued")
    with app.test_request_context("/"):
        assert notes.describe_transition(Row(note="手写的备注")) == "手写的备注"
        assert notes.describe_transition(Row()) == ""
        assert describe(None) == ""


def test_transitions_are_stored_as_codes_and_parameters(app, factory):
    from marketplace.accounts.models import User
    from marketplace.orders import service as orders
    from marketplace.orders.models import OrderTransition

    listing = factory.listing(tonnes="10")
    buyer, bureau = factory.user("buyer"), factory.user("bureau")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=10_000,
                                   payment_method="bank_transfer", beneficiary="甲", retirement_reason="测试",
                                   listing_id=listing.id)
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference="ICBC-1")
        db.session.commit()
        rows = db.session.execute(sa.select(OrderTransition.to_status, OrderTransition.note_code,
                                            OrderTransition.note_params, OrderTransition.note)
                                  .order_by(OrderTransition.id)).all()
    assert [tuple(r) for r in rows] == [
        ("pending_payment", "placed", {"payment_method": "bank_transfer"}, ""),
        ("paid", "bank_transfer", {"reference": "ICBC-1"}, ""),
    ]


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
    for raw in ("bank_transfer", "bank transfer", "retirement started", "retirement_started", "certificate_issued"):
        assert raw not in html


def test_every_code_written_has_an_example():
    """Each note code in the code that writes order transitions is translated and has an example above, so
    a new kind of note cannot reach a page untranslated unnoticed."""
    root = Path(__file__).resolve().parent.parent / "marketplace"
    written = set()
    for path in root.rglob("*.py"):
        written.update(re.findall(r'\bNote\("([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert written, "no note codes found: has the way notes are built changed?"
    assert written <= notes.NOTE_CODES, written - notes.NOTE_CODES
    examples = {note.code for note, _chinese in NOTES}
    assert notes.NOTE_CODES - {"text"} <= examples, notes.NOTE_CODES - {"text"} - examples
    # Services write notes through these builders only: no prose passed to a transition any more.
    for path in [*root.glob("orders/*.py"), *root.glob("certificates/*.py")]:
        assert not re.search(r'note=f?"', path.read_text(encoding="utf-8")), path
