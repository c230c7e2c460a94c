"""The order form's confirmation sent twice (a double click, a reload of the POST) places one order,
and both answers lead the buyer to the same next step: the pay page for a card order."""

from __future__ import annotations

import re

import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.models import Order


def test_a_repeated_confirmation_places_one_order_and_both_lead_to_the_pay_page(app, factory, login, browser_like):
    buyer = factory.user("buyer")
    listing = factory.listing(tonnes="50", price="30.00")
    client = login(buyer.email)
    form = {"quantity": "2", "listing_id": str(listing.id), "prefer_county_id": "", "event_id": "",
            "payment_method": "card", "beneficiary": "甲公司", "retirement_reason": "测试"}
    review = browser_like.post_form("/buyers/orders/new", {**form, "confirm": "0"})
    assert review.status_code == 200
    html = review.get_data(as_text=True)
    token = re.search(r'name="request_token" type="hidden" value="([0-9a-f]+)"', html).group(1)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    confirm = {**form, "confirm": "1", "request_token": token, "csrf_token": csrf}
    first = client.post("/buyers/orders/new", data=confirm)
    second = client.post("/buyers/orders/new", data=confirm)
    with app.app_context():
        [order_id] = db.session.scalars(sa.select(Order.id)).all()
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == f"/buyers/orders/{order_id}/pay"
