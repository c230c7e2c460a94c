"""Sign in (password, then the second step), sign out, reset a forgotten password, choose a language.

Sessions are Flask's signed cookies, so ending one needs a fact on the server: each session carries the
user's ``session_version`` from when it signed in, and the user loader refuses it once the version has moved
on (sign-out, a password change or reset, disabling, "sign out everywhere"). It also refuses a session idle
longer than SESSION_IDLE_MINUTES or signed in longer ago than PERMANENT_SESSION_LIFETIME. Sessions are not
"permanent" (a browser-session cookie), which also keeps Flask-Login's strong protection strong: a cookie
presented from another address or browser ends the session."""

from __future__ import annotations

import logging
import smtplib
import time
from email.message import EmailMessage
from urllib.parse import urlsplit

import sqlalchemy.orm as so
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from marketplace.accounts import service as accounts
from marketplace.accounts import two_step
from marketplace.accounts.forms import (
    ForgotPasswordForm,
    LanguageForm,
    LoginForm,
    ResetPasswordForm,
    TwoStepForm,
)
from marketplace.accounts.models import User
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.http_errors import KEPT_FORM_KEY
from marketplace.core.mail import send
from marketplace.core.navigation import home_for
from marketplace.extensions import db, limiter, login_manager

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

#: Session keys: the user's session version, when they signed in, when the session was last used.
SESSION_VERSION, SIGNED_IN_AT, LAST_SEEN = "_tanhui_sv", "_tanhui_signed_in_at", "_tanhui_seen"
#: Between the password and the second step: who, at which version, since when, and where to go next.
PENDING = "_tanhui_pending"
#: The second step must follow the password within this many seconds (longer when the user must first set up
#: an authenticator app).
PENDING_SECONDS = 300
ENROLMENT_SECONDS = 900
#: LAST_SEEN is rewritten at most this often (each rewrite is a new cookie).
SEEN_RESOLUTION_SECONDS = 30


def clear_session() -> None:
    """Empty the session, keeping only the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _session_is_current(user: User) -> bool:
    now = time.time()
    signed_in_at, seen = session.get(SIGNED_IN_AT), session.get(LAST_SEEN)
    if session.get(SESSION_VERSION) != user.session_version or signed_in_at is None or seen is None:
        return False
    if now - signed_in_at > current_app.permanent_session_lifetime.total_seconds():
        return False
    if now - seen > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return False
    if now - seen > SEEN_RESOLUTION_SECONDS:
        session[LAST_SEEN] = now
    return True


def _load_user(user_id: str):
    try:
        # Every page reads the user's role (the organisation's kind) and organisation name.
        user = db.session.get(User, int(user_id), options=[so.joinedload(User.organisation)])
    except (TypeError, ValueError):
        user = None
    if user is None or not user.active or not _session_is_current(user):
        clear_session()
        return None
    return user


def init_login(app: Flask) -> None:
    """Flask-Login: where to sign in, and how a session's user id becomes the user."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)
    app.before_request(_anonymous_without_a_user)


#: What a visitor's session may carry and still be nobody's: the language chosen with ?lang=.
ANONYMOUS_SESSION_KEYS = frozenset({"lang"})


def _anonymous_without_a_user() -> None:
    """A visitor whose session holds nothing but a language choice, with no remember-me cookie, is anonymous
    without asking Flask-Login: its "strong" session protection would otherwise take such a session for a
    stolen one on every request (no identifier in it) and clear a remember-me cookie nobody has, a cookie set
    on every page, so the language's pages could never be public answers."""
    if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
        return
    if current_app.config.get("SESSION_COOKIE_NAME", "session") in request.cookies and (
            set(session) - ANONYMOUS_SESSION_KEYS):
        return
    g._login_user = login_manager.anonymous_user()


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths, so ?next= cannot send people elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _account_limit() -> str:
    return current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]


def _account_key() -> str:
    """The per-account bucket of the password step: the e-mail typed, whatever the address."""
    return "email:" + (request.form.get("email") or "").strip().lower()[:254]


def _pending_account_key() -> str:
    """The per-account bucket of the second step: the account waiting for its code."""
    return f"user:{(session.get(PENDING) or {}).get('id')}"


def _refused(response) -> bool:
    """Only refused attempts count against an account, so nobody locks a person out by succeeding."""
    return response.status_code == 422


def start_session(user: User, version: int | None = None) -> None:
    """Sign the user in on this browser: a new session (no fixation) carrying their session version."""
    clear_session()
    login_user(user)
    now = time.time()
    session[SESSION_VERSION] = user.session_version if version is None else version
    session[SIGNED_IN_AT] = now
    session[LAST_SEEN] = now


def _welcome(user: User, next_url: str | None, kept_form: str | None = None):
    flash(_("Welcome, %(name)s.", name=user.display_name or user.email), "success")
    target = _safe_next(next_url)
    if target and target == kept_form:  # back to a form refused when the session had ended
        flash(_("What you typed before is filled in again: check it and send the form once more."), "kept")
    return redirect(target or home_for(user))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(_account_limit, methods=["POST"], key_func=_account_key, deduct_when=_refused,
               scope="login-account")
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        kept_form = session.get(KEPT_FORM_KEY)  # a form refused when the session had ended (http_errors)
        try:
            user = accounts.authenticate(db.session, form.email.data, form.password.data,
                                         address=request.remote_addr)
        except accounts.PasswordResetRequired as exc:
            db.session.commit()  # the refusal's audit line
            form_error(form, exc)
            return render_template("accounts/login.html", form=form), 422
        if user is None:
            db.session.commit()  # the failure's audit line
            form.password.errors.append(_("E-mail or password is wrong."))
        elif two_step.has_two_step(user) or two_step.requires_two_step(
                user, current_app.config["TWO_STEP_REQUIRED_ROLES"]):
            db.session.commit()
            clear_session()
            session[PENDING] = {"id": user.id, "sv": user.session_version, "at": time.time(),
                                "next": _safe_next(request.args.get("next")), "kept": kept_form}
            return redirect(url_for("auth.second_step"))
        else:
            accounts.complete_sign_in(db.session, user, address=request.remote_addr)
            db.session.commit()
            start_session(user)
            return _welcome(user, request.args.get("next"), kept_form)
    # A refused sign-in is 422, so scripts and tests can tell it from the empty form.
    return render_template("accounts/login.html", form=form), (422 if request.method == "POST" else 200)


