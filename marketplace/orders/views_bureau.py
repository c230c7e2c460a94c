"""Bureau staff: every order, bank transfers to confirm, refunds to record."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import form_error
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.orders import order_payments
from marketplace.orders import service as orders_service
from marketplace.orders.forms import ReferenceForm
from marketplace.orders.models import ORDER_STATUSES, Order

bp = Blueprint("orders_bureau", __name__, url_prefix="/bureau")


@bp.get("/orders")
@role_required("bureau")
def orders_list():
    status = request.args.get("status", "")
    method = request.args.get("method", "")
    stmt = sa.select(Order).order_by(Order.id.desc()).limit(500).options(so.joinedload(Order.buyer))
    if status in ORDER_STATUSES:
        stmt = stmt.where(Order.status == status)
    if method in ("card", "bank_transfer"):
        stmt = stmt.where(Order.payment_method == method)
    if request.args.get("refund") == "pending":
        stmt = stmt.where(Order.refund_status == "pending")
    return render_template("orders/bureau_orders.html", rows=db.session.scalars(stmt).all(), status=status, method=method,
                           statuses=ORDER_STATUSES)


def _order_page(order_id: int, *, transfer_form=None, refund_form=None, status=200):
    order = get_scoped(db.session, Order, order_id, current_user, options=[so.joinedload(Order.buyer)])
    history = order_payments.order_history(db.session, order.id)
    return render_template("orders/bureau_order.html", order=order, history=history,
                           transfer_form=transfer_form or ReferenceForm(prefix="transfer"),
                           refund_form=refund_form or ReferenceForm(prefix="refund")), status


@bp.get("/orders/<int:order_id>")
@role_required("bureau")
def order_detail(order_id: int):
    return _order_page(order_id)


@bp.post("/orders/<int:order_id>/confirm-transfer")
@role_required("bureau")
def confirm_transfer(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user)
    form = ReferenceForm(prefix="transfer")
    if form.validate_on_submit():
        try:
            outcome = orders_service.confirm_bank_transfer(db.session, order, actor=current_user,
                                                           reference=form.reference.data)
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            db.session.commit()  # paid, or the refund of a transfer that came too late: kept either way
            if outcome is not orders_service.TransferOutcome.REFUND_NEEDED:
                flash(_("Transfer confirmed; the order is paid and its credits are being retired."), "success")
                return redirect(url_for("orders_bureau.order_detail", order_id=order.id))
            form.form_errors.append(str(orders_service.LATE_TRANSFER_MESSAGE))
    return _order_page(order_id, transfer_form=form, status=422)


@bp.post("/orders/<int:order_id>/refund")
@role_required("bureau")
def record_refund(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user)
    form = ReferenceForm(prefix="refund")
    if form.validate_on_submit():
        try:
            orders_service.record_manual_refund(db.session, order, actor=current_user, reference=form.reference.data)
            db.session.commit()
            flash(_("Refund recorded."), "success")
            return redirect(url_for("orders_bureau.order_detail", order_id=order.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _order_page(order_id, refund_form=form, status=422)
