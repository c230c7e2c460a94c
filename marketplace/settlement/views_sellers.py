"""A cooperative's money: balance, statements, payouts, bank account, households and distributions, and the
fapiao it issues for its sales."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError, Forbidden, NotFound
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.once import once
from marketplace.core.uploads import upload_limit_bytes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.settlement import journal, payouts, receipts, settlement_sheets, shares, statements
from marketplace.settlement.forms import FapiaoRecordForm, HouseholdsForm, PayeeForm, RuleForm
from marketplace.settlement.models import Distribution, FapiaoRequest, PayeeAccount, Payout

bp = Blueprint("settlement_sellers", __name__, url_prefix="/sellers/money")


def _page(*, payee_form=None, rule_form=None, households_form=None, status=200):
    org_id = current_user.organisation_id
    payee = db.session.scalar(sa.select(PayeeAccount).where(PayeeAccount.organisation_id == org_id))
    rule = shares.current_rule(db.session, org_id)
    households = shares.active_households(db.session, org_id)
    if payee_form is None:
        payee_form = PayeeForm(obj=payee)
    if rule_form is None:
        rule_form = RuleForm(data={"collective_percent": rule.collective_percent if rule else "",
                                   "households_percent": rule.households_percent if rule else ""})
    if households_form is None:
        households_form = HouseholdsForm(data={"households": "\n".join(f"{h.name} {h.shares}" for h in households)})
    rows = db.session.scalars(sa.select(Payout).where(Payout.seller_organisation_id == org_id)
                              .order_by(Payout.id.desc())).all()
    distributed = {d.payout_id: d for d in db.session.scalars(
        sa.select(Distribution).where(Distribution.organisation_id == org_id))}
    return render_template(
        "settlement/seller_money.html", balance_fen=journal.balance(db.session, journal.seller(org_id)),
        undistributed_fen=journal.balance(db.session, journal.cooperative(org_id)),
        statements=statements.statements_of(db.session, org_id), payouts=rows, distributed=distributed,
        payee=payee, rule=rule, households=households, payee_form=payee_form, rule_form=rule_form,
        households_form=households_form, button=EmptyForm()), status


@bp.get("/")
@role_required("seller")
def money():
    return _page()


def _act(form, name: str, action):
    if form.validate_on_submit():
        try:
            action(form)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("settlement_sellers.money"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _page(**{name: form}, status=422)


@bp.post("/payee")
@role_required("seller")
def payee():
    return _act(PayeeForm(), "payee_form", lambda f: payouts.set_payee_account(
        db.session, actor=current_user, account_name=f.account_name.data, bank_name=f.bank_name.data,
        account_number=f.account_number.data))


@bp.post("/rule")
@role_required("seller")
@once
def rule():
    return _act(RuleForm(), "rule_form", lambda f: shares.set_rule(
        db.session, actor=current_user, collective_percent=f.collective_percent.data,
        households_percent=f.households_percent.data))


@bp.post("/households")
@role_required("seller")
def households():
    return _act(HouseholdsForm(), "households_form", lambda f: shares.replace_households(
        db.session, actor=current_user, text=f.households.data))


@bp.get("/statements/<period>")
@role_required("seller")
def statement(period: str):
    """``period`` is the statement's first day, ``YYYY-MM-DD`` (``YYYY-MM``: the first of the month)."""
    day = statements.parse_start(period)
    sheet = statements.statement_starting(db.session, current_user.organisation_id, day) if day else None
    if sheet is None:
        raise NotFound(_("Not found."))
    return render_template("settlement/statement.html", sheet=sheet, organisation=None,
                           back=url_for("settlement_sellers.money"))


# --- fapiao ---------------------------------------------------------------------------------------------

def _fapiao_page(forms=None, status=200):
    org_id = current_user.organisation_id
    rows = db.session.scalars(sa.select(FapiaoRequest).where(receipts.sold_by(org_id))
                              .options(so.joinedload(FapiaoRequest.issuer))
                              .order_by(FapiaoRequest.status.desc(), FapiaoRequest.id.desc()).limit(300)).all()
    own = {r.id for r in rows if receipts.may_record(db.session, r, current_user)}
    forms = forms or {}
    return render_template("settlement/seller_fapiao.html", rows=rows, own=own,
                           forms={r.id: forms.get(r.id) or FapiaoRecordForm(prefix=f"f{r.id}") for r in rows}), status


@bp.get("/fapiao")
@role_required("seller")
def fapiao():
    """The fapiao requested for the cooperative's sales: it records those of orders whose credits are all its own
    (an order with credits of several cooperatives is issued by the platform; its status shows here too)."""
    return _fapiao_page()


@bp.post("/fapiao/<int:request_id>")
@role_required("seller")
def record_fapiao(request_id: int):
    row = receipts.seller_request(db.session, request_id, current_user.organisation_id)
    form = FapiaoRecordForm(prefix=f"f{row.id}")
    if form.validate_on_submit():
        try:
            receipts.record_fapiao(db.session, row, actor=current_user, number=form.number.data,
                                   issued_on=form.issued_on.data, pdf=form.pdf.data.read(upload_limit_bytes() + 1))
            db.session.commit()
            flash(_("Fapiao recorded."), "success")
            return redirect(url_for("settlement_sellers.fapiao"))
        except Forbidden:
            db.session.rollback()
            raise
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _fapiao_page({row.id: form}, status=422)


@bp.post("/payouts/<int:payout_id>/distribute")
@role_required("seller")
def distribute(payout_id: int):
    payout = get_scoped(db.session, Payout, payout_id, current_user, bureau_sees_all=False)
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            distribution = shares.distribute(db.session, payout, actor=current_user)
            db.session.commit()
            return redirect(url_for("settlement_sellers.distribution", distribution_id=distribution.id))
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
    return redirect(url_for("settlement_sellers.money"))


def _distribution(distribution_id: int) -> Distribution:
    return get_scoped(db.session, Distribution, distribution_id, current_user, options=shares.DISTRIBUTION_SHOWN)


@bp.get("/distributions/<int:distribution_id>")
@role_required("seller")
def distribution(distribution_id: int):
    return render_template("settlement/distribution.html", distribution=_distribution(distribution_id),
                           sheet=settlement_sheets.notice_board(db.session, _distribution(distribution_id)))


@bp.get("/distributions/<int:distribution_id>.xlsx")
@role_required("seller")
def distribution_xlsx(distribution_id: int):
    sheet = settlement_sheets.notice_board(db.session, _distribution(distribution_id))
    return Response(settlement_sheets.notice_board_xlsx(sheet), mimetype=settlement_sheets.XLSX,
                    headers={"Content-Disposition": f'attachment; filename="distribution-{distribution_id}.xlsx"'})


@bp.get("/distributions/<int:distribution_id>.pdf")
@role_required("seller")
def distribution_pdf(distribution_id: int):
    sheet = settlement_sheets.notice_board(db.session, _distribution(distribution_id))
    return Response(settlement_sheets.notice_board_pdf(sheet), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="distribution-{distribution_id}.pdf"'})
