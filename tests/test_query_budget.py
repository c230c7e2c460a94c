"""The main pages and API answers cost a fixed number of queries, whatever the number of rows they show.

Each page is requested on the demo data and again after more projects, batches, listings, losses,
orders (one of several lines), certificates and activity lines were added: the number of SQL
statements must not move (no N+1), and no request may load a relationship lazily (tests/lazy_loads.py).
"""

from __future__ import annotations

import itertools
import re
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from marketplace.accounts import service as accounts
from marketplace.accounts.credit_code import complete_credit_code
from marketplace.accounts.models import User
from marketplace.certificates import retirement
from marketplace.certificates.models import Certificate
from marketplace.core.quantities import parse_tonnes
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.orders import service as orders
from marketplace.orders.models import Order, OrderLine
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, Project, Region
from tests.factories import MINIMAL_PDF
from tests.lazy_loads import count_queries, forbid_lazy_loads

#: (who is signed in, page); {project}, {order}, {event} and {certificate} are filled in from the data.
PAGES = [
    (None, "/registry/"),
    (None, "/registry/projects/{project}"),
    (None, "/registry/retirements"),
    (None, "/api/v1/listings"),
    (None, "/api/v1/projects"),
    (None, "/api/v1/public/retirements"),
    (None, "/verify/{certificate}"),
    ("bureau", "/bureau/"),
    ("bureau", "/bureau/dashboard"),
    ("bureau", "/bureau/orders"),
    ("bureau", "/bureau/orders/{order}"),
    ("bureau", "/bureau/projects?status=verified"),
    ("bureau", "/bureau/projects/{project}"),
    ("bureau", "/bureau/buffer"),
    ("summit", "/buyers/"),
    ("summit", "/buyers/orders/{order}"),
    ("summit", "/buyers/orders/"),
    ("summit", "/buyers/dashboard"),
    ("summit", "/buyers/events/{event}"),
    ("summit", "/buyers/events/{event}/report"),
    ("guanpuyang", "/sellers/"),
    ("guanpuyang", "/sellers/listings"),
    ("guanpuyang", "/sellers/orders"),
    ("guanpuyang", "/sellers/dashboard"),
    ("guanpuyang", "/sellers/projects/{project}"),
]


def _user(email: str) -> User:
    return db.session.scalar(sa.select(User).where(User.email == email))


#: Activity lines of distinct factors, so that a lazy load per factor would show.
ACTIVITIES = [("transport", "transport.coach"), ("transport", "transport.hsr"), ("transport", "transport.taxi"),
              ("catering", "catering.meal_standard"), ("waste", "waste.landfill")]


def _event(session, buyer: User, name: str, lines: int) -> int:
    event = footprint.create_event(session, buyer, name=name, starts_on=date(2026, 12, 1), ends_on=date(2026, 12, 2),
                                   location="丽水")
    footprint.add_activities(session, buyer, event.id, [
        footprint.ActivityInput(category, code, str(100 + i), f"第 {i} 项")
        for i, (category, code) in enumerate(ACTIVITIES[:lines])])
    session.commit()
    return event.id


def seed(app) -> dict:
    """The demo, and a one-line event of the summit's to show."""
    with app.app_context():
        demo.seed_demo(db.session)
        summit = _user("summit@lishui.example")
        event_id = _event(db.session, summit, "小型座谈会", 1)
        project_id = db.session.scalar(sa.select(Project.id).where(Project.name == "官埔垟村森林经营碳汇项目"))
        return {"event": event_id, "project": project_id, **_order_ids(summit)}


def _order_ids(summit: User) -> dict:
    """The summit's completed order with the most lines, and its certificate."""
    order = db.session.scalar(sa.select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
                              .where(Order.buyer_organisation_id == summit.organisation_id,
                                     Order.status == "completed")
                              .group_by(Order.id).order_by(sa.func.count().desc(), Order.id.desc()))
    certificate = db.session.scalar(sa.select(Certificate.number).where(Certificate.order_id == order))
    return {"order": order, "certificate": certificate}


_numbers = itertools.count(1)


def _organisation(session, kind: str, name: str, email: str) -> User:
    code = complete_credit_code(f"91331100MA{next(_numbers):07d}")
    org = accounts.create_organisation(session, kind=kind, name=name, credit_code=code)
    user = accounts.create_user(session, organisation_id=org.id, email=email, password="correct horse battery")
    session.flush()
    return user


def _village(session, county: Region, name: str) -> Region:
    township = registry.ensure_region(session, level="township", name=f"{name}乡", parent=county)
    return registry.ensure_region(session, level="village", name=name, parent=township)


def _verified_project(session, seller: User, village: Region, name: str, bureau: User, *, reviewers=()) -> Project:
    """Registered, documented, and verified (after a rejection by each of ``reviewers``, then resubmission)."""
    project = registry.create_project(
        session, actor=seller, village_id=village.id, name=name, area_hectares="100", forest_type="杉木林",
        methodology="CCER-14-001-V01", crediting_start=date(2016, 1, 1), crediting_end=date(2045, 12, 31))
    registry.add_document(session, project, actor=seller, kind="verification_statement", filename="a.pdf",
                          data=MINIMAL_PDF)
    for reviewer in reviewers:
        registry.add_document(session, project, actor=seller, kind="monitoring_report", filename="b.pdf",
                              data=MINIMAL_PDF)
        registry.transition_project(session, project, "submitted", actor=seller)
        registry.transition_project(session, project, "rejected", actor=reviewer, note="补充监测报告")
    registry.transition_project(session, project, "submitted", actor=seller)
    registry.transition_project(session, project, "verified", actor=bureau, note="ok")
    return project


