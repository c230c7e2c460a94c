"""Certificate pages: public verification (/verify), the bureau's revocation, the owner's PDF download."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from marketplace.accounts.service import actor_for_token
from marketplace.certificates import public_retirements as retirements_registry
from marketplace.certificates.models import Certificate
from marketplace.certificates.pdf import certificate_pdf_file, verify_url_for
from marketplace.certificates.service import (
    NUMBER_PATTERN,
    find_certificate,
    quantity_units_of,
    revoke_certificate,
    verify_certificate_record,
)
from marketplace.core.access import get_scoped
from marketplace.core.dates import within_calendar
from marketplace.core.db import max_length
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.forms import form_error
from marketplace.core.http_errors import ExplainedUnauthorized
from marketplace.core.i18n import local_time
from marketplace.core.quantities import display_tonnes
from marketplace.core.web import public_read
from marketplace.extensions import db
from marketplace.orders.models import RETIREMENT_PURPOSES

bp = Blueprint("certificates", __name__)


class LookupForm(FlaskForm):
    """A GET search form: nothing changes, so no CSRF token."""

    class Meta:
        csrf = False

    number = StringField(_l("Certificate number"), validators=[DataRequired(), Length(max=max_length(Certificate.number))])


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revoking"),
                           validators=[DataRequired(), Length(max=max_length(Certificate.revocation_reason))])


def _when(iso: str | None) -> str:
    return local_time(iso)


def _projects(facts: dict) -> list[dict]:
    """Projects with their ranges printed inclusively (first – last serial), as on the PDF."""
    return [{**project, "batches": [{
        **batch,
        "spans": [(start, end - 1, f"{end - start:,}") for start, end in batch["ranges"]],
    } for batch in project["batches"]]} for project in facts.get("projects", [])]


def _can_download(certificate: Certificate) -> bool:
    return current_user.is_authenticated and (
        current_user.role == "bureau" or current_user.organisation_id == certificate.buyer_organisation_id)


@bp.get("/verify")
def verify_form():
    form = LookupForm(request.args)
    if "number" not in request.args:
        return render_template("certificates/verify.html", form=LookupForm(formdata=None), result=None)
    number = (form.number.data or "").strip().upper()
    if form.validate() and NUMBER_PATTERN.match(number):
        return redirect(url_for("certificates.verify", number=number))
    form.number.errors = [*form.number.errors, _("Enter a certificate number like TH-2026-000123.")]
    return render_template("certificates/verify.html", form=form, result=None), 422


def _verify_page(number: str, revoke_form: RevokeForm | None = None, status: int = 200):
    result = verify_certificate_record(db.session, number)
    form = LookupForm(formdata=None, number=number)
    if not result["found"]:
        return render_template("certificates/verify.html", form=form, result=result), 404
    certificate = find_certificate(db.session, number)
    facts = result["facts"]
    is_bureau = current_user.is_authenticated and current_user.role == "bureau"
    return render_template(
        "certificates/verify.html", form=form, result=result, facts=facts, projects=_projects(facts),
        attribution=retirements_registry.certificate_attribution(db.session, certificate),
        quantity=display_tonnes(quantity_units_of(facts)) if facts.get("quantity_tonnes") else "",
        retired_at=_when(facts.get("retired_at")), issued_at=_when(facts.get("issued_at")),
        revoked_at=local_time(certificate.revoked_at),
        verify_url=verify_url_for(certificate.number), can_download=_can_download(certificate),
        revoke_form=(revoke_form or RevokeForm()) if is_bureau and not certificate.revoked else None,
    ), status


@bp.get("/verify/<number>")
@public_read("retirements")
def verify(number: str):
    return _verify_page(number.strip().upper())


@bp.post("/verify/<number>/revoke")
@login_required
def revoke(number: str):
    if current_user.role != "bureau":
        abort(403)
    form = RevokeForm()
    if form.validate_on_submit():
        try:
            certificate = revoke_certificate(db.session, number=number, actor=current_user, reason=form.reason.data)
            db.session.commit()
            flash(_("Certificate %(number)s revoked. Its units stay retired.", number=certificate.number), "success")
            return redirect(url_for("certificates.verify", number=certificate.number))
        except DomainError as exc:
            db.session.rollback()
            if isinstance(exc, NotFound):
                raise
            form_error(form, exc)
    return _verify_page(number.strip().upper(), revoke_form=form, status=422)


def _send_pdf(certificate: Certificate, *, cache: str):
    path = certificate_pdf_file(db.session, certificate)
    db.session.commit()
    response = send_file(path, mimetype="application/pdf", as_attachment=True,
                         download_name=f"{certificate.number}.pdf", max_age=0)
    response.headers["Cache-Control"] = cache
    return response


def _pdf_reader():
    """Who asks for an owner's PDF: the signed-in user, or an API client's bearer token (the ``pdf_url`` of
    ``GET /api/v1/certificates/<number>`` is this page). None when neither."""
    if current_user.is_authenticated:
        return current_user
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        actor = actor_for_token(db.session, token.strip())
        if actor is None:
            raise ExplainedUnauthorized(_("Send a valid API token: Authorization: Bearer <token>."))
        return actor
    return None


@bp.get("/certificates/<number>.pdf")
def download_pdf(number: str):
    """The PDF for the buyer organisation that owns the certificate, and the bureau (signed in, or with an
    API token); others get 404, anonymous visitors the sign-in."""
    reader = _pdf_reader()
    if reader is None:
        return current_app.login_manager.unauthorized()
    found = find_certificate(db.session, number)
    if found is None:
        raise NotFound(_("No certificate has this number."))
    certificate = get_scoped(db.session, Certificate, found.id, reader)
    return _send_pdf(certificate, cache="private, no-store")


@bp.get("/verify/<number>.pdf")
def public_pdf(number: str):
    """Anyone may download a valid certificate's PDF from its verification page: it carries only what the
    page shows, signed. A revoked certificate's PDF is not handed out (offline, its signature would still
    verify); its owner keeps the download above."""
    certificate = find_certificate(db.session, number.strip().upper())
    if certificate is None or certificate.revoked:
        raise NotFound(_("No valid certificate has this number."))
    return _send_pdf(certificate, cache="public, no-cache")  # revalidated: a revocation shows at once


def _id_arg(name: str) -> int | None:
    """A row id from the query string; anything else (like an unreadable date) is no filter."""
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and 0 < len(value) < 10 and int(value) > 0 else None


def _page_arg() -> int:
    value = request.args.get("page", "")
    return int(value) if value.isdigit() and 0 < len(value) < 10 and int(value) > 0 else 1


@bp.get("/registry/retirements")
def retirements():
    """The public retirement registry: who retired what, from which village, with which certificate."""
    def _date(name):
        try:
            day = date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None
        return day if within_calendar(day) else None  # like an unreadable date: no filter

    filters = retirements_registry.Filters(
        beneficiary=request.args.get("beneficiary", "")[:100], buyer=request.args.get("buyer", "")[:100],
        project=request.args.get("project", "")[:100], village=request.args.get("village", "")[:100],
        date_from=_date("from"), date_to=_date("to"),
        purpose=request.args.get("purpose") if request.args.get("purpose") in RETIREMENT_PURPOSES else "",
        period_from=_date("period_from"), period_to=_date("period_to"), event_id=_id_arg("event_id"))
    page = _page_arg()
    rows, total = retirements_registry.search(db.session, filters, page=page, per_page=20)
    return render_template("certificates/retirements.html", rows=rows, total=total, page=page, per_page=20,
                           filters=filters, args=request.args)
