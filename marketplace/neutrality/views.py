"""The organiser's neutrality dossier of an event: plan, publish, actual footprint, coverage and top-up,
declaration; the evaluator's assigned events; the bureau's overview."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from marketplace.core.errors import DomainError, ValidationFailed
from marketplace.core.forms import EmptyForm
from marketplace.core.quantities import format_tonnes
from marketplace.core.uploads import upload_limit_bytes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.models import CATEGORIES
from marketplace.footprint.sources import SOURCES, sources_of
from marketplace.neutrality import coverage as coverage_of
from marketplace.neutrality import declarations, disclosure, evidence
from marketplace.neutrality import service as neutrality
from marketplace.neutrality.models import CONCLUSIONS, NeutralityPlan
from marketplace.registry.models import CREDIT_SCHEMES

bp = Blueprint("neutrality", __name__)


def _plan_input(form) -> neutrality.PlanInput:
    """The plan form as typed (validated by the service, which names the field of any refusal)."""
    deadline = None
    if form.get("deadline"):
        try:
            deadline = date.fromisoformat(form["deadline"])
        except ValueError:
            raise ValidationFailed(_("Enter the deadline as a date."), "deadline") from None
    evaluator = form.get("evaluator_organisation_id", "")
    return neutrality.PlanInput(
        boundary={source.code: (form.get(f"source-{source.code}") == "1", form.get(f"reason-{source.code}", ""))
                  for source in SOURCES},
        offsetting_route=form.getlist("offsetting_route"), deadline=deadline,
        evaluation=form.get("evaluation", ""),
        evaluator_organisation_id=int(evaluator) if evaluator.isdigit() and len(evaluator) < 10 else None)


def _dossier(event, plan, *, errors=None, typed=None, reduction_typed=None, status=200):
    cover = coverage_of.of_plan(db.session, plan) if plan else None
    comparison = neutrality.plan_vs_actual(plan) if plan else None
    return render_template(
        "neutrality/dossier.html", event=event, plan=plan, cover=cover, errors=errors or {}, typed=typed,
        categories=CATEGORIES, sources_of=sources_of, schemes=CREDIT_SCHEMES,
        evaluators=neutrality.evaluators(db.session),
        breakdown=footprint.event_breakdown(db.session, event.id),
        comparison=comparison, reduction_typed=reduction_typed or {},
        outside=footprint.outside_boundary(db.session, event.id) if plan else [],
        reductions=neutrality.reductions(db.session, event.id),
        default_deadline=neutrality.default_deadline(event),
        declaration=neutrality.declaration_of(db.session, plan.id, "self") if plan else None,
        evaluation=neutrality.declaration_of(db.session, plan.id, "evaluation") if plan else None,
        certificates=declarations.certificate_numbers(db.session, event.id),
        top_up_tonnes=format_tonnes(cover.shortfall_units) if cover and cover.shortfall_units else None,
        action_form=EmptyForm()), status


@bp.route("/buyers/events/<int:event_id>/neutrality", methods=["GET", "POST"])
@role_required("buyer")
def plan(event_id: int):
    """The dossier; POST saves the plan (made or changed until the actual footprint is recorded)."""
    event = footprint.own_event(db.session, current_user, event_id)
    if request.method == "POST":
        if not EmptyForm().validate_on_submit():
            return _dossier(event, neutrality.plan_for(db.session, event.id),
                            errors={"form": _("The form has expired or was sent from elsewhere. Reload the page "
                                              "and try again.")}, typed=request.form, status=400)
        try:
            neutrality.save_plan(db.session, current_user, event.id, _plan_input(request.form))
            db.session.commit()
            flash(_("Plan saved."), "success")
            return redirect(url_for("neutrality.plan", event_id=event.id))
        except IntegrityError:
            # The same form sent twice at once: the first made the plan (one per event), this one is moot.
            db.session.rollback()
            return redirect(url_for("neutrality.plan", event_id=event.id))
        except DomainError as exc:
            db.session.rollback()
            return _dossier(event, neutrality.plan_for(db.session, event.id),
                            errors={exc.field or "form": str(exc.message)}, typed=request.form, status=422)
    return _dossier(event, neutrality.plan_for(db.session, event.id))


def _act(event_id: int, action, done: str):
    event = footprint.own_event(db.session, current_user, event_id)
    plan = neutrality.plan_for(db.session, event.id)
    if plan is not None and EmptyForm().validate_on_submit():
        try:
            action(plan)
            db.session.commit()
            flash(done, "success")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
    return redirect(url_for("neutrality.plan", event_id=event.id))


@bp.post("/buyers/events/<int:event_id>/neutrality/publish")
@role_required("buyer")
def publish(event_id: int):
    return _act(event_id, lambda p: neutrality.publish(db.session, current_user, p.id),
                _("The plan's main contents are public now."))


@bp.post("/buyers/events/<int:event_id>/neutrality/actual")
@role_required("buyer")
def record_actual(event_id: int):
    return _act(event_id, lambda p: neutrality.record_actual(db.session, current_user, p.id),
                _("The actual footprint is recorded."))


@bp.post("/buyers/events/<int:event_id>/neutrality/declare")
@role_required("buyer")
def declare(event_id: int):
    return _act(event_id, lambda p: declarations.declare(db.session, current_user, p),
                _("The carbon-neutrality declaration is signed."))


def _reduction_action(event_id: int, measure_id: int, action, done: str):
    """Record what a measure achieved, or add its evidence; a refusal shows the dossier with the field's error
    and what was typed, nothing changed."""
    event = footprint.own_event(db.session, current_user, event_id)
    if not EmptyForm().validate_on_submit():
        return _dossier(event, neutrality.plan_for(db.session, event.id),
                        errors={"form": _("The form has expired or was sent from elsewhere. Reload the page and try "
                                          "again.")}, reduction_typed=request.form, status=400)
    try:
        action(event)
        db.session.commit()
        flash(done, "success")
        return redirect(url_for("neutrality.plan", event_id=event.id, _anchor=f"reduction-{measure_id}"))
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            raise
        field = exc.field if exc.field and exc.field.startswith("achieved-") else (
            f"{exc.field}-{measure_id}" if exc.field else f"reduction-{measure_id}")
        return _dossier(event, neutrality.plan_for(db.session, event.id), errors={field: str(exc.message)},
                        reduction_typed=request.form, status=422)


@bp.post("/buyers/events/<int:event_id>/neutrality/reductions/<int:measure_id>/achieved")
@role_required("buyer")
def record_achieved(event_id: int, measure_id: int):
    return _reduction_action(event_id, measure_id, lambda event: evidence.record_achieved(
        db.session, current_user, event.id, measure_id, request.form.get(f"achieved-{measure_id}", "")),
        _("What the measure achieved is recorded."))


@bp.post("/buyers/events/<int:event_id>/neutrality/reductions/<int:measure_id>/evidence")
@role_required("buyer")
def add_evidence(event_id: int, measure_id: int):
    upload = request.files.get(f"file-{measure_id}")
    data = upload.read(upload_limit_bytes() + 1) if upload else b""
    return _reduction_action(event_id, measure_id, lambda event: evidence.add_evidence(
        db.session, current_user, event.id, measure_id, title=request.form.get(f"title-{measure_id}", ""),
        filename=upload.filename if upload else "", data=data), _("The evidence is attached."))


def _send_evidence(document):
    return send_file(evidence.document_path(document), mimetype=document.content_type, as_attachment=True,
                     download_name=document.original_name, max_age=0)


@bp.get("/buyers/events/<int:event_id>/neutrality/evidence/<int:evidence_id>")
@role_required("buyer")
def organiser_evidence(event_id: int, evidence_id: int):
    return _send_evidence(evidence.organiser_document(db.session, current_user, event_id, evidence_id))


# --- evaluators ------------------------------------------------------------------------------------

@bp.get("/evaluators/")
@role_required("evaluator")
def assignments():
    rows = db.session.scalars(
        neutrality.scoped_plans(current_user).order_by(NeutralityPlan.deadline)).all()
    return render_template("neutrality/evaluator_home.html", rows=rows)


@bp.route("/evaluators/plans/<int:plan_id>", methods=["GET", "POST"])
@role_required("evaluator")
def evaluate(plan_id: int):
    """An assigned event's dossier and evidence; POST records the conclusion. Another event is a 404."""
    plan = neutrality.visible_plan(db.session, current_user, plan_id)
    errors = {}
    if request.method == "POST" and EmptyForm().validate_on_submit():
        try:
            declarations.evaluate(db.session, current_user, plan, conclusion=request.form.get("conclusion", ""),
                                  findings=request.form.get("findings", ""))
            db.session.commit()
            flash(_("The evaluation is signed."), "success")
            return redirect(url_for("neutrality.evaluate", plan_id=plan.id))
        except DomainError as exc:
            db.session.rollback()
            errors = {exc.field or "form": str(exc.message)}
    return render_template("neutrality/evaluate.html", plan=plan, event=plan.event,
                           summary=disclosure.summary(db.session, plan, detail=True),
                           evaluation=neutrality.declaration_of(db.session, plan.id, "evaluation"),
                           conclusions=CONCLUSIONS, errors=errors, typed=request.form,
                           action_form=EmptyForm()), 422 if errors else 200


