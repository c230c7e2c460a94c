"""Bureau staff: the operator's and regulator's pages. Organisations and users live here."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.extensions import db
from marketplace.models import (
    BufferLoss,
    CreditBatch,
    DeadLetter,
    Order,
    Organisation,
    Project,
    User,
)
from marketplace.models.order import ORDER_STATUSES, OrderTransition
from marketplace.models.registry import PROJECT_STATUSES
from marketplace.services import accounts, ledger, registry
from marketplace.services import orders as orders_service
from marketplace.services.access import get_scoped
from marketplace.services.errors import DomainError
from marketplace.services.quantities import display_tonnes, parse_tonnes
from marketplace.web import role_required, send_project_document
from marketplace.web.forms import OrganisationForm, UserForm, form_error
from marketplace.web.once import once
from marketplace.web.registry_forms import BatchForm, LossForm, ReferenceForm, ReviewForm

bp = Blueprint("bureau", __name__, url_prefix="/bureau")


@bp.get("/")
@role_required("bureau")
def home():
    counts = dict(db.session.execute(
        sa.select(Organisation.kind, sa.func.count()).group_by(Organisation.kind)).all())
    dead_letters = db.session.scalars(sa.select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                                      .order_by(DeadLetter.id.desc()).limit(20)).all()
    pending_transfers = db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(
        Order.status == "pending_payment", Order.payment_method == "bank_transfer"))
    return render_template("bureau/home.html", counts=counts, dead_letters=dead_letters,
                           pending_transfers=pending_transfers)


@bp.route("/organisations", methods=["GET", "POST"])
@role_required("bureau")
@once
def organisations():
    form = OrganisationForm()
    status = 200
    if form.validate_on_submit():
        try:
            org = accounts.create_organisation(
                db.session, kind=form.kind.data, name=form.name.data, name_en=form.name_en.data,
                credit_code=form.credit_code.data, contact_email=form.contact_email.data)
            db.session.commit()
            flash(_("Organisation %(name)s created.", name=org.name), "success")
            return redirect(url_for("bureau.organisation", organisation_id=org.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    if form.is_submitted():
        status = 422
    rows = db.session.execute(
        sa.select(Organisation, sa.func.count(User.id))
        .outerjoin(User, User.organisation_id == Organisation.id)
        .group_by(Organisation.id).order_by(Organisation.kind, Organisation.name)).all()
    return render_template("bureau/organisations.html", rows=rows, form=form), status


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
@role_required("bureau")
def organisation(organisation_id: int):
    org = get_scoped(db.session, Organisation, organisation_id, current_user)
    form = UserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.create_user(db.session, organisation_id=org.id, email=form.email.data,
                                        password=form.password.data, display_name=form.display_name.data)
            db.session.commit()
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("bureau.organisation", organisation_id=org.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    if form.is_submitted():
        status = 422
    users = db.session.scalars(sa.select(User).where(User.organisation_id == org.id).order_by(User.email)).all()
    return render_template("bureau/organisation.html", org=org, users=users, form=form), status


# --- registry: review, issuance, buffer pool, ledger ---------------------------------------------

@bp.get("/projects")
@role_required("bureau")
def projects():
    status = request.args.get("status", "submitted")
    if status not in PROJECT_STATUSES:
        status = "submitted"
    rows = db.session.scalars(sa.select(Project).where(Project.status == status).order_by(Project.id)).all()
    counts = dict(db.session.execute(sa.select(Project.status, sa.func.count()).group_by(Project.status)).all())
    return render_template("bureau/projects.html", rows=rows, status=status, counts=counts)


def _project_page(project: Project, *, review_form=None, batch_form=None, status=200):
    return render_template("bureau/project.html", project=project, **registry.project_details(db.session, project),
                           review_form=review_form or ReviewForm(),
                           batch_form=batch_form or BatchForm(),
                           buffer_percent=current_app.config["BUFFER_POOL_PERCENT"]), status


@bp.get("/projects/<int:project_id>")
@role_required("bureau")
def project(project_id: int):
    return _project_page(get_scoped(db.session, Project, project_id, current_user))


@bp.post("/projects/<int:project_id>/review")
@role_required("bureau")
def review_project(project_id: int):
    row = get_scoped(db.session, Project, project_id, current_user)
    form = ReviewForm()
    if form.validate_on_submit():
        try:
            registry.transition_project(db.session, row, form.decision.data, actor=current_user, note=form.note.data)
            db.session.commit()
            flash(_("Decision recorded."), "success")
            return redirect(url_for("bureau.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(row, review_form=form, status=422)


@bp.post("/projects/<int:project_id>/batches")
@role_required("bureau")
@once
def issue_batch(project_id: int):
    row = get_scoped(db.session, Project, project_id, current_user)
    form = BatchForm()
    if form.validate_on_submit():
        try:
            batch = registry.issue_batch(
                db.session, row, actor=current_user, quantity_units=parse_tonnes(form.quantity.data),
                vintage_start=form.vintage_start.data, vintage_end=form.vintage_end.data,
                verification_body=form.verification_body.data, report_reference=form.report_reference.data)
            db.session.commit()
            flash(_("Batch issued: %(block)s", block=batch.serial_block()), "success")
            return redirect(url_for("bureau.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(row, batch_form=form, status=422)


@bp.get("/documents/<int:document_id>")
@role_required("bureau")
def document(document_id: int):
    return send_project_document(document_id)


@bp.route("/buffer", methods=["GET", "POST"])
@role_required("bureau")
@once
def buffer_pool():
    batches = db.session.scalars(sa.select(CreditBatch).order_by(CreditBatch.id)).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    form = LossForm()
    form.batch_id.choices = [(b.id, f"{b.project.name} · {b.vintage_end.year} · "
                                    f"{display_tonnes(balances[b.id]['buffer'])} t") for b in batches]
    if form.validate_on_submit():
        try:
            batch = get_scoped(db.session, CreditBatch, form.batch_id.data, current_user)
            registry.report_loss(db.session, batch, actor=current_user, kind=form.kind.data,
                                 units=parse_tonnes(form.quantity.data), reason=form.reason.data)
            db.session.commit()
            flash(_("Buffer units cancelled against the reported loss."), "success")
            return redirect(url_for("bureau.buffer_pool"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    losses = db.session.scalars(sa.select(BufferLoss).order_by(BufferLoss.id.desc())).all()
    return render_template("bureau/buffer.html", batches=batches, balances=balances, form=form,
                           losses=losses), 422 if form.is_submitted() else 200


@bp.get("/ledger")
@role_required("bureau")
def ledger_check():
    report = ledger.check_invariants(db.session)
    return render_template("bureau/ledger.html", report=report)


# --- orders: all of them, pending bank transfers, refunds ----------------------------------------

@bp.get("/orders")
@role_required("bureau")
def orders_list():
    status = request.args.get("status", "")
    method = request.args.get("method", "")
    stmt = sa.select(Order).order_by(Order.id.desc()).limit(500)
    if status in ORDER_STATUSES:
        stmt = stmt.where(Order.status == status)
    if method in ("card", "bank_transfer"):
        stmt = stmt.where(Order.payment_method == method)
    if request.args.get("refund") == "pending":
        stmt = stmt.where(Order.refund_status == "pending")
    return render_template("bureau/orders.html", rows=db.session.scalars(stmt).all(), status=status, method=method,
                           statuses=ORDER_STATUSES)


def _order_page(order: Order, *, transfer_form=None, refund_form=None, status=200):
    history = db.session.scalars(sa.select(OrderTransition).where(OrderTransition.order_id == order.id)
                                 .order_by(OrderTransition.id)).all()
    return render_template("bureau/order.html", order=order, history=history,
                           transfer_form=transfer_form or ReferenceForm(prefix="transfer"),
                           refund_form=refund_form or ReferenceForm(prefix="refund")), status


@bp.get("/orders/<int:order_id>")
@role_required("bureau")
def order_detail(order_id: int):
    return _order_page(get_scoped(db.session, Order, order_id, current_user))


@bp.post("/orders/<int:order_id>/confirm-transfer")
@role_required("bureau")
def confirm_transfer(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user)
    form = ReferenceForm(prefix="transfer")
    if form.validate_on_submit():
        try:
            orders_service.confirm_bank_transfer(db.session, order, actor=current_user, reference=form.reference.data)
            db.session.commit()
            flash(_("Transfer confirmed; the order is paid and its credits are being retired."), "success")
            return redirect(url_for("bureau.order_detail", order_id=order.id))
        except DomainError as exc:
            db.session.commit()  # a refund flagged for a late transfer is kept
            form_error(form, exc)
    return _order_page(order, transfer_form=form, status=422)


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
            return redirect(url_for("bureau.order_detail", order_id=order.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _order_page(order, refund_form=form, status=422)


# The emission factor library (routes on this blueprint, kept in their own module).
from marketplace.web import bureau_factors  # noqa: E402,F401
