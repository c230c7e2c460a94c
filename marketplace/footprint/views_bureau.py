"""Bureau page for the emission factor library: publish a factor or a new version, retire one."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.i18n import current_language
from marketplace.core.once import once
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import emission_factors
from marketplace.footprint.forms import FactorForm

bp = Blueprint("footprint_bureau", __name__, url_prefix="/bureau")


@bp.route("/emission-factors", methods=["GET", "POST"])
@role_required("bureau")
@once
def emission_factors_page():
    form = FactorForm()
    if request.method == "GET" and request.args.get("code"):
        current = emission_factors.current_factor(db.session, request.args["code"])
        if current is not None:  # start a new version from the current one
            for name in ("code", "category", "name_zh", "name_en", "unit", "source"):
                getattr(form, name).data = getattr(current, name)
            form.kgco2e_per_unit.data = str(current.kgco2e_per_unit.normalize())
            form.year.data = str(current.year)
    if form.validate_on_submit():
        try:
            factor = emission_factors.publish_factor(
                db.session, current_user, code=form.code.data, category=form.category.data,
                name_zh=form.name_zh.data, name_en=form.name_en.data, unit=form.unit.data,
                kgco2e_per_unit=form.kgco2e_per_unit.data, source=form.source.data, year=form.year.data)
            db.session.commit()
            flash(_("Published %(code)s version %(version)d.", code=factor.code, version=factor.version), "success")
            return redirect(url_for("footprint_bureau.emission_factors_page"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    status = 422 if form.is_submitted() else 200
    return render_template("footprint/emission_factors.html", factors=emission_factors.all_factors(db.session),
                           form=form, retire_form=EmptyForm(), language=current_language()), status


@bp.post("/emission-factors/<int:factor_id>/retire")
@role_required("bureau")
def retire_emission_factor(factor_id: int):
    if EmptyForm().validate_on_submit():
        factor = emission_factors.retire_factor(db.session, current_user, factor_id)
        db.session.commit()
        flash(_("Retired %(code)s version %(version)d. Lines that used it keep it.", code=factor.code,
                version=factor.version), "success")
    return redirect(url_for("footprint_bureau.emission_factors_page"))