def _batch(session, project: Project, bureau: User, year: int, tonnes: str) -> CreditBatch:
    return registry.issue_batch(session, project, actor=bureau, quantity_units=parse_tonnes(tonnes),
                                vintage_start=date(year, 1, 1), vintage_end=date(year, 12, 31),
                                verification_body="中环联合", report_reference=f"R-{project.id}-{year}")


def _complete(session, order: Order, bureau: User) -> None:
    orders.confirm_bank_transfer(session, order, actor=bureau, reference=f"T{order.id}")
    session.commit()
    retirement.retire_order(session, order.id)
    session.commit()
    retirement.generate_certificate(session, order.id)


def grow(app, n: int = 3) -> dict:
    """More of everything, each row pointing at rows of its own (so that a lazy load per row would show):
    a project of Guanpuyang's in a new village, rejected by other reviewers before it was verified, with n
    batches and listings, each sold to a new buyer; n new cooperatives, each with a verified project in a
    new village, a batch with a buffer loss and a listing; an order of the summit's spread over those n
    listings (n lines), completed, and one awaiting its bank transfer; an event of the summit's with n + 1
    lines of distinct factors."""
    with app.app_context():
        s = db.session
        bureau, summit = _user("bureau@lishui.example"), _user("summit@lishui.example")
        guanpuyang = _user("guanpuyang@lishui.example")
        county = s.scalar(sa.select(Region).where(Region.level == "county").order_by(Region.id))
        reviewers = [accounts.create_user(s, organisation_id=bureau.organisation_id, email=f"reviewer{i}@example.cn",
                                          password="correct horse battery") for i in range(2)]
        project = _verified_project(s, guanpuyang, _village(s, county, "测试村"), "测试村第二期碳汇项目", bureau,
                                    reviewers=reviewers)
        for i in range(n):
            listing = registry.create_listing(s, _batch(s, project, bureau, 2030 + i, "50"), actor=guanpuyang,
                                              units=parse_tonnes("20"), price_cny_per_tonne=Decimal("40.00"),
                                              min_order_units=1)
            buyer = _organisation(s, "buyer", f"测试买方{i}", f"buyer{i}@example.cn")
            s.commit()
            sale = orders.place_order(s, actor=buyer, units=parse_tonnes("5"), payment_method="bank_transfer",
                                      beneficiary=f"测试买方{i}", retirement_reason="自愿抵消", listing_id=listing.id)
            s.commit()
            _complete(s, sale, bureau)
        for i in range(n):
            seller = _organisation(s, "seller", f"测试村{i}股份经济合作社", f"seller{i}@example.cn")
            other = _verified_project(s, seller, _village(s, county, f"新村{i}"), f"新村{i}碳汇项目", bureau)
            batch = _batch(s, other, bureau, 2023, "100")
            registry.report_loss(s, batch, actor=bureau, kind="fire", units=parse_tonnes("1"), reason="山火")
            registry.create_listing(s, batch, actor=seller, units=parse_tonnes("10"),
                                    price_cny_per_tonne=Decimal(f"{10 + i}.00"), min_order_units=1)
            s.commit()
        # Allocated cheapest first: the new cooperatives' listings, one line each.
        spread = orders.place_order(s, actor=summit, units=parse_tonnes("10") * (n - 1) + parse_tonnes("5"),
                                    payment_method="bank_transfer", beneficiary="峰会组委会", retirement_reason="零碳会议")
        s.commit()
        assert len(spread.lines) == n
        _complete(s, spread, bureau)
        orders.place_order(s, actor=summit, units=parse_tonnes("1"), payment_method="bank_transfer",
                           beneficiary="待付款", retirement_reason="零碳会议")
        s.commit()
        return {"event": _event(s, summit, "大型论坛", n + 1), "project": project.id,
                **_order_ids(_user("summit@lishui.example"))}


def _login(client, email: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"email": email, "password": demo.DEMO_PASSWORD, "csrf_token": token})
    assert response.status_code == 302


def measure(app, ids: dict) -> dict[str, int]:
    """Queries per page (the second request of each, so one-time work does not count)."""
    emails = {"bureau": "bureau@lishui.example", "summit": "summit@lishui.example",
              "guanpuyang": "guanpuyang@lishui.example"}
    with app.app_context():
        engine = db.engine
    clients, counts = {}, {}
    with forbid_lazy_loads() as refused:
        for who, page in PAGES:
            if who not in clients:
                clients[who] = app.test_client()
                if who:
                    _login(clients[who], emails[who])
            path = page.format(**ids)
            assert clients[who].get(path).status_code == 200, (path, refused)
            with count_queries(engine) as statements:
                assert clients[who].get(path).status_code == 200, (path, refused)
            counts[page] = len(statements)
    assert not refused
    return counts


def test_pages_and_answers_cost_the_same_queries_with_more_rows(app):
    few = measure(app, seed(app))
    ids = grow(app)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditBatch)) == 4 + 2 * 3
    many = measure(app, ids)
    grown = {page: (few[page], many[page]) for page in few if many[page] != few[page]}
    assert not grown, f"queries that grow with the rows (demo → more rows): {grown}"
