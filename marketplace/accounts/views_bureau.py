"""Bureau staff: organisations and their users."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.accounts import service as accounts
from marketplace.accounts.forms import OrganisationForm, UserForm
from marketplace.accounts.models import Organisation, User
from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import form_error
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
                                        password=form.password.data, display_name=form.display_name.data)
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
