"""The public benefit ledger page: what each village's forest earned and where the money went."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from marketplace.core.errors import NotFound
from marketplace.core.ids import is_id
from marketplace.extensions import db
from marketplace.registry.service import counties
from marketplace.settlement import public_benefit

bp = Blueprint("settlement_public", __name__)


@bp.get("/villages")
def villages():
    county_id = request.args.get("county", "")
    chosen = int(county_id) if county_id.isdigit() and is_id(int(county_id)) else None
    rows = public_benefit.village_benefits(db.session, county_id=chosen)
    return render_template("settlement/villages.html", groups=public_benefit.by_county(rows),
                           counties=counties(db.session), chosen=chosen)


@bp.get("/villages/<int:village_id>")
def village(village_id: int):
    row, households = public_benefit.village_households(db.session, village_id)
    if row is None:
        raise NotFound(_("Not found."))
    return render_template("settlement/village.html", row=row, households=households)
