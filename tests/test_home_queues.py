"""Each role's home is its to-do list: the bureau's reviews, transfers, refunds, dead letters and expiring
reservations; a cooperative's drafts, missing documents, low listings and sales; a buyer's events without
an order, orders to pay (with their deadline) and new certificates. The bureau's menu is grouped."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.db import utcnow
from marketplace.core.outbox_models import DeadLetter
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.orders import history as notes
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry import service as registry
from marketplace.registry.models import Project
from tests.factories import MINIMAL_PDF
from tests.test_certificates import issue


def _section(page: str, section_id: str) -> str:
    start = page.index(f'id="{section_id}"')
    return page[start:page.index("</section>", start)]


def _order(app, buyer, listing, tonnes, method):
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method=method, beneficiary="受益方", retirement_reason="原因",
                                   listing_id=listing.id)
        db.session.commit()
        return order.id


def test_the_bureau_home_lists_what_waits_for_it(app, factory, client, login):
    bureau = factory.user("bureau")
    seller = factory.user("seller")
    waiting = factory.project(seller, verified=False)
    with app.app_context():
        project = db.session.get(Project, waiting.id)
        actor = db.session.get(User, seller.id)
        registry.add_document(db.session, project, actor=actor, kind="other", filename="a.pdf", data=MINIMAL_PDF)
        registry.transition_project(db.session, project, "submitted", actor=actor)
        db.session.add(DeadLetter(task_name="tanhui.retire_order", kwargs={"order_id": 9}, error="boom", attempts=5))
        db.session.commit()
    listing = factory.listing(tonnes="100")
    buyer = factory.user("buyer")
    transfer = _order(app, buyer, listing, "2", "bank_transfer")
    card = _order(app, buyer, listing, "1", "card")  # held 15 minutes: about to expire
    refund = _order(app, buyer, listing, "1", "bank_transfer")
    with app.app_context():
        orders.mark_paid(db.session, refund, note=notes.bank_transfer("B-9"))
        db.session.commit()
        orders.cancel(db.session, db.session.get(Order, refund), actor=db.session.get(User, buyer.id))
        db.session.commit()
        assert db.session.get(Order, refund).refund_status == "pending"

    login(bureau.email)
    page = client.get("/bureau/").get_data(as_text=True)
    assert waiting.name in _section(page, "projects-to-review")
    assert f"/bureau/orders/{transfer}" in _section(page, "transfers-to-confirm")
    assert f"/bureau/orders/{refund}" in _section(page, "refunds-to-make")
    expiring = _section(page, "reservations-expiring")
    assert f"/bureau/orders/{card}" in expiring and f"/bureau/orders/{transfer}" not in expiring  # 5 days away
    assert "tanhui.retire_order" in _section(page, "dead-letters")
    with app.app_context():  # further out than 24 hours: not "about to expire"
        db.session.execute(sa.update(Order).where(Order.id == card).values(reserved_until=utcnow() + timedelta(days=2)))
        db.session.commit()
    assert f"/bureau/orders/{card}" not in _section(client.get("/bureau/").get_data(as_text=True),
                                                    "reservations-expiring")


def test_the_bureaus_menu_is_grouped_so_it_fits_one_line(app, factory, client, login):
    login(factory.user("bureau").email)
    page = client.get("/bureau/").get_data(as_text=True)
    nav = page[page.index('<nav id="main-nav"'):page.index("</nav>")]
    top = re.findall(r"^          <li[ >]", nav, flags=re.M)
    assert len(top) <= 6, nav  # was twelve entries in a row
    assert nav.count("<details") == 3 and "<summary>登记簿</summary>" in nav and "<summary>公开信息</summary>" in nav
    for endpoint in ("/bureau/projects", "/bureau/buffer", "/bureau/ledger", "/bureau/orders",
                     "/bureau/emission-factors", "/bureau/organisations", "/registry/", "/verify"):
        assert f'href="{endpoint}' in nav, endpoint
    ledger = client.get("/bureau/ledger").get_data(as_text=True)
    assert '<details class="current">' in ledger  # the group holding the current page is marked


def test_a_cooperatives_home_lists_drafts_missing_documents_low_listings_and_sales(app, factory, client, login):
    batch = factory.batch(tonnes="100")
    seller = batch.project.seller
    low = factory.listing(batch, tonnes="5")
    with app.app_context():
        registry.create_project(
            db.session, actor=db.session.get(User, seller.id), village_id=factory.village().id, name="草稿项目",
            area_hectares="10", forest_type="杉木林", methodology="CCER-14-001-V01",
            crediting_start=date(2020, 1, 1), crediting_end=date(2030, 1, 1))
        db.session.commit()
    buyer = factory.user("buyer")
    sold = _order(app, buyer, low, "1", "bank_transfer")
    with app.app_context():
        orders.mark_paid(db.session, sold, note=notes.bank_transfer("B-1"))
        db.session.commit()
    login(seller.email)
    page = client.get("/sellers/").get_data(as_text=True)
    assert "草稿项目" in _section(page, "drafts") and "草稿项目" in _section(page, "documents-missing")
    assert "剩余 4 吨" in _section(page, "listings-low") or "剩余 4.0000 吨" in _section(page, "listings-low")
    assert buyer.organisation.name in _section(page, "recent-sales")


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


def test_a_buyers_home_lists_events_without_an_order_payments_due_and_new_certificates(app, factory, client, login,
                                                                                      factors):
    buyer = factory.user("buyer")
    listing = factory.listing(tonnes="100")
    with app.app_context():
        actor = db.session.get(User, buyer.id)
        lonely = footprint.create_event(db.session, actor, name="未下单的活动", starts_on="2026-10-01",
                                        ends_on="2026-10-01", location="丽水")
        ordered = footprint.create_event(db.session, actor, name="已下单的活动", starts_on="2026-10-02",
                                         ends_on="2026-10-02", location="丽水")
        footprint.add_activity(db.session, actor, ordered.id, footprint.ActivityInput(
            "transport", "transport.hsr", "1000", ""))
        db.session.commit()
        lonely_id, ordered_id = lonely.id, ordered.id
        order = orders.place_order(db.session, actor=actor, units=parse_tonnes("0.5"), payment_method="card",
                                   beneficiary="x", retirement_reason="y", listing_id=listing.id, event_id=ordered_id)
        db.session.commit()
        order_id, deadline = order.id, order.reserved_until
    certificate = issue(app, buyer.organisation, order_id=order_id, pdf=False)
    login(buyer.email)
    page = client.get("/buyers/").get_data(as_text=True)
    events = _section(page, "events-without-order")
    assert "未下单的活动" in events and "已下单的活动" not in events and f"/buyers/events/{lonely_id}" in events
    due = _section(page, "awaiting-payment")
    from marketplace.core.i18n import local_time

    with app.app_context():
        assert f"/buyers/orders/{order_id}" in due and f"请在 {local_time(deadline)} 前付款" in due
    assert certificate.number in _section(page, "new-certificates")


def test_a_long_queue_shows_ten_and_says_how_many_more(app, factory, client, login):
    listing = factory.listing(tonnes="100")
    buyer = factory.user("buyer")
    for _ in range(12):
        _order(app, buyer, listing, "1", "bank_transfer")
    login(factory.user("bureau").email)
    section = _section(client.get("/bureau/").get_data(as_text=True), "transfers-to-confirm")
    assert section.count("/bureau/orders/") == 10  # ten rows, then the link to the whole list
    assert '<span class="count">12</span>' in section and "另有 2 项" in section
