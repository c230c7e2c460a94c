"""The money desk: the platform fee (the bureau's), balances due, statements, payout batches, the bank's
spreadsheet and fapiao records — the bureau's, and the platform operator's it delegates them to."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.accounts.audit import record_event
from marketplace.accounts.models import Organisation
from marketplace.core.access import get_scoped
from marketplace.core.errors import DomainError, NotFound, ValidationFailed
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.ids import is_id
from marketplace.core.once import once
from marketplace.core.quantities import fen, parse_cny
from marketplace.core.uploads import upload_limit_bytes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.settlement import journal, money_check, payouts, receipts, settlement_sheets, statements
from marketplace.settlement.forms import FapiaoRecordForm, FeeRuleForm, PayoutDecisionForm
from marketplace.settlement.models import DESK_ROLES, FapiaoRequest, Payout, PayoutBatch

bp = Blueprint("settlement_bureau", __name__, url_prefix="/bureau/money")


def _page(*, fee_form=None, batch_errors=None, status=200):
    percent, floor_fen, ceiling_fen = journal.current_fee_rule(db.session)
    batches = db.session.scalars(sa.select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(100)
                                 .options(so.selectinload(PayoutBatch.payouts))).all()
    return render_template(
        "settlement/bureau_money.html", fee=(percent, floor_fen, ceiling_fen),
        fee_form=fee_form or FeeRuleForm(), due=payouts.due_balances(db.session), batches=batches,
        batch_form=EmptyForm(), batch_errors=batch_errors or {}, fees_fen=journal.balance(db.session, journal.FEES),
        problems=money_check.check_invariants(db.session)), status


DESK = DESK_ROLES


@bp.get("/")
@role_required(*DESK)
def money():
    return _page()


@bp.post("/fee-rule")
@role_required("bureau")
@once
def fee_rule():
    form = FeeRuleForm()
    if form.validate_on_submit():
        try:
            journal.set_fee_rule(db.session, actor=current_user, percent=form.percent.data,
                                 floor_cny=form.floor.data, ceiling_cny=form.ceiling.data)
            db.session.commit()
            flash(_("The new fee applies to payments from now on."), "success")
            return redirect(url_for("settlement_bureau.money"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _page(fee_form=form, status=422)


@bp.post("/batches")
@role_required(*DESK)
@once
def create_batch():
    form = EmptyForm()
    if not form.validate_on_submit():
        return _page(batch_errors={"": _("The form has expired. Reload the page and try again.")}, status=422)
    amounts: dict[int, int] = {}
    try:
        for key, raw in request.form.items():
            if not key.startswith("amount_") or not raw.strip():
                continue
            org_id = key.removeprefix("amount_")
            if not org_id.isdigit() or len(org_id) > 9:
                raise ValidationFailed(_("Unknown cooperative."), key)
            amounts[int(org_id)] = fen(parse_cny(raw, key))
        batch = payouts.create_batch(db.session, actor=current_user, amounts=amounts)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _page(batch_errors={exc.field or "": str(exc.message)}, status=422)
    flash(_("Payout batch %(ref)s created: export it for the bank.", ref=batch.reference), "success")
    return redirect(url_for("settlement_bureau.batch", batch_id=batch.id))


def _batch_page(batch_id: int, *, forms=None, status=200):
    batch = get_scoped_batch(batch_id)
    forms = forms or {}
    return render_template("settlement/bureau_batch.html", batch=batch,
                           forms={p.id: forms.get(p.id) or PayoutDecisionForm(prefix=f"p{p.id}") for p in batch.payouts}
                           ), status


def get_scoped_batch(batch_id: int) -> PayoutBatch:
    batch = db.session.scalar(sa.select(PayoutBatch).where(PayoutBatch.id == batch_id).options(
        so.selectinload(PayoutBatch.payouts).joinedload(Payout.seller))) if is_id(batch_id) else None
    if batch is None:
        raise NotFound(_("Not found."))
    return batch


@bp.get("/batches/<int:batch_id>")
@role_required(*DESK)
def batch(batch_id: int):
    return _batch_page(batch_id)


@bp.get("/batches/<int:batch_id>.xlsx")
@role_required(*DESK)
def batch_xlsx(batch_id: int):
    batch = get_scoped_batch(batch_id)
    return Response(settlement_sheets.bank_batch_xlsx(batch), mimetype=settlement_sheets.XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{batch.reference}.xlsx"'})


@bp.post("/payouts/<int:payout_id>/paid")
@role_required(*DESK)
def mark_paid(payout_id: int):
    return _decide(payout_id, "paid")


@bp.post("/payouts/<int:payout_id>/failed")
@role_required(*DESK)
def mark_failed(payout_id: int):
    return _decide(payout_id, "failed")


def _decide(payout_id: int, decision: str):
    payout = get_scoped(db.session, Payout, payout_id, current_user, sees_all=DESK)
    form = PayoutDecisionForm(prefix=f"p{payout.id}")
    if form.validate_on_submit():
        try:
            if decision == "paid":
                payouts.mark_paid(db.session, payout, actor=current_user, reference=form.reference.data)
            else:
                payouts.mark_failed(db.session, payout, actor=current_user, reason=form.reason.data)
            db.session.commit()
            flash(_("Payout %(ref)s recorded as %(status)s.", ref=payout.reference,
                    status=payouts.status_label(payout.status)), "success")
            return redirect(url_for("settlement_bureau.batch", batch_id=payout.batch_id))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _batch_page(payout.batch_id, forms={payout.id: form}, status=422)


def _fapiao_page(forms=None, status=200):
    rows = db.session.scalars(sa.select(FapiaoRequest).order_by(FapiaoRequest.status.desc(), FapiaoRequest.id.desc())
                              .options(so.joinedload(FapiaoRequest.issuer)).limit(300)).all()
    forms = forms or {}
    return render_template("settlement/bureau_fapiao.html", rows=rows,
                           forms={r.id: forms.get(r.id) or FapiaoRecordForm(prefix=f"f{r.id}") for r in rows}), status


@bp.get("/fapiao")
@role_required(*DESK)
def fapiao():
    return _fapiao_page()


@bp.post("/fapiao/<int:request_id>")
@role_required(*DESK)
def record_fapiao(request_id: int):
    row = get_scoped(db.session, FapiaoRequest, request_id, current_user, sees_all=DESK)
    form = FapiaoRecordForm(prefix=f"f{row.id}")
    if form.validate_on_submit():
        try:
            receipts.record_fapiao(db.session, row, actor=current_user, number=form.number.data,
                                   issued_on=form.issued_on.data, pdf=form.pdf.data.read(upload_limit_bytes() + 1))
            db.session.commit()
            flash(_("Fapiao recorded."), "success")
            return redirect(url_for("settlement_bureau.fapiao"))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return _fapiao_page({row.id: form}, status=422)


# --- statements -----------------------------------------------------------------------------------------

@bp.get("/statements")
@role_required(*DESK)
def statements_page():
    """Every cooperative with money entries: its latest statements (closed or not) and a link to each."""
    sellers = statements.sellers_with_entries(db.session)
    organisations = db.session.scalars(sa.select(Organisation).where(Organisation.id.in_(sellers))
                                       .order_by(Organisation.name)).all() if sellers else []
    rows = [(org, statements.statements_of(db.session, org.id)[:6]) for org in organisations]
    return render_template("settlement/bureau_statements.html", rows=rows, form=EmptyForm(),
                           kind=statements.period_kind())


@bp.post("/statements/close")
@role_required(*DESK)
@once
def close_statements():
    """Close the statements whose period has ended (also ``marketplace money close-statements``)."""
    if EmptyForm().validate_on_submit():
        try:
            written = statements.close_all_due(db.session)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
            return redirect(url_for("settlement_bureau.statements_page"))
        if written:
            record_event(db.session, current_user.id, "statements_closed", actor_id=current_user.id,
                         detail=f"{written} ({statements.period_kind()})")
        db.session.commit()
        flash(_("%(n)s statements closed.", n=written), "success")
    return redirect(url_for("settlement_bureau.statements_page"))


@bp.get("/statements/<int:organisation_id>/<starts_on>")
@role_required(*DESK)
def statement(organisation_id: int, starts_on: str):
    org = get_scoped(db.session, Organisation, organisation_id, current_user, sees_all=DESK)
    sheet = statement_or_404(org.id, starts_on)
    return render_template("settlement/statement.html", sheet=sheet, organisation=org,
                           back=url_for("settlement_bureau.statements_page"))


def statement_or_404(organisation_id: int, starts_on: str):
    """The statement starting on the day (``YYYY-MM-DD``; ``YYYY-MM``: the first of the month)."""
    day = statements.parse_start(starts_on)
    sheet = statements.statement_starting(db.session, organisation_id, day) if day else None
    if sheet is None:
        raise NotFound(_("Not found."))
    return sheet
