"""Village cooperatives: projects, documents, batches and listings."""

from __future__ import annotations

import sqlalchemy.orm as so
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.once import once
from marketplace.core.quantities import display_tonnes, parse_cny, parse_tonnes
from marketplace.core.uploads import upload_limit_bytes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.registry import service as registry
from marketplace.registry.forms import DocumentForm, ListingForm, ProjectForm
from marketplace.registry.models import PROJECT_SHOWN, CreditBatch, Listing, Project, ProjectDocument
from marketplace.registry.views import send_project_document

bp = Blueprint("registry_sellers", __name__, url_prefix="/sellers")


def _village_choices():
    choices = []
    for village in registry.villages(db.session, ancestors=True):
        path = " › ".join(r.name for r in village.path()[2:])
        choices.append((village.id, path))
    return choices


@bp.route("/projects/new", methods=["GET", "POST"])
@role_required("seller")
@once
def new_project():
    form = ProjectForm()
    form.village_id.choices = _village_choices()
    if not form.is_submitted():
        form.village_id.data = registry.default_village_id(db.session, current_user, current_user.organisation.name)
    if form.validate_on_submit():
        try:
            project = registry.create_project(
                db.session, actor=current_user, village_id=form.village_id.data, name=form.name.data,
                name_en=form.name_en.data, area_hectares=form.area_hectares.data, forest_type=form.forest_type.data,
                methodology=form.methodology.data, crediting_start=form.crediting_start.data,
                crediting_end=form.crediting_end.data, description=form.description.data,
                location=form.location.data)
            db.session.commit()
            flash(_("Project registered as a draft. Upload its documents, then submit it for review."), "success")
            return redirect(url_for("registry_sellers.project", project_id=project.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return render_template("registry/seller_project_new.html", form=form, project=None), \
        422 if form.is_submitted() else 200


_PROJECT_FIELDS = ("village_id", "name", "name_en", "area_hectares", "forest_type", "methodology", "crediting_start",
                   "crediting_end", "description", "location")


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@role_required("seller")
def edit_project(project_id: int):
    """Correct a draft or rejected project. Saving the same form twice sets the same values: safe to repeat."""
    row = get_scoped(db.session, Project, project_id, current_user)
    form = ProjectForm(obj=row)
    form.village_id.choices = _village_choices()
    if form.validate_on_submit():
        try:
            registry.update_project(db.session, row, actor=current_user,
                                    **{name: getattr(form, name).data for name in _PROJECT_FIELDS})
            db.session.commit()
            flash(_("Project saved."), "success")
            return redirect(url_for("registry_sellers.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    elif not form.is_submitted() and row.status not in registry.EDITABLE_PROJECT_STATUSES:
        flash(_("Only a draft or rejected project can be changed."), "error")
        return redirect(url_for("registry_sellers.project", project_id=row.id))
    return render_template("registry/seller_project_new.html", form=form, project=row), \
        422 if form.is_submitted() else 200


@bp.post("/projects/<int:project_id>/delete")
@role_required("seller")
def delete_project(project_id: int):
    """First the question, then (confirm=1) the deletion of a draft that never went to the bureau."""
    row = get_scoped(db.session, Project, project_id, current_user)
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("registry_sellers.project", project_id=row.id))
    if request.form.get("confirm") != "1":
        return render_template(
            "core/confirm.html", form=form, danger=True, title=_("Delete the draft project"),
            question=_("Delete this draft project and its documents? This cannot be undone."),
            facts=[(_("Project name"), row.name), (_("Area (hectares)"), row.area_hectares)],
            action=url_for("registry_sellers.delete_project", project_id=row.id),
            confirm_label=_("Delete the draft"), cancel_url=url_for("registry_sellers.project", project_id=row.id))
    try:
        registry.delete_draft_project(db.session, row, actor=current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("registry_sellers.project", project_id=row.id))
    flash(_("Draft project deleted."), "success")
    return redirect(url_for("home.seller"))


@bp.post("/documents/<int:document_id>/delete")
@role_required("seller")
def delete_document(document_id: int):
    """First the question, then (confirm=1) the removal of a wrongly uploaded document."""
    document = get_scoped(db.session, ProjectDocument, document_id, current_user, bureau_sees_all=False)
    form = EmptyForm()
    back = url_for("registry_sellers.project", project_id=document.project_id)
    if not form.validate_on_submit():
        return redirect(back)
    if request.form.get("confirm") != "1":
        return render_template(
            "core/confirm.html", form=form, danger=True, title=_("Delete a document"),
            question=_("Delete this document from the project? Upload the right one afterwards."),
            facts=[(_("File"), document.original_name), ("SHA-256", document.sha256[:16] + "…")],
            action=url_for("registry_sellers.delete_document", document_id=document.id),
            confirm_label=_("Delete the document"), cancel_url=back)
    try:
        registry.delete_document(db.session, document, actor=current_user)
        db.session.commit()
        flash(_("Document deleted."), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    return redirect(back)


def _project_page(project_id: int, *, document_form=None, listing_form=None, status=200):
    project = get_scoped(db.session, Project, project_id, current_user, options=PROJECT_SHOWN)
    details = registry.project_details(db.session, project)
    listing_form = listing_form or ListingForm()
    listing_form.batch_id.choices = _batch_choices(details["batches"], details["balances"])
    return render_template("registry/seller_project.html", project=project, **details,
                           document_form=document_form or DocumentForm(), listing_form=listing_form,
                           action_form=EmptyForm()), status


def _batch_choices(batches, balances):
    return [(b.id, _("%(vintage)s vintage, %(t)s t available", vintage=b.vintage_end.year,
                     t=display_tonnes(balances[b.id]["available"])))
            for b in batches if balances[b.id]["available"] > 0]


@bp.get("/projects/<int:project_id>")
@role_required("seller")
def project(project_id: int):
    return _project_page(project_id)


@bp.post("/projects/<int:project_id>/documents")
@role_required("seller")
@once
def upload_document(project_id: int):
    row = get_scoped(db.session, Project, project_id, current_user)
    form = DocumentForm()
    if form.validate_on_submit():
        try:
            upload = form.file.data
            registry.add_document(db.session, row, actor=current_user, kind=form.kind.data,
                                  filename=upload.filename or "", data=upload.read(upload_limit_bytes() + 1))
            db.session.commit()
            flash(_("Document uploaded."), "success")
            return redirect(url_for("registry_sellers.project", project_id=row.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _project_page(project_id, document_form=form, status=422)


@bp.get("/documents/<int:document_id>")
@role_required("seller")
def document(document_id: int):
    return send_project_document(document_id)


@bp.post("/projects/<int:project_id>/submit")
@role_required("seller")
def submit_project(project_id: int):
    row = get_scoped(db.session, Project, project_id, current_user)
    if EmptyForm().validate_on_submit():
        try:
            registry.transition_project(db.session, row, "submitted", actor=current_user)
            db.session.commit()
            flash(_("Project submitted to the bureau for review."), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
    return redirect(url_for("registry_sellers.project", project_id=row.id))


@bp.post("/listings")
@role_required("seller")
@once
def create_listing():
    form = ListingForm()
    batch = get_scoped(db.session, CreditBatch, request.form.get("batch_id"), current_user,
                       options=[so.joinedload(CreditBatch.project)])
    form.batch_id.choices = [(batch.id, str(batch.id))]
    if form.validate_on_submit():
        try:
            registry.create_listing(db.session, batch, actor=current_user, units=parse_tonnes(form.quantity.data),
                                    price_cny_per_tonne=parse_cny(form.price.data),
                                    min_order_units=parse_tonnes(form.min_order.data, "min_order"))
            db.session.commit()
            flash(_("Listing created."), "success")
            return redirect(url_for("registry_sellers.listings"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    if request.form.get("from") == "listings":  # the listings page's own form: answered there
        return _listings_page(listing_form=form, status=422)
    return _project_page(batch.project_id, listing_form=form, status=422)


def _listings_page(listing_form=None, status=200):
    listing_form = listing_form or ListingForm(formdata=None)
    listing_form.batch_id.choices = [
        (b.id, _("%(project)s · %(vintage)s vintage, %(t)s t available", project=b.project.name,
                 vintage=b.vintage_end.year, t=display_tonnes(units)))
        for b, units in registry.listable_batches(db.session, current_user)]
    return render_template("registry/seller_listings.html", rows=registry.listings_of(db.session, current_user),
                           action_form=EmptyForm(), listing_form=listing_form), status


@bp.get("/listings")
@role_required("seller")
def listings():
    return _listings_page()


@bp.post("/listings/<int:listing_id>/<action>")
@role_required("seller")
def listing_action(listing_id: int, action: str):
    row = get_scoped(db.session, Listing, listing_id, current_user, bureau_sees_all=False)
    if EmptyForm().validate_on_submit():
        try:
            registry.change_listing(db.session, row, action, actor=current_user)
            db.session.commit()
            flash(_("Listing updated."), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
    return redirect(url_for("registry_sellers.listings"))
