"""The fast path in front of the application (marketplace/core/public_fast.py): a cached public answer for an
anonymous visitor is the application's own answer, header for header; a change shows at once through it;
a signed-in visitor, a query string, another cookie or a cache that does not answer never get it.

Which path answered is read from the layer's counters, not from the answer: the answers must be the same.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.certificates.service import revoke_certificate
from marketplace.core import public_cache
from marketplace.core.db import utcnow
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from tests.test_certificates import _orders, issue, signing_key_file  # noqa: F401 — fixtures

PATHS = ["/", "/registry/", "/api/v1/listings", "/api/v1/public/retirements"]


class Client:
    """A test client whose answers say which path gave them: "hit" (the fast path), "stored" (the application,
    its answer kept for the fast path) or None (the application alone)."""

    def __init__(self, app, client=None):
        self.layer, self.client = app.wsgi_app, client or app.test_client()

    def get(self, *args, **kwargs):
        before = dict(self.layer.counts)
        response = self.client.get(*args, **kwargs)
        changed = [name for name, count in self.layer.counts.items() if count != before[name]]
        response.fast = changed[0] if changed else None
        return response


@pytest.fixture
def fast(app, client):
    return Client(app, client)


def _path(response) -> str | None:
    return response.fast


def _answer(response) -> tuple:
    return response.status, sorted(response.headers.items()), response.get_data()


@pytest.mark.parametrize("path", PATHS)
def test_the_fast_answer_is_the_applications_own(app, make_app, factory, path):
    factory.listing(tonnes="500", price="30.00")
    with app.app_context():  # "/" shows no data, so its answer from an earlier test is still good: start afresh
        public_cache.cache.clear()
    client = Client(app)
    first = client.get(path)
    assert first.status_code == 200 and _path(first) == "stored"
    fast = client.get(path)
    assert _path(fast) == "hit"
    assert _answer(fast) == _answer(first)
    # the same application with the fast path off, on the same database: the same answer, header for header
    normal = Client(make_app(PUBLIC_FAST_PATH=False)).get(path)
    assert _path(normal) is None and _answer(normal) == _answer(fast)
    assert fast.headers["Content-Security-Policy"] and fast.headers["X-Content-Type-Options"] == "nosniff"
    assert fast.headers["Cache-Control"] == "public, no-cache"
    # the conditional GET: the application's 304 first, then the same 304 from the fast path
    etag = fast.headers["ETag"]
    not_modified = client.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and _path(not_modified) == "stored"
    again = client.get(path, headers={"If-None-Match": etag})
    assert _path(again) == "hit" and _answer(again) == _answer(not_modified)
    assert _answer(Client(make_app(PUBLIC_FAST_PATH=False)).get(path, headers={"If-None-Match": etag})) \
        == _answer(again)


def test_a_language_chosen_in_the_session_gets_its_own_public_answer(app, factory):
    factory.listing()
    client = Client(app)
    chosen = client.get("/registry/?lang=en")  # sets the session's language: this answer is the visitor's own
    assert "Set-Cookie" in chosen.headers and _path(chosen) is None
    english = client.get("/registry/")
    assert english.headers["Cache-Control"] == "public, no-cache" and "Set-Cookie" not in english.headers
    assert 'lang="en"' in english.get_data(as_text=True)
    fast = client.get("/registry/")
    assert _path(fast) == "hit" and _answer(fast) == _answer(english)
    chinese = Client(app).get("/registry/")
    assert chinese.headers["ETag"] != english.headers["ETag"] and 'lang="zh' in chinese.get_data(as_text=True)


def test_a_reservation_shows_at_once_through_the_fast_path(app, factory, fast):
    listing = factory.listing(tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    fast.get("/api/v1/listings")
    cached = fast.get("/api/v1/listings")
    assert _path(cached) == "hit" and cached.get_json()[0]["available_tonnes"] == "500.0000"
    fast.get("/registry/")
    assert _path(fast.get("/registry/")) == "hit"
    with app.app_context():
        orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("120"),
                           payment_method="bank_transfer", beneficiary="某单位", retirement_reason="自愿减排",
                           listing_id=listing.id)
        db.session.commit()
    after = fast.get("/api/v1/listings")
    assert after.get_json()[0]["available_tonnes"] == "380.0000" and _path(after) == "stored"
    assert _path(fast.get("/api/v1/listings")) == "hit"
    page = fast.get("/registry/", headers={"If-None-Match": cached.headers["ETag"]})
    assert page.status_code == 200 and "380.0000" in page.get_data(as_text=True)


def test_a_revocation_shows_at_once_through_the_fast_path(app, factory, fast):
    buyer = factory.organisation("buyer")
    bureau = factory.user("bureau")
    cert = issue(app, buyer, pdf=False)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Order).where(Order.id == 1).values(status="completed", completed_at=utcnow()))
    fast.get(f"/verify/{cert.number}")
    before = fast.get(f"/verify/{cert.number}")
    assert _path(before) == "hit" and before.status_code == 200
    fast.get("/api/v1/public/retirements")
    assert [row["revoked"] for row in fast.get("/api/v1/public/retirements").get_json()["items"]] == [False]
    with app.app_context():
        revoke_certificate(db.session, number=cert.number, actor=db.session.get(User, bureau.id), reason="重复")
        db.session.commit()
    after = fast.get(f"/verify/{cert.number}", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and "重复" in after.get_data(as_text=True)
    assert [row["revoked"] for row in fast.get("/api/v1/public/retirements").get_json()["items"]] == [True]


def test_a_signed_in_visitor_never_gets_the_fast_answer(app, factory, fast, login):
    factory.listing()
    fast.get("/registry/")
    assert _path(fast.get("/registry/")) == "hit"
    bureau = factory.user("bureau")
    login(bureau.email)
    for _ in range(2):
        page = fast.get("/registry/")
        assert _path(page) is None and "ETag" not in page.headers
        assert "public" not in page.headers.get("Cache-Control", "")
    api = fast.get("/api/v1/listings")  # the API's answer is everybody's, but not through this layer
    assert _path(api) is None


def test_other_cookies_query_strings_and_a_forged_session_go_through(app, factory, fast):
    factory.listing()
    fast.get("/registry/")
    assert _path(fast.get("/registry/")) == "hit"
    assert _path(fast.get("/registry/?after=0")) is None
    assert _path(fast.get("/registry/", headers={"Authorization": "Bearer x"})) is None
    for name, value in [("remember_token", "1|abc"), ("other", "1"),
                        ("session", "eyJsYW5nIjoiZW4ifQ.AAAAAA.forged")]:
        visitor = Client(app)
        visitor.client.set_cookie(name, value, domain="localhost")
        answer = visitor.get("/registry/")
        assert _path(answer) is None and answer.status_code == 200, name


def test_a_cache_that_does_not_answer_leaves_the_normal_path(make_app, factory):
    factory.listing()
    broken = Client(make_app(CACHE_REDIS_URL="redis://127.0.0.1:1/0"))
    for _ in range(2):
        page = broken.get("/registry/")
        assert page.status_code == 200 and _path(page) is None
        assert page.headers["Cache-Control"] == "public, no-cache"



def test_hsts_when_configured_comes_through_the_fast_path_too(make_app, factory):
    factory.listing()
    secure = make_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    visitor = Client(secure)
    first = visitor.get("/api/v1/listings")
    fast = visitor.get("/api/v1/listings")
    assert _path(first) == "stored" and _path(fast) == "hit"
    assert fast.headers["Strict-Transport-Security"] == "max-age=31536000" and _answer(fast) == _answer(first)
