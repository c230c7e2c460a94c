"""Buyer organisations: events, orders and certificates join here."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.extensions import db
from marketplace.models import User
from marketplace.services.access import scoped_select
from marketplace.web import role_required

bp = Blueprint("buyers", __name__, url_prefix="/buyers")


@bp.get("/")
@role_required("buyer")
def home():
    colleagues = db.session.scalars(
        scoped_select(User, current_user, bureau_sees_all=False).order_by(User.email)).all()
    return render_template("buyers/home.html", colleagues=colleagues, org=current_user.organisation)


# Event footprint pages (routes on this blueprint, kept in their own module).
from marketplace.web import buyer_events  # noqa: E402,F401
