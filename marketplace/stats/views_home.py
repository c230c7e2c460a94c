"""Each role's home page: its to-do list first (stats.queues), then what the organisation has."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.accounts.models import Organisation, User
from marketplace.core.access import scoped_select
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.registry import service as registry
from marketplace.registry.models import Project
from marketplace.stats import queues

bp = Blueprint("home", __name__)


@bp.get("/bureau/")
@role_required("bureau")
def bureau():
    counts = dict(db.session.execute(
        sa.select(Organisation.kind, sa.func.count()).group_by(Organisation.kind)).all())
    return render_template("stats/home_bureau.html", counts=counts, queues=queues.bureau_queues(db.session))


@bp.get("/buyers/")
@role_required("buyer")
def buyer():
    colleagues = db.session.scalars(
        scoped_select(User, current_user, bureau_sees_all=False).order_by(User.email)).all()
    return render_template("stats/home_buyer.html", colleagues=colleagues, org=current_user.organisation,
                           queues=queues.buyer_queues(db.session, current_user.organisation_id))


@bp.get("/sellers/")
@role_required("seller")
def seller():
    colleagues = db.session.scalars(
        scoped_select(User, current_user, bureau_sees_all=False).order_by(User.email)).all()
    projects = db.session.scalars(scoped_select(Project, current_user, bureau_sees_all=False)
                                  .order_by(Project.id.desc())).all()
    return render_template("stats/home_seller.html", colleagues=colleagues, org=current_user.organisation,
                           projects=projects, listings=registry.listings_of(db.session, current_user),
                           queues=queues.seller_queues(db.session, current_user.organisation_id))
