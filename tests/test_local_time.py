"""Times a person reads are the platform's (Beijing) time, whatever zone the server runs in."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderTransition


def test_the_order_page_shows_reservation_and_history_in_beijing_time(app, factory, login):
    buyer = factory.user("buyer")
    listing = factory.listing(tonnes="100")
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("2"),
                                   payment_method="bank_transfer", beneficiary="测试受益方",
                                   retirement_reason="测试", listing_id=listing.id)
        db.session.execute(sa.update(Order).where(Order.id == order.id)
                           .values(reserved_until=datetime(2026, 12, 1, 9, 51, tzinfo=UTC)))
        db.session.execute(sa.update(OrderTransition).where(OrderTransition.order_id == order.id)
                           .values(created_at=datetime(2026, 12, 1, 9, 39, 17, tzinfo=UTC)))
        db.session.commit()
        order_id = order.id
    html = login(buyer.email).get(f"/buyers/orders/{order_id}").get_data(as_text=True)
    assert "2026-12-01 17:51" in html and "09:51" not in html
    assert "2026-12-01 17:39:17" in html and "09:39:17" not in html
