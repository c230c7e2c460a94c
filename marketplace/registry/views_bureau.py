"""Bureau staff: project review, issuance, the buffer pool and the ledger check."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.db import utcnow
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.once import once
from marketplace.core.quantities import display_tonnes, parse_tonnes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry import parcels as parcel_service
from marketplace.registry import service as registry
from marketplace.registry.forms import BatchForm, LossForm, ReviewForm
from marketplace.registry.models import PROJECT_SHOWN, PROJECT_STATUSES, BufferLoss, CreditBatch, Project
from marketplace.registry.views import send_project_document

bp = Blueprint("registry_bureau", __name__, url_prefix="/bureau")


@bp.get("/projects")
@role_required("bureau")
def projects():
    status = request.args.get("status", "submitted")
    if status not in PROJECT_STATUSES:
        status = "submitted"
    rows = db.session.scalars(sa.select(Project).where(Project.status == status).order_by(Project.id)
                              .options(*PROJECT_SHOWN)).all()
    counts = dict(db.session.execute(sa.select(Project.status, sa.func.count()).group_by(Project.status)).all())
    return render_template("registry/bureau_projects.html", rows=rows, status=status, counts=counts)


def _project_page(project_id: int, *, review_form=None, batch_form=None, status=200):
    project = get_scoped(db.session, Project, project_id, current_user, options=PROJECT_SHOWN)
    return render_template("registry/bureau_project.html", project=project, **registry.project_details(db.session, project),
                           review_form=review_form or ReviewForm(),
                           batch_form=batch_form or BatchForm(),
                           parcel_collection=parcel_service.project_feature_collection(db.session, project),
                           buffer_percent=current_app.config["BUFFER_POOL_PERCENT"]), status


@bp.get("/projects/<int:project_id>")
@role_required("bureau")
def project(project_id: int):
    return _project_page(project_id)


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
            return redirect(url_for("registry_bureau.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(project_id, review_form=form, status=422)


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
                verification_body=form.verification_body.data, report_reference=form.report_reference.data,
                scheme=form.scheme.data or "other", methodology_code=form.methodology_code.data or "",
                methodology_version=form.methodology_version.data or "",
                event_eligible=bool(form.event_eligible.data))
            db.session.commit()
            flash(_("Batch issued: %(block)s", block=batch.serial_block()), "success")
            return redirect(url_for("registry_bureau.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(project_id, batch_form=form, status=422)


@bp.get("/documents/<int:document_id>")
@role_required("bureau")
def document(document_id: int):
    return send_project_document(document_id)


@bp.route("/buffer", methods=["GET", "POST"])
@role_required("bureau")
@once
def buffer_pool():
    batches = db.session.scalars(sa.select(CreditBatch).order_by(CreditBatch.id)
                                 .options(so.joinedload(CreditBatch.project))).all()
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
            return redirect(url_for("registry_bureau.buffer_pool"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    losses = db.session.scalars(sa.select(BufferLoss).order_by(BufferLoss.id.desc())
                                .options(so.joinedload(BufferLoss.batch).joinedload(CreditBatch.project))).all()
    return render_template("registry/bureau_buffer.html", batches=batches, balances=balances, form=form,
                           losses=losses), 422 if form.is_submitted() else 200


@bp.route("/ledger", methods=["GET", "POST"])
@role_required("bureau")
def ledger_check():
    """The page offers the check; its button runs it (it reads every batch, so not on every visit) and
    shows the result with when it ran. Reads only: safe to run again."""
    form = EmptyForm()
    report = ledger.check_invariants(db.session) if form.validate_on_submit() else None
    return render_template("registry/bureau_ledger.html", report=report, form=form, checked_at=utcnow())
