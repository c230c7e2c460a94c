"""The signed-in user's own account: language, password, two-step sign-in, sessions, API tokens, audit log."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from marketplace.accounts import service as accounts
from marketplace.accounts import two_step
from marketplace.accounts.audit import recent_events
from marketplace.accounts.forms import (
    ChangePasswordForm,
    ConfirmPasswordForm,
    LanguageForm,
    TokenForm,
    TwoStepForm,
)
from marketplace.accounts.models import ApiToken
from marketplace.accounts.views_auth import SESSION_VERSION, clear_session, login_limit
from marketplace.core.db import utcnow
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.extensions import db, limiter

bp = Blueprint("account", __name__, url_prefix="/account")


def _render_profile(token_form=None, new_token=None, status=200):
    tokens = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.created_at.desc())).all()
    return render_template(
        "accounts/profile.html", tokens=tokens, language_form=LanguageForm(lang=current_user.locale),
        token_form=token_form or TokenForm(formdata=None), revoke_form=EmptyForm(), new_token=new_token,
        events=recent_events(db.session, current_user.id), now=utcnow(),
        recovery_left=two_step.unused_recovery_codes(db.session, current_user.id),
        two_step_required=two_step.requires_two_step(current_user, current_app.config["TWO_STEP_REQUIRED_ROLES"]),
    ), status


@bp.get("/")
@login_required
def profile():
    return _render_profile()


@bp.post("/tokens")
@login_required
def create_token():
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_profile(token_form=form, status=422)
    try:
        token = accounts.create_api_token(db.session, current_user.id, form.name.data, scope=form.scope.data,
                                          days=form.days.data, address=request.remote_addr)
    except DomainError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _render_profile(token_form=form, status=422)
    db.session.commit()
    return _render_profile(new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    form = EmptyForm()
    if form.validate_on_submit():
        accounts.revoke_api_token(db.session, current_user.id, token_id, address=request.remote_addr)
        db.session.commit()
        flash(_("The token has been revoked."), "info")
    return redirect(url_for("account.profile"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(login_limit, methods=["POST"])  # a borrowed session must not guess the password or codes
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            version = accounts.change_password(db.session, current_user.id, form.current_password.data,
                                               form.new_password.data, address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            # Every other session has ended; this one carries on at the new version.
            session[SESSION_VERSION] = version
            flash(_("Your password has been changed. Other sessions have been signed out."), "success")
            return redirect(url_for("account.profile"))
    return render_template("accounts/password.html", form=form), (422 if request.method == "POST" else 200)


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    form = EmptyForm()
    if form.validate_on_submit():
        accounts.end_all_sessions(db.session, current_user.id, kind="sign_out_everywhere",
                                  address=request.remote_addr)
        db.session.commit()
        logout_user()
        clear_session()
        flash(_("You have been signed out on every device."), "info")
        return redirect(url_for("auth.login"))
    return redirect(url_for("account.profile"))


@bp.route("/two-step", methods=["GET", "POST"])
@login_required
@limiter.limit(login_limit, methods=["POST"])  # a borrowed session must not guess the password or codes
def two_step_setup():
    """Turn on two-step sign-in: the secret as text and as a QR code, then a code to prove the app has it."""
    if two_step.has_two_step(current_user):
        return redirect(url_for("account.profile"))
    secret_key = current_app.config["SECRET_KEY"]
    form = TwoStepForm()
    if form.validate_on_submit():
        try:
            codes = two_step.confirm_enrolment(db.session, current_user.id, form.code.data, secret_key=secret_key,
                                               address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            return render_template("accounts/recovery_codes.html", codes=codes,
                                   next_url=url_for("account.profile"))
    totp_secret = two_step.pending_secret(current_user, secret_key=secret_key)
    if totp_secret is None:
        totp_secret = two_step.start_enrolment(db.session, current_user.id, secret_key=secret_key)
        db.session.commit()
    uri = two_step.provisioning_uri(current_user, totp_secret)
    return render_template("accounts/enrol.html", form=form, secret=totp_secret, qr=two_step.qr_data_uri(uri),
                           at_sign_in=False), (422 if request.method == "POST" else 200)


def _password_confirmed(form: ConfirmPasswordForm) -> bool:
    if not form.validate_on_submit():
        return False
    if not accounts.check_password(current_user.password_hash, form.password.data):
        flash(_("The current password is wrong."), "error")
        return False
    return True


@bp.post("/two-step/disable")
@login_required
@limiter.limit(login_limit, methods=["POST"])  # a borrowed session must not guess the password or codes
def two_step_disable():
    form = ConfirmPasswordForm()
    if two_step.requires_two_step(current_user, current_app.config["TWO_STEP_REQUIRED_ROLES"]):
        flash(_("Your role must sign in with two steps; it cannot be turned off."), "error")
    elif _password_confirmed(form):
        two_step.disable_two_step(db.session, current_user.id, address=request.remote_addr)
        db.session.commit()
        flash(_("Two-step sign-in is off."), "info")
    return redirect(url_for("account.profile"))


@bp.post("/two-step/recovery-codes")
@login_required
@limiter.limit(login_limit, methods=["POST"])  # a borrowed session must not guess the password or codes
def renew_recovery_codes():
    form = ConfirmPasswordForm()
    if not two_step.has_two_step(current_user) or not _password_confirmed(form):
        return redirect(url_for("account.profile"))
    codes = two_step.renew_recovery_codes(db.session, current_user.id, address=request.remote_addr)
    db.session.commit()
    return render_template("accounts/recovery_codes.html", codes=codes, next_url=url_for("account.profile"))
