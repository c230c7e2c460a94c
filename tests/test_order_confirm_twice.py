"""The order form's confirmation sent twice (a double click, a reload of the POST) places one order,
and both answers lead the buyer to the same next step: the pay page for a card order."""

from __future__ import annotations

import re

import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.orders.models import Order


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


def test_the_order_form_says_which_events_already_have_an_order(app, factory, login):
    from datetime import date

    from marketplace.accounts.models import User
    from marketplace.footprint import service as footprint
    from marketplace.footprint.emission_factors import load_default_factors
    from marketplace.orders import service as orders

    buyer = factory.user("buyer")
    factory.listing(tonnes="50", price="30.00")
    with app.app_context():
        load_default_factors(db.session)
        actor = db.session.get(User, buyer.id)
        made = {}
        for name in ("已付款的论坛", "未下单的论坛"):
            made[name] = footprint.create_event_with_activities(
                db.session, actor, name=name, starts_on=date(2026, 11, 1), ends_on=date(2026, 11, 3), location="丽水",
                activities=[footprint.ActivityInput("venue", "venue.grid_east_2023", "1000", "会场用电")]).id
        orders.place_order(db.session, actor=actor, units=footprint.event_total_units(db.session, made["已付款的论坛"]),
                           payment_method="bank_transfer", beneficiary="甲", retirement_reason="测试",
                           event_id=made["已付款的论坛"])
        db.session.commit()
    html = login(buyer.email).get("/buyers/orders/new").get_data(as_text=True)
    select = html[html.index('name="event_id"'):]
    labels = dict(re.findall(r'<option value="(\d+)">([^<]+)</option>', select[:select.index("</select>")]))
    assert labels[str(made["已付款的论坛"])].endswith("· 有订单待付款")
    assert labels[str(made["未下单的论坛"])].endswith(" t")