def _pending_user() -> User | None:
    pending = session.get(PENDING) or {}
    if not pending.get("id"):
        return None
    age = time.time() - pending.get("at", 0)
    user = db.session.get(User, int(pending["id"]), options=[so.joinedload(User.organisation)])
    if user is None or not user.active or user.session_version != pending.get("sv"):
        return None
    if age > (PENDING_SECONDS if two_step.has_two_step(user) else ENROLMENT_SECONDS):
        return None
    return user


@bp.route("/login/second-step", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(_account_limit, methods=["POST"], key_func=_pending_account_key, deduct_when=_refused,
               scope="second-step-account")
def second_step():
    """The code from the authenticator app (or a recovery code); enrolment first for a user who must have one."""
    user = _pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash(_("Please sign in again."), "info")
        return redirect(url_for("auth.login"))
    secret_key = current_app.config["SECRET_KEY"]
    form = TwoStepForm()
    next_url, kept_form = session[PENDING].get("next"), session[PENDING].get("kept")
    if not two_step.has_two_step(user):
        return _enrol_at_sign_in(user, form, next_url)
    if form.validate_on_submit():
        how = two_step.verify_second_step(db.session, user.id, form.code.data, secret_key=secret_key,
                                          address=request.remote_addr)
        if how is None:
            db.session.commit()
            form.code.errors.append(_("This code is not right."))
        else:
            accounts.complete_sign_in(db.session, user, address=request.remote_addr, detail=how)
            db.session.commit()
            start_session(user)
            if how == "recovery":
                left = two_step.unused_recovery_codes(db.session, user.id)
                flash(_("You signed in with a recovery code; %(n)d are left.", n=left), "info")
            return _welcome(user, next_url, kept_form)
    return render_template("accounts/second_step.html", form=form), (422 if request.method == "POST" else 200)


def _enrol_at_sign_in(user: User, form: TwoStepForm, next_url: str | None):
    secret_key = current_app.config["SECRET_KEY"]
    if form.validate_on_submit():
        try:
            codes = two_step.confirm_enrolment(db.session, user.id, form.code.data, secret_key=secret_key,
                                               address=request.remote_addr)
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            accounts.complete_sign_in(db.session, user, address=request.remote_addr, detail="enrolled")
            db.session.commit()
            start_session(user)
            return render_template("accounts/recovery_codes.html", codes=codes,
                                   next_url=_safe_next(next_url) or home_for(user))
    totp_secret = two_step.pending_secret(user, secret_key=secret_key)
    if totp_secret is None:
        totp_secret = two_step.start_enrolment(db.session, user.id, secret_key=secret_key)
        db.session.commit()
    uri = two_step.provisioning_uri(user, totp_secret)
    return render_template("accounts/enrol.html", form=form, secret=totp_secret, qr=two_step.qr_data_uri(uri),
                           at_sign_in=True), (422 if request.method == "POST" else 200)


@bp.post("/logout")
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            # Signing out ends every session of the user: a copy of this cookie is worthless from now on.
            accounts.end_all_sessions(db.session, current_user.id, kind="sign_out", address=request.remote_addr)
            db.session.commit()
        logout_user()
        clear_session()
        flash(_("You have signed out."), "info")
    return redirect(url_for("public.home"))


def mail_reset_link(user: User, token: str) -> bool:
    """E-mail the reset link (after the commit that stored it). False, logged, when the mail server refused:
    the link stays valid and a new request sends another, so the page answers instead of failing."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with force_locale(user.locale):
        message = EmailMessage()
        message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
        message["To"] = user.email
        message["Subject"] = _("Reset your Tanhui password")
        message.set_content(render_template(
            "accounts/email_reset.txt", user=user, minutes=current_app.config["PASSWORD_RESET_MINUTES"],
            url=base + url_for("auth.reset_password", token=token, _external=False)))
    try:
        send(message)
    except (OSError, smtplib.SMTPException):
        log.exception("the password-reset e-mail to user %s could not be sent", user.id)
        return False
    return True


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        made = accounts.request_password_reset(db.session, form.email.data,
                                               minutes=current_app.config["PASSWORD_RESET_MINUTES"],
                                               address=request.remote_addr)
        db.session.commit()
        if made is not None:
            mail_reset_link(*made)
        # The same answer whether or not the account exists.
        flash(_("If an account with this e-mail exists, a link to choose a new password is on its way."), "info")
        return redirect(url_for("auth.login"))
    return render_template("accounts/forgot.html", form=form), (422 if request.method == "POST" else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def reset_password(token: str):
    if not accounts.reset_link_is_valid(db.session, token):
        raise NotFound(_("This reset link has expired or has already been used. Ask for a new one."))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(db.session, token, form.new_password.data, address=request.remote_addr)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            logout_user()
            clear_session()
            flash(_("Your password has been changed. Sign in with it now."), "success")
            return redirect(url_for("auth.login"))
    return render_template("accounts/reset.html", form=form), (422 if request.method == "POST" else 200)


@bp.post("/language")
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            accounts.set_locale(db.session, current_user.id, form.lang.data)
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")) or url_for("public.home"))
