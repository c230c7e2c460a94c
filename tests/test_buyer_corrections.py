"""A buyer corrects and repeats: edit an event until an order paid for it, order again after an order
lapsed (the form opens with the same request)."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.footprint.models import Event
from marketplace.orders import history as notes
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from tests.conftest import CsrfClient

EVENT = {"name": "年会", "starts_on": "2026-10-30", "ends_on": "2026-10-31", "location": "丽水",
         "attendees": "100", "organiser": "", "boundary": ""}


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


def _event_with_a_line(client) -> int:
    form = CsrfClient(client)
    event_url = form.post_form("/buyers/events/new", EVENT).headers["Location"]
    form.post_form(event_url, {"line-category": "transport", "line-factor_code": "transport.hsr",
                               "line-quantity": "1000", "line-description": ""}, action=f"{event_url}/lines")
    return int(re.search(r"/events/(\d+)", event_url).group(1))


def test_an_event_is_edited_until_an_order_paid_for_it(app, factory, client, login, factors):
    buyer = factory.user("buyer")
    factory.listing(tonnes="100")
    login(buyer.email)
    event_id = _event_with_a_line(client)
    page = f"/buyers/events/{event_id}"
    form = CsrfClient(client)
    assert f'href="{page}/edit"' in client.get(page).get_data(as_text=True)
    assert 'value="年会"' in client.get(f"{page}/edit").get_data(as_text=True)
    refused = form.post_form(f"{page}/edit", {**EVENT, "ends_on": "2026-10-01"})
    assert refused.status_code == 422
    saved = form.post_form(f"{page}/edit", {**EVENT, "name": "2026 年会", "attendees": "120"})
    assert saved.status_code == 302
    with app.app_context():
        event = db.session.get(Event, event_id)
        assert (event.name, event.attendees) == ("2026 年会", 120)
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("0.5"),
                                   payment_method="bank_transfer", beneficiary="x", retirement_reason="y",
                                   event_id=event_id)
        db.session.commit()
        orders.mark_paid(db.session, order.id, note=notes.bank_transfer("B-1"))
        db.session.commit()
    assert f'href="{page}/edit"' not in client.get(page).get_data(as_text=True)
    assert client.get(f"{page}/edit").status_code == 302
    locked = form.post_form(page, {**EVENT, "name": "改名"}, action=f"{page}/edit")
    assert locked.status_code == 302
    with app.app_context():
        assert db.session.get(Event, event_id).name == "2026 年会"


def test_an_expired_order_offers_to_order_again_with_the_same_request(app, factory, client, login):
    buyer = factory.user("buyer")
    listing = factory.listing(tonnes="100")
    login(buyer.email)
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("12.5"),
                                   payment_method="card", beneficiary="丽水市某某局", retirement_reason="2026 年会碳中和",
                                   listing_id=listing.id)
        db.session.commit()
        order_id = order.id
        assert orders.transition(db.session, order, "expired", note=notes.RESERVATION_EXPIRED)
        db.session.commit()
        assert db.session.get(Order, order_id).status == "expired"
    page = client.get(f"/buyers/orders/{order_id}").get_data(as_text=True)
    link = html.unescape(re.search(r'<a class="button" href="([^"]+)">再次下单</a>', page).group(1))
    assert link.startswith("/buyers/orders/new?")
    form_page = client.get(link).get_data(as_text=True)
    assert 'value="12.5000"' in form_page and 'value="丽水市某某局"' in form_page and "2026 年会碳中和" in form_page
    assert re.search(rf'<option selected value="{listing.id}">|<option value="{listing.id}" selected>', form_page)
    assert re.search(r'value="card"[^>]*checked|checked[^>]*value="card"', form_page)
    with app.app_context():  # opening the form reserved nothing
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
