"""Receipts and invoices: the receipt PDF of a paid order, the payment notice of a bank transfer, and the
fapiao request (buyer) and record flow, visible to both: the selling cooperative records the fapiao of an
order whose credits are all its own, the platform (bureau or operator) that of an order with credits of
several cooperatives."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from marketplace.accounts.models import AccountEvent, User
from marketplace.core.db import utcnow
from marketplace.core.i18n import platform_zone
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
    return {"bureau": bureau, "buyer": buyer, "order_id": order_id, "seller": listing.batch.project.seller}


def _today() -> str:
    """Today in Beijing (a fapiao's date is a Beijing date)."""
    with_zone = utcnow().astimezone(platform_zone())
    return with_zone.date().isoformat()


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
        f"f{request_id}-number": "33002600001234", f"f{request_id}-issued_on": _today(),
        f"f{request_id}-pdf": (io.BytesIO(MINIMAL_PDF), "fapiao.pdf")},
        action=f"/bureau/money/fapiao/{request_id}", content_type="multipart/form-data")
    assert recorded.status_code == 302, re.findall(r'class="error"[^<]*<|role="alert">.{0,300}', recorded.get_data(as_text=True))
    buyer_view = shopper.client.get(page).get_data(as_text=True)
    assert 'data-fapiao-status="issued"' in buyer_view and "33002600001234" in buyer_view
    assert shopper.client.get(f"/buyers/orders/{order_id}/fapiao.pdf").data == MINIMAL_PDF


def test_another_buyer_sees_nothing_of_the_order(app, factory, order_world):
    other = _client(app, factory.user("buyer"))
    order_id = order_world["order_id"]
    assert other.client.get(f"/buyers/orders/{order_id}/documents").status_code == 404
    assert other.client.get(f"/buyers/orders/{order_id}/payment-notice.pdf").status_code == 404


def _paid(app, world, order_id=None):
    with app.app_context():
        order = db.session.get(orders.Order, order_id or world["order_id"])
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, world["bureau"].id),
                                     reference=f"ICBC-{order.id}")
        db.session.commit()


def _request(app, buyer, order_id) -> int:
    shopper = _client(app, buyer)
    page = f"/buyers/orders/{order_id}/documents"
    assert shopper.post_form(page, {"title": "发票抬头甲", "tax_id": buyer.organisation.credit_code, "kind": "ordinary",
                                    "address": "丽水市莲都区"}, action=f"/buyers/orders/{order_id}/fapiao").status_code == 302
    from marketplace.settlement.models import FapiaoRequest

    with app.app_context():
        return db.session.scalar(sa.select(FapiaoRequest.id).where(FapiaoRequest.order_id == order_id))


def _record(form, request_id, *, number="33002600001234", day=None, pdf=MINIMAL_PDF, where="/sellers/money/fapiao"):
    return form.post_form(where, {
        f"f{request_id}-number": number, f"f{request_id}-issued_on": day or _today(),
        f"f{request_id}-pdf": (io.BytesIO(pdf), "fapiao.pdf")},
        action=f"{where}/{request_id}", content_type="multipart/form-data")


def _state(app, request_id):
    from marketplace.settlement.models import FapiaoRequest

    with app.app_context():
        row = db.session.get(FapiaoRequest, request_id)
        return row.status, row.fapiao_number, row.pdf_name


def test_the_selling_cooperative_records_the_fapiao_of_its_sale_and_the_buyer_sees_it(app, order_world):
    _paid(app, order_world)
    request_id = _request(app, order_world["buyer"], order_world["order_id"])
    coop = _client(app, order_world["seller"])
    listing = coop.client.get("/sellers/money/fapiao").get_data(as_text=True)
    assert "发票抬头甲" in listing and 'data-fapiao-status="requested"' in listing
    untouched = ("requested", None, None)
    tomorrow = (utcnow().astimezone(platform_zone()).date() + timedelta(days=1)).isoformat()
    for bad, field in [({"number": "FP-ABC"}, "number"), ({"number": "1234567"}, "number"),
                       ({"day": tomorrow}, "issued_on"), ({"day": "2020-01-01"}, "issued_on"),
                       ({"pdf": b"not a pdf"}, "pdf")]:
        answer = _record(coop, request_id, **bad)
        assert answer.status_code == 422, bad
        assert f'id="f{request_id}-{field}-error"' in answer.get_data(as_text=True), bad
        assert _state(app, request_id) == untouched, bad
    recorded = _record(coop, request_id, number="3300 2600 0012 34")
    assert recorded.status_code == 302
    assert _state(app, request_id)[:2] == ("issued", "33002600001234")
    # the same number again changes nothing; another number is refused
    assert _record(coop, request_id, number="33002600001234").status_code == 302
    assert _record(coop, request_id, number="33002600009999").status_code == 422
    assert _state(app, request_id)[:2] == ("issued", "33002600001234")
    shopper = _client(app, order_world["buyer"])
    page = shopper.client.get(f"/buyers/orders/{order_world['order_id']}/documents").get_data(as_text=True)
    assert 'data-fapiao-status="issued"' in page and "33002600001234" in page
    assert order_world["seller"].organisation.name in page  # issued by the cooperative
    assert shopper.client.get(f"/buyers/orders/{order_world['order_id']}/fapiao.pdf").data == MINIMAL_PDF
    with app.app_context():
        assert db.session.scalar(sa.select(AccountEvent.kind).where(AccountEvent.user_id == order_world["seller"].id,
                                                                    AccountEvent.kind == "fapiao_recorded"))


