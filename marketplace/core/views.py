"""Public pages: home and health check. The registry and certificate verification join later."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, render_template

from marketplace.core.web import public_read
from marketplace.extensions import db

bp = Blueprint("public", __name__)


@bp.get("/")
@public_read()
def home():
    return render_template("core/home.html")


@bp.get("/healthz")
def health():
    """For load balancers and docker-compose: the database answers."""
    db.session.execute(sa.text("SELECT 1"))
    return jsonify(status="ok")
