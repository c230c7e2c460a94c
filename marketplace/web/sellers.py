"""Village cooperatives: projects, batches, listings and sales join here."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.extensions import db
from marketplace.models import User
from marketplace.services.access import scoped_select
from marketplace.web import role_required

bp = Blueprint("sellers", __name__, url_prefix="/sellers")


@bp.get("/")
@role_required("seller")
def home():
    colleagues = db.session.scalars(
        scoped_select(User, current_user, bureau_sees_all=False).order_by(User.email)).all()
    return render_template("sellers/home.html", colleagues=colleagues, org=current_user.organisation)
