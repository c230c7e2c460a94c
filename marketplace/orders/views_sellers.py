"""Village cooperatives: sales, the order lines bought from their listings."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import CreditBatch, Listing

bp = Blueprint("orders_sellers", __name__, url_prefix="/sellers")


@bp.get("/orders")
@role_required("seller")
def orders():
    """Order lines on this cooperative's listings (the buyer's name, quantity, amount, status)."""
    rows = db.session.execute(
        sa.select(OrderLine, Order).join(Order, Order.id == OrderLine.order_id)
        .join(Listing, Listing.id == OrderLine.listing_id)
        .where(Listing.owned_by(current_user.organisation_id))
        .options(so.contains_eager(OrderLine.listing).joinedload(Listing.batch).joinedload(CreditBatch.project),
                 so.joinedload(Order.buyer))
        .order_by(Order.id.desc()).limit(500)).all()
    return render_template("orders/seller_orders.html", rows=rows)
