"""Sign in, sign out, choose a language."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy.orm as so
from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from marketplace.accounts import service as accounts
from marketplace.accounts.forms import LanguageForm, LoginForm
from marketplace.accounts.models import User
from marketplace.core.forms import EmptyForm
from marketplace.core.http_errors import KEPT_FORM_KEY
from marketplace.core.navigation import home_for
from marketplace.extensions import db, limiter, login_manager

bp = Blueprint("auth", __name__)


def _load_user(user_id: str):
    try:
        # Every page reads the user's role (the organisation's kind) and organisation name.
        return db.session.get(User, int(user_id), options=[so.joinedload(User.organisation)])
    except (TypeError, ValueError):
        return None


def init_login(app: Flask) -> None:
    """Flask-Login: where to sign in, and how a session's user id becomes the user."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths, so ?next= cannot send people elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            form.password.errors.append(_("E-mail or password is wrong."))
        else:
            db.session.commit()
            kept_form = session.get(KEPT_FORM_KEY)
            session.clear()
            login_user(user)
            session.permanent = True
            flash(_("Welcome, %(name)s.", name=user.display_name or user.email), "success")
            target = _safe_next(request.args.get("next"))
            if target and target == kept_form:  # back to a form refused when the session had ended
                flash(_("What you typed before is filled in again: check it and send the form once more."), "kept")
            return redirect(target or home_for(user))
    # A refused sign-in is 422, so scripts and tests can tell it from the empty form.
    return render_template("accounts/login.html", form=form), (422 if request.method == "POST" else 200)


@bp.post("/logout")
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        lang = session.get("lang")
        logout_user()
        session.clear()
        if lang:
            session["lang"] = lang
        flash(_("You have signed out."), "info")
    return redirect(url_for("public.home"))


@bp.post("/language")
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            accounts.set_locale(db.session, current_user.id, form.lang.data)
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")) or url_for("public.home"))