def test_a_fapiao_number_used_before_is_refused_and_nothing_changes(app, factory, order_world):
    _paid(app, order_world)
    first = _request(app, order_world["buyer"], order_world["order_id"])
    coop = _client(app, order_world["seller"])
    assert _record(coop, first, number="04400123").status_code == 302
    with app.app_context():
        from marketplace.registry.models import Listing

        listing = db.session.scalar(sa.select(Listing).where(
            Listing.seller_organisation_id == order_world["seller"].organisation_id))
        order = orders.place_order(db.session, actor=db.session.get(User, order_world["buyer"].id),
                                   units=parse_tonnes("1"), payment_method="bank_transfer", beneficiary="测试",
                                   retirement_reason="测试", listing_id=listing.id)
        db.session.commit()
        second_order = order.id
    _paid(app, order_world, second_order)
    second = _request(app, order_world["buyer"], second_order)
    again = _record(coop, second, number="0440 0123")
    assert again.status_code == 422 and f'id="f{second}-number-error"' in again.get_data(as_text=True)
    assert _state(app, second) == ("requested", None, None)


def test_a_fapiao_over_the_upload_limit_is_refused(make_app, factory, order_world, app):
    _paid(app, order_world)
    request_id = _request(app, order_world["buyer"], order_world["order_id"])
    small = make_app(UPLOAD_MAX_MB=1)
    coop = _client(small, order_world["seller"])
    big = MINIMAL_PDF[:-6] + b" " * (1024 * 1024) + b"%%EOF\n"
    answer = _record(coop, request_id, pdf=big)
    assert answer.status_code in (413, 422)
    assert _state(app, request_id) == ("requested", None, None)


def test_another_cooperative_cannot_see_or_record_the_fapiao(app, factory, order_world):
    _paid(app, order_world)
    request_id = _request(app, order_world["buyer"], order_world["order_id"])
    stranger = _client(app, factory.user("seller"))
    assert "发票抬头甲" not in stranger.client.get("/sellers/money/fapiao").get_data(as_text=True)
    assert _record(stranger, request_id).status_code == 404
    assert _state(app, request_id) == ("requested", None, None)


def test_an_order_of_two_cooperatives_is_issued_by_the_platform(app, factory, order_world):
    bureau = order_world["bureau"]
    other = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    with app.app_context():
        # 600 t: more than the first listing holds, so the order takes credits of both cooperatives
        order = orders.place_order(db.session, actor=db.session.get(User, order_world["buyer"].id),
                                   units=parse_tonnes("600"), payment_method="bank_transfer", beneficiary="测试",
                                   retirement_reason="测试")
        db.session.commit()
        order_id = order.id
        assert len({line.listing.seller_organisation_id for line in order.lines}) == 2
    _paid(app, order_world, order_id)
    request_id = _request(app, order_world["buyer"], order_id)
    for seller in (order_world["seller"], other.batch.project.seller):
        coop = _client(app, seller)
        listing = coop.client.get("/sellers/money/fapiao").get_data(as_text=True)
        assert 'data-issuer="platform"' in listing  # the status is visible, the form is not
        refused = _record(coop, request_id)
        assert refused.status_code == 403 and "发票由平台开具" in refused.get_data(as_text=True)
        assert _state(app, request_id) == ("requested", None, None)
    operator = factory.user("operator")
    desk = _client(app, operator)
    assert _record(desk, request_id, where="/bureau/money/fapiao").status_code == 302
    assert _state(app, request_id)[:2] == ("issued", "33002600001234")