@bp.get("/evaluators/plans/<int:plan_id>/evidence/<int:evidence_id>")
@role_required("evaluator")
def evaluator_evidence(plan_id: int, evidence_id: int):
    """Evidence of an assigned event only (another event's: 404)."""
    return _send_evidence(evidence.evaluator_document(db.session, current_user, plan_id, evidence_id))


# --- the bureau ------------------------------------------------------------------------------------

@bp.get("/bureau/neutrality")
@role_required("bureau")
def bureau_overview():
    rows = db.session.scalars(neutrality.scoped_plans(current_user)
                              .order_by(NeutralityPlan.overdue_at.is_(None), NeutralityPlan.deadline)).all()
    return render_template("neutrality/bureau.html",
                           rows=[(p, coverage_of.of_plan(db.session, p)) for p in rows])


# --- public ----------------------------------------------------------------------------------------

def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 6 else None


@bp.get("/neutrality/events")
def public_events():
    from marketplace.registry import service as registry

    filters = disclosure.Filters(year=_int_arg("year"), organiser=request.args.get("organiser", "")[:100],
                                 county_id=_int_arg("county"))
    rows = [disclosure.summary(db.session, p) for p in disclosure.published(db.session, filters)]
    return render_template("neutrality/public_list.html", rows=rows, filters=filters,
                           counties=registry.counties(db.session))


@bp.get("/neutrality/events/<int:event_id>")
def public_event(event_id: int):
    plan = disclosure.published_plan(db.session, event_id)
    if plan is None:
        abort(404)
    return render_template("neutrality/public_event.html", event=plan.event,
                           summary=disclosure.summary(db.session, plan, detail=True))


@bp.get("/neutrality/events/<int:event_id>/evidence/<int:evidence_id>")
def public_evidence(event_id: int, evidence_id: int):
    """A reduction's evidence, public once the plan's main contents are."""
    return _send_evidence(evidence.public_document(db.session, event_id, evidence_id))


@bp.get("/neutrality/declarations/<number>")
def declaration(number: str):
    row = declarations.find(db.session, number[:40])
    if row is None or row.plan.published_at is None:
        abort(404)
    import json

    return render_template("neutrality/declaration.html", declaration=row, facts=json.loads(row.facts_json),
                           valid=declarations.is_valid(db.session, row))


@bp.get("/neutrality/declarations/<number>.pdf")
def declaration_pdf(number: str):
    row = declarations.find(db.session, number[:40])
    if row is None or row.plan.published_at is None:
        abort(404)
    return send_file(declarations.pdf_file(row), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{row.number}.pdf")
