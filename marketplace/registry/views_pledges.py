"""The bureau's pledges: units of a batch frozen for a green loan, and their release."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.once import once
from marketplace.core.quantities import display_tonnes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.registry import ledger, pledges
from marketplace.registry.forms import PledgeForm
from marketplace.registry.models import CreditBatch, Pledge, Project

bp = Blueprint("registry_pledges", __name__, url_prefix="/bureau/pledges")


def _page(form=None, status=200):
    batches = db.session.scalars(sa.select(CreditBatch).order_by(CreditBatch.id)
                                 .options(so.joinedload(CreditBatch.project).lazyload(Project.seller))).all()
    balances = ledger.batch_summaries(db.session, [b.id for b in batches])
    form = form or PledgeForm()
    form.batch_id.choices = [(b.id, f"{b.project.name} · {b.vintage_end.year} · "
                                    f"{_('available')} {display_tonnes(balances[b.id]['available'])} t") for b in batches]
    rows = db.session.scalars(sa.select(Pledge).order_by(Pledge.id.desc()).options(
        so.joinedload(Pledge.batch).joinedload(CreditBatch.project).lazyload(Project.seller))).all()
    return render_template("registry/bureau_pledges.html", form=form, pledges=rows, button=EmptyForm()), status


@bp.route("/", methods=["GET", "POST"])
@role_required("bureau")
@once
def pledges_page():
    form = PledgeForm()
    if form.is_submitted():
        _page(form)  # fills the batch choices before validation
    if form.validate_on_submit():
        try:
            batch = get_scoped(db.session, CreditBatch, form.batch_id.data, current_user)
            pledges.pledge_units(db.session, batch, actor=current_user, tonnes=form.tonnes.data,
                                 bank_name=form.bank_name.data, contract_reference=form.contract_reference.data,
                                 loan_amount=form.loan_amount.data, term_start=form.term_start.data,
                                 term_end=form.term_end.data)
            db.session.commit()
            flash(_("The units are frozen for the pledge."), "success")
            return redirect(url_for("registry_pledges.pledges_page"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _page(form, status=422 if form.is_submitted() else 200)


@bp.post("/<int:pledge_id>/release")
@role_required("bureau")
def release(pledge_id: int):
    pledge = get_scoped(db.session, Pledge, pledge_id, current_user)
    if EmptyForm().validate_on_submit():
        pledges.release(db.session, pledge, actor=current_user)
        db.session.commit()
        flash(_("The pledge is released: its units are available again."), "success")
    return redirect(url_for("registry_pledges.pledges_page"))
