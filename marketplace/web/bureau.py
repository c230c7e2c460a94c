"""Bureau staff: the operator's and regulator's pages. Organisations and users live here."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.extensions import db
from marketplace.models import Organisation, User
from marketplace.services import accounts
from marketplace.services.access import get_scoped
from marketplace.services.errors import DomainError
from marketplace.web import role_required
from marketplace.web.forms import OrganisationForm, UserForm, form_error

bp = Blueprint("bureau", __name__, url_prefix="/bureau")


@bp.get("/")
@role_required("bureau")
def home():
    counts = dict(db.session.execute(
        sa.select(Organisation.kind, sa.func.count()).group_by(Organisation.kind)).all())
    return render_template("bureau/home.html", counts=counts)


@bp.route("/organisations", methods=["GET", "POST"])
@role_required("bureau")
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


# The emission factor library (routes on this blueprint, kept in their own module).
from marketplace.web import bureau_factors  # noqa: E402,F401
