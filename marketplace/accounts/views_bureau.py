"""Bureau staff: organisations and their users."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.accounts import service as accounts
from marketplace.accounts.audit import recent_events
from marketplace.accounts.forms import OrganisationForm, UserForm
from marketplace.accounts.models import Organisation, User
from marketplace.accounts.views_auth import mail_reset_link
from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.once import once
from marketplace.core.web import role_required
from marketplace.extensions import db

bp = Blueprint("accounts_bureau", __name__, url_prefix="/bureau")


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
            return redirect(url_for("accounts_bureau.organisation", organisation_id=org.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    if form.is_submitted():
        status = 422
    rows = db.session.execute(
        sa.select(Organisation, sa.func.count(User.id))
        .outerjoin(User, User.organisation_id == Organisation.id)
        .group_by(Organisation.id).order_by(Organisation.kind, Organisation.name)).all()
    return render_template("accounts/organisations.html", rows=rows, form=form), status


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
@role_required("bureau")
def organisation(organisation_id: int):
    org = get_scoped(db.session, Organisation, organisation_id, current_user)
    form = UserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.create_user(db.session, organisation_id=org.id, email=form.email.data,
                                        password=form.password.data, display_name=form.display_name.data,
                                        actor_id=current_user.id)
            db.session.commit()
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("accounts_bureau.organisation", organisation_id=org.id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    if form.is_submitted():
        status = 422
    users = db.session.scalars(sa.select(User).where(User.organisation_id == org.id).order_by(User.email)).all()
    return render_template("accounts/organisation.html", org=org, users=users, form=form), status


@bp.get("/users/<int:user_id>")
@role_required("bureau")
def user(user_id: int):
    person = get_scoped(db.session, User, user_id, current_user, options=[so.joinedload(User.organisation)])
    return render_template("accounts/user.html", user=person, form=EmptyForm(),
                           events=recent_events(db.session, person.id))


@bp.post("/users/<int:user_id>/active")
@role_required("bureau")
def set_active(user_id: int):
    person = get_scoped(db.session, User, user_id, current_user)
    form = EmptyForm()
    if form.validate_on_submit():
        active = request.form.get("active") == "1"
        try:
            accounts.set_user_active(db.session, current_user, person.id, active, address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            flash(_("%(email)s is enabled.", email=person.email) if active
                  else _("%(email)s is disabled; their sessions have ended.", email=person.email), "success")
    return redirect(url_for("accounts_bureau.user", user_id=person.id))


@bp.post("/users/<int:user_id>/force-reset")
@role_required("bureau")
def force_reset(user_id: int):
    person = get_scoped(db.session, User, user_id, current_user)
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            made = accounts.force_password_reset(db.session, current_user, person.id,
                                                 minutes=current_app.config["PASSWORD_RESET_MINUTES"],
                                                 address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            if made is not None and mail_reset_link(*made):
                flash(_("%(email)s must choose a new password; a reset link has been e-mailed.",
                        email=person.email), "success")
            else:
                flash(_("%(email)s must choose a new password, but the e-mail could not be sent; they can ask for "
                        "a link on the sign-in page.", email=person.email), "error")
    return redirect(url_for("accounts_bureau.user", user_id=person.id))


@bp.post("/users/<int:user_id>/reset-two-step")
@role_required("bureau")
def reset_two_step(user_id: int):
    person = get_scoped(db.session, User, user_id, current_user)
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            accounts.reset_two_step(db.session, current_user, person.id, address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            flash(_("Two-step sign-in of %(email)s is off; they set it up again if their role requires it.",
                    email=person.email), "success")
    return redirect(url_for("accounts_bureau.user", user_id=person.id))
