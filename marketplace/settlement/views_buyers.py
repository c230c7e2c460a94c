"""A buyer's money documents for an order: the receipt, the payment notice and the fapiao request."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, Response, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.forms import form_error
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.orders.models import Order
from marketplace.settlement import receipts
from marketplace.settlement.forms import FapiaoRequestForm
from marketplace.settlement.models import FapiaoRequest

bp = Blueprint("settlement_buyers", __name__, url_prefix="/buyers/orders")


def _order(order_id: int) -> Order:
    get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    return receipts.load_order(db.session, order_id)


def _page(order: Order, form=None, status=200):
    request = db.session.scalar(sa.select(FapiaoRequest).where(FapiaoRequest.order_id == order.id)
                                .options(so.joinedload(FapiaoRequest.issuer)))
    if form is None:
        form = FapiaoRequestForm(obj=request) if request else FapiaoRequestForm(
            data={"title": order.buyer.name, "tax_id": order.buyer.credit_code, "kind": "ordinary"})
    return render_template("settlement/order_documents.html", order=order, fapiao=request, form=form,
                           paid=order.status in receipts.PAID_STATUSES), status


@bp.get("/<int:order_id>/documents")
@role_required("buyer")
def documents(order_id: int):
    return _page(_order(order_id))


@bp.post("/<int:order_id>/fapiao")
@role_required("buyer")
def request_fapiao(order_id: int):
    order = _order(order_id)
    form = FapiaoRequestForm()
    if form.validate_on_submit():
        try:
            receipts.request_fapiao(db.session, order, actor=current_user, title=form.title.data,
                                    tax_id=form.tax_id.data, kind=form.kind.data, address=form.address.data)
            db.session.commit()
            flash(_("Fapiao requested."), "success")
            return redirect(url_for("settlement_buyers.documents", order_id=order.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _page(order, form, status=422)


@bp.get("/<int:order_id>/receipt.pdf")
@role_required("buyer")
def receipt(order_id: int):
    order = _order(order_id)
    return Response(receipts.receipt_pdf(db.session, order), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="receipt-{order.id}.pdf"'})


@bp.get("/<int:order_id>/payment-notice.pdf")
@role_required("buyer")
def payment_notice(order_id: int):
    order = _order(order_id)
    return Response(receipts.payment_notice_pdf(order), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="payment-notice-{order.id}.pdf"'})


@bp.get("/<int:order_id>/fapiao.pdf")
@role_required("buyer")
def fapiao_pdf(order_id: int):
    order = _order(order_id)
    request = db.session.scalar(sa.select(FapiaoRequest).where(FapiaoRequest.order_id == order.id))
    path = receipts.fapiao_pdf_path(request) if request else None
    if path is None or not path.is_file():
        raise NotFound(_("Not found."))
    return send_file(path, mimetype="application/pdf", download_name=f"fapiao-{request.fapiao_number}.pdf")
