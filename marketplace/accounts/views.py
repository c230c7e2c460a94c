"""The signed-in user's own settings: language and API tokens."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.accounts import service as accounts
from marketplace.accounts.forms import LanguageForm, TokenForm
from marketplace.accounts.models import ApiToken
from marketplace.core.db import utcnow
from marketplace.core.errors import NotFound
from marketplace.core.forms import EmptyForm
from marketplace.extensions import db

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/")
@login_required
def profile():
    tokens = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.created_at.desc())).all()
    language = LanguageForm(lang=current_user.locale)
    return render_template("accounts/profile.html", tokens=tokens, language_form=language,
                           token_form=TokenForm(), revoke_form=EmptyForm(), new_token=None)


@bp.post("/tokens")
@login_required
def create_token():
    form = TokenForm()
    if not form.validate_on_submit():
        flash(_("Give the token a name."), "error")
        return redirect(url_for("account.profile"))
    token = accounts.create_api_token(db.session, current_user.id, form.name.data)
    db.session.commit()
    tokens = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.created_at.desc())).all()
    return render_template("accounts/profile.html", tokens=tokens, language_form=LanguageForm(lang=current_user.locale),
                           token_form=TokenForm(formdata=None), revoke_form=EmptyForm(), new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    form = EmptyForm()
    if form.validate_on_submit():
        # Tokens belong to one person, not to the organisation: only their owner may revoke them.
        token = db.session.get(ApiToken, token_id)
        if token is None or token.user_id != current_user.id:
            raise NotFound(_("Not found."))
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            db.session.commit()
        flash(_("The token has been revoked."), "info")
    return redirect(url_for("account.profile"))
