"""Buyer pages for event footprints: events, activity lines (form, helpers, spreadsheet), reductions, report."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import scoped_select
from marketplace.core.errors import DomainError, ValidationFailed
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.i18n import current_language
from marketplace.core.once import once
from marketplace.core.quantities import display_tonnes, format_tonnes
from marketplace.core.uploads import upload_limit_bytes, upload_limit_mb
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import report as footprint_report
from marketplace.footprint import service as footprint
from marketplace.footprint import sheets as footprint_sheets
from marketplace.footprint.emission_factors import current_factors
from marketplace.footprint.forms import (
    ActivityForm,
    EventForm,
    MealsForm,
    ReductionForm,
    RoomNightsForm,
    TravelForm,
    UploadForm,
    VenueEnergyForm,
    category_choices,
    factor_choices,
    source_choices,
)
from marketplace.footprint.models import CATEGORIES, Event
from marketplace.footprint.sources import source_basis, source_name

bp = Blueprint("events", __name__, url_prefix="/buyers")

HELPERS = {
    "travel": (TravelForm, footprint.add_travel, ("transport",), ("passenger-km", "vehicle-km")),
    "rooms": (RoomNightsForm, footprint.add_room_nights, ("accommodation",), ("room-night",)),
    "meals": (MealsForm, footprint.add_meals, ("catering",), ("meal",)),
    "venue": (VenueEnergyForm, footprint.add_venue_energy, ("venue",), ("kWh",)),
}


@bp.app_template_filter("tonnes4")
def _tonnes4_filter(units: int) -> str:
    """The same format as ``tonnes`` (kept for the footprint templates)."""
    return display_tonnes(int(units))


@bp.app_template_filter("activity_quantity")
def _quantity_filter(quantity) -> str:
    return footprint.format_quantity(quantity)


@bp.app_template_filter("category_label")
def _category_filter(code: str) -> str:
    return footprint.category_label(code)


@bp.app_template_filter("source_name")
def _source_name_filter(code: str) -> str:
    return source_name(code)


@bp.app_template_filter("source_basis")
def _source_basis_filter(code: str) -> str:
    return source_basis(code)


@bp.app_template_filter("unit_label")
def _unit_filter(unit: str) -> str:
    return footprint.unit_label(unit)


def _event_forms(**bound):
    """Every form of the event page, with choices filled; ``bound`` replaces the one that was posted."""
    language = current_language()
    factors = current_factors(db.session)
    # The forms that were not posted start from their defaults, not from the posted data: bound to another
    # form's POST, an unticked "round trip" box would read as "one way" and halve the next travel line.
    forms = {
        "line": bound.get("line") or ActivityForm(prefix="line", formdata=None),
        "upload": bound.get("upload") or UploadForm(prefix="upload", formdata=None),
        "reduction": bound.get("reduction") or ReductionForm(prefix="reduction", formdata=None),
    }
    forms["line"].category.choices = category_choices()
    forms["line"].factor_code.choices = factor_choices(factors, language)
    forms["line"].source.choices = source_choices()
    forms["reduction"].category.choices = category_choices()
    for kind, (form_class, _service, categories, units) in HELPERS.items():
        form = bound.get(kind) or form_class(prefix=kind, formdata=None)
        form.factor_code.choices = factor_choices([f for f in factors if f.category in categories], language,
                                                  units=units)
        forms[kind] = form
    return forms


def _render_event(event: Event, status: int = 200, upload_errors=None, **bound):
    breakdown = footprint.event_breakdown(db.session, event.id)
    report = footprint_report.build_report(db.session, event)
    # Once an order for the event is paid, its footprint is fixed: the page shows it read-only.
    locking_orders = footprint.locking_orders(db.session, event.id)
    return render_template("footprint/event.html", event=event, breakdown=breakdown, report=report,
                           forms=_event_forms(**bound), delete_form=EmptyForm(), upload_errors=upload_errors,
                           categories=CATEGORIES, language=current_language(), locking_orders=locking_orders,
                           outside=footprint.outside_boundary(db.session, event.id, breakdown)), status


@bp.get("/events")
@role_required("buyer")
def events():
    rows = db.session.scalars(scoped_select(Event, current_user, bureau_sees_all=False)
                              .order_by(Event.starts_on.desc(), Event.id.desc())).all()
    totals = footprint.breakdown_for_events(db.session, [e.id for e in rows])
    return render_template("footprint/events.html", events=rows, totals=totals)


@bp.route("/events/new", methods=["GET", "POST"])
@role_required("buyer")
@once
def new_event():
    form = EventForm()
    if form.validate_on_submit():
        try:
            event = footprint.create_event(
                db.session, current_user, name=form.name.data, starts_on=form.starts_on.data,
                ends_on=form.ends_on.data, location=form.location.data, attendees=form.attendees.data,
                organiser=form.organiser.data, boundary=form.boundary.data)
            db.session.commit()
            flash(_("Event created. Now enter its activity data."), "success")
            return redirect(url_for("events.event", event_id=event.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    status = 422 if form.is_submitted() else 200
    return render_template("footprint/event_new.html", form=form, event=None), status


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@role_required("buyer")
def edit_event(event_id: int):
    """The event's facts, editable until an order paid for its footprint. Saving twice sets the same values."""
    event = footprint.own_event(db.session, current_user, event_id)
    if footprint.locking_orders(db.session, event.id):
        flash(_("This event has been neutralised; its footprint can no longer change."), "error")
        return redirect(url_for("events.event", event_id=event.id))
    form = EventForm(obj=event)
    if form.validate_on_submit():
        try:
            footprint.update_event(
                db.session, current_user, event.id, name=form.name.data, starts_on=form.starts_on.data,
                ends_on=form.ends_on.data, location=form.location.data, attendees=form.attendees.data,
                organiser=form.organiser.data, boundary=form.boundary.data)
            db.session.commit()
            flash(_("Event saved."), "success")
            return redirect(url_for("events.event", event_id=event.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return render_template("footprint/event_new.html", form=form, event=event), 422 if form.is_submitted() else 200


@bp.get("/events/<int:event_id>")
@role_required("buyer")
def event(event_id: int):
    return _render_event(footprint.own_event(db.session, current_user, event_id))


@bp.post("/events/<int:event_id>/lines")
@role_required("buyer")
@once
def add_line(event_id: int):
    event = footprint.editable_event(db.session, current_user, event_id)
    form = ActivityForm(prefix="line")
    forms = _event_forms(line=form)  # fills the choices before validation
    if forms["line"].validate_on_submit():
        try:
            footprint.add_activity(db.session, current_user, event.id, footprint.ActivityInput(
                form.category.data, form.factor_code.data, form.quantity.data, form.description.data,
                form.source.data or ""))
            db.session.commit()
            flash(_("Activity line added."), "success")
            return redirect(url_for("events.event", event_id=event.id, _anchor="lines"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _render_event(event, 422, line=form)


@bp.post("/events/<int:event_id>/lines/<int:line_id>/delete")
@role_required("buyer")
def delete_line(event_id: int, line_id: int):
    """First the question (what would go), then, with confirm=1, the removal."""
    form = EmptyForm()
    if form.validate_on_submit():
        if request.form.get("confirm") != "1":
            line = footprint.own_line(db.session, current_user, event_id, line_id)
            return render_template(
                "core/confirm.html", form=form, danger=True, title=_("Remove an activity line"),
                question=_("Remove this line from the event's footprint? It cannot be brought back; you would "
                           "enter it again."),
                facts=[(_("Category"), footprint.category_label(line.category)),
                       (_("Emission factor"), line.factor.name(current_language())),
                       (_("Quantity"), f"{footprint.format_quantity(line.quantity)} {footprint.unit_label(line.factor.unit)}"),
                       (_("Description"), line.description or "—")],
                action=url_for("events.delete_line", event_id=event_id, line_id=line_id),
                confirm_label=_("Remove the line"), cancel_url=url_for("events.event", event_id=event_id, _anchor="lines"))
        footprint.delete_activity(db.session, current_user, event_id, line_id)
        db.session.commit()
        flash(_("Activity line removed."), "success")
    return redirect(url_for("events.event", event_id=event_id, _anchor="lines"))


@bp.post("/events/<int:event_id>/helpers/<kind>")
@role_required("buyer")
@once
def add_helper(event_id: int, kind: str):
    if kind not in HELPERS:
        abort(404)
    event = footprint.editable_event(db.session, current_user, event_id)
    form_class, service, _categories, _units = HELPERS[kind]
    form = form_class(prefix=kind)
    _event_forms(**{kind: form})
    if form.validate_on_submit():
        values = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
        try:
            service(db.session, current_user, event.id, **values)
            db.session.commit()
            flash(_("Activity line added."), "success")
            return redirect(url_for("events.event", event_id=event.id, _anchor="lines"))
        except DomainError as exc:
            db.session.rollback()
            if exc.field == "quantity":  # the product of the helper's inputs
                exc.field = None
            form_error(form, exc)
    return _render_event(event, 422, **{kind: form})


@bp.get("/events/template.xlsx")
@role_required("buyer")
def activity_template():
    data = footprint_sheets.activity_template(db.session, current_language())
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": "attachment; filename=tanhui-activities.xlsx"})


@bp.post("/events/<int:event_id>/upload")
@role_required("buyer")
@once
def upload_lines(event_id: int):
    event = footprint.editable_event(db.session, current_user, event_id)
    form = UploadForm(prefix="upload")
    if form.validate_on_submit():
        upload = form.file.data
        try:
            data = upload.read(upload_limit_bytes() + 1)
            if len(data) > upload_limit_bytes():
                raise ValidationFailed(_("The file is too large: at most %(mb)d MB.", mb=upload_limit_mb()), "file")
            lines = footprint_sheets.import_activity_sheet(db.session, current_user, event.id, upload.filename, data,
                                                           current_language())
            db.session.commit()
            flash(_("%(n)d activity lines imported.", n=len(lines)), "success")
            return redirect(url_for("events.event", event_id=event.id, _anchor="lines"))
        except footprint_sheets.SpreadsheetRejected as exc:
            db.session.rollback()
            form_error(form, exc)
            return _render_event(event, 422, upload_errors=exc.errors, upload=form)
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _render_event(event, 422, upload=form)


@bp.post("/events/<int:event_id>/reductions")
@role_required("buyer")
@once
def add_reduction(event_id: int):
    event = footprint.editable_event(db.session, current_user, event_id)
    form = ReductionForm(prefix="reduction")
    _event_forms(reduction=form)
    if form.validate_on_submit():
        try:
            footprint.add_reduction(db.session, current_user, event.id, category=form.category.data,
                                    description=form.description.data, estimated_tonnes=form.estimated_tonnes.data)
            db.session.commit()
            flash(_("Reduction measure added."), "success")
            return redirect(url_for("events.event", event_id=event.id, _anchor="reductions"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _render_event(event, 422, reduction=form)


@bp.post("/events/<int:event_id>/reductions/<int:measure_id>/delete")
@role_required("buyer")
def delete_reduction(event_id: int, measure_id: int):
    if EmptyForm().validate_on_submit():
        footprint.delete_reduction(db.session, current_user, event_id, measure_id)
        db.session.commit()
        flash(_("Reduction measure removed."), "success")
    return redirect(url_for("events.event", event_id=event_id, _anchor="reductions"))


@bp.get("/events/<int:event_id>/report")
@role_required("buyer")
def event_report(event_id: int):
    event = footprint.own_event(db.session, current_user, event_id)
    report = footprint_report.build_report(db.session, event)
    chart = {
        "labels": [footprint.category_label(c) for c in CATEGORIES],
        "values": [format_tonnes(report.breakdown.by_category[c]) for c in CATEGORIES],
        "unit": "tCO2e",
    }
    return render_template("footprint/event_report.html", event=event, report=report, categories=CATEGORIES,
                           chart_json=json.dumps(chart, ensure_ascii=False), language=current_language())


@bp.get("/events/<int:event_id>/report.pdf")
@role_required("buyer")
def event_report_pdf(event_id: int):
    event = footprint.own_event(db.session, current_user, event_id)
    pdf = footprint_report.report_pdf(footprint_report.build_report(db.session, event))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=tanhui-footprint-{event.id}.pdf"})
