"""Receipts and invoices: the receipt PDF of a paid order, the payment notice of a bank transfer, and the
fapiao request (buyer) and record (bureau) flow, visible to both."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from marketplace.accounts.models import User
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from tests.conftest import CsrfClient
from tests.factories import MINIMAL_PDF, PASSWORD


def _client(app, user):
    form = CsrfClient(app.test_client())
    assert form.post_form("/login", {"email": user.email, "password": PASSWORD}).status_code == 302
    return form


@pytest.fixture
def order_world(app, factory):
    bureau = factory.user("bureau")
    listing = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("10"),
                                   payment_method="bank_transfer", beneficiary="测试", retirement_reason="测试",
                                   listing_id=listing.id)
        db.session.commit()
        order_id = order.id
    return {"bureau": bureau, "buyer": buyer, "order_id": order_id}


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_payment_notice_then_receipt_then_fapiao(app, order_world):
    buyer, bureau, order_id = order_world["buyer"], order_world["bureau"], order_world["order_id"]
    shopper = _client(app, buyer)
    assert shopper.client.get(f"/buyers/orders/{order_id}/receipt.pdf").status_code == 409  # not paid yet
    notice = shopper.client.get(f"/buyers/orders/{order_id}/payment-notice.pdf")
    assert notice.status_code == 200 and notice.data.startswith(b"%PDF")
    assert f"TH{order_id:08d}" in _text(notice.data)
    with app.app_context():
        order = db.session.get(orders.Order, order_id)
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference="ICBC-9")
        db.session.commit()
    receipt = shopper.client.get(f"/buyers/orders/{order_id}/receipt.pdf")
    assert receipt.status_code == 200 and "300.00" in _text(receipt.data)

    page = f"/buyers/orders/{order_id}/documents"
    bad = shopper.post_form(page, {"title": "测试机构", "tax_id": "91330000123", "kind": "special",
                                   "address": "丽水市"}, action=f"/buyers/orders/{order_id}/fapiao")
    assert bad.status_code == 422
    good = shopper.post_form(page, {"title": "测试机构", "tax_id": buyer.organisation.credit_code, "kind": "special",
                                    "address": "丽水市莲都区 0578-1234567"}, action=f"/buyers/orders/{order_id}/fapiao")
    assert good.status_code == 302
    assert 'data-fapiao-status="requested"' in shopper.client.get(page).get_data(as_text=True)

    desk = _client(app, bureau)
    listing_page = desk.client.get("/bureau/money/fapiao").get_data(as_text=True)
    assert "测试机构" in listing_page
    with app.app_context():
        from marketplace.settlement.models import FapiaoRequest

        request_id = db.session.query(FapiaoRequest).one().id
    recorded = desk.post_form("/bureau/money/fapiao", {
        f"f{request_id}-number": "33002600001234", f"f{request_id}-issued_on": "2026-12-04",
        f"f{request_id}-pdf": (io.BytesIO(MINIMAL_PDF), "fapiao.pdf")},
        action=f"/bureau/money/fapiao/{request_id}", content_type="multipart/form-data")
    assert recorded.status_code == 302
    buyer_view = shopper.client.get(page).get_data(as_text=True)
    assert 'data-fapiao-status="issued"' in buyer_view and "33002600001234" in buyer_view
    assert shopper.client.get(f"/buyers/orders/{order_id}/fapiao.pdf").data == MINIMAL_PDF


def test_another_buyer_sees_nothing_of_the_order(app, factory, order_world):
    other = _client(app, factory.user("buyer"))
    order_id = order_world["order_id"]
    assert other.client.get(f"/buyers/orders/{order_id}/documents").status_code == 404
    assert other.client.get(f"/buyers/orders/{order_id}/payment-notice.pdf").status_code == 404
