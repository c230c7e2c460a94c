"""Public reads from the cache: conditional GET, exact invalidation, pagination, fingerprinted static files.

Every test fills the cache first and then changes the data the way the product does (a reservation, a
price, a revocation) or behind the ORM's back (a Core statement): the next answer must show the change.
A cache that kept its answer, or an invalidation that missed a table, fails here.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.certificates.models import Certificate
from marketplace.certificates.service import revoke_certificate
from marketplace.core import public_cache
from marketplace.core.db import utcnow
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry import service as registry
from marketplace.registry.models import Listing
from tests.test_certificates import _orders, issue, signing_key_file  # noqa: F401 — fixtures


def _available(client, listing_id: int) -> str:
    rows = client.get("/api/v1/listings").get_json()
    return next(row["available_tonnes"] for row in rows if row["id"] == listing_id)


def _version(app, scope: str) -> str:
    with app.app_context():
        return public_cache.versions(db.session, (scope,))


def test_conditional_get_answers_304_until_the_data_changes(app, factory, client):
    listing = factory.listing(tonnes="500", price="30.00")
    first = client.get("/registry/")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, no-cache"
    etag = first.headers["ETag"]
    again = client.get("/registry/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.data
    with app.app_context():  # the price, changed by a statement outside the services (an operator's SQL)
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE listings SET price_cny_per_tonne = 45.50 WHERE id = :id"), {"id": listing.id})
    changed = client.get("/registry/", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "45.50" in changed.get_data(as_text=True)
    assert client.get("/api/v1/listings").get_json()[0]["price_cny_per_tonne"] == "45.50"
    with app.app_context():  # paused through the service: off sale at once
        registry.change_listing(db.session, db.session.get(Listing, listing.id), "pause",
                                actor=db.session.get(User, listing.batch.project.seller.id))
        db.session.commit()
    assert client.get("/api/v1/listings").get_json() == []
    assert f"listing_id={listing.id}" not in client.get("/registry/").get_data(as_text=True)


def test_a_reservation_shows_at_once_in_the_listings_and_the_registry(app, factory, client):
    listing = factory.listing(tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    assert _available(client, listing.id) == "500.0000"
    page = client.get("/registry/").get_data(as_text=True)
    assert "500.0000" in page
    assert _available(client, listing.id) == "500.0000"  # now from the cache
    with app.app_context():
        orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("120"),
                           payment_method="bank_transfer", beneficiary="某单位", retirement_reason="自愿减排",
                           listing_id=listing.id)
        db.session.commit()
    assert _available(client, listing.id) == "380.0000"
    page = client.get("/registry/").get_data(as_text=True)
    assert "380.0000" in page and "500.0000" not in page


def test_a_write_behind_the_orm_bumps_the_version_in_its_own_transaction(app, factory, client):
    listing = factory.listing(tonnes="500", price="30.00")
    assert _available(client, listing.id) == "500.0000"
    before = _version(app, "registry")
    with app.app_context():
        with db.engine.connect() as conn:  # a Core statement, then a rollback: nothing changed, nothing shown
            conn.execute(sa.text("UPDATE ledger_balances SET units = units - 10000 WHERE account = :a"),
                         {"a": f"listed:{listing.id}"})
            conn.rollback()
    assert _version(app, "registry") == before
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE ledger_balances SET units = units - 10000 WHERE account = :a"),
                         {"a": f"listed:{listing.id}"})
    assert _version(app, "registry") != before
    assert _available(client, listing.id) == "499.0000"


def test_a_revocation_shows_at_once_on_the_verification_page_and_in_the_api(app, factory, client):
    buyer = factory.organisation("buyer")
    bureau = factory.user("bureau")
    cert = issue(app, buyer, pdf=False)
    listed = client.get("/api/v1/public/retirements").get_json()["items"]
    assert listed == []  # its order (a bare row) is not completed yet
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Order).where(Order.id == 1).values(status="completed", completed_at=utcnow()))
    page = client.get(f"/verify/{cert.number}")
    assert page.headers["Cache-Control"] == "public, no-cache"
    etag = page.headers["ETag"]
    assert client.get(f"/verify/{cert.number}", headers={"If-None-Match": etag}).status_code == 304
    listed = client.get("/api/v1/public/retirements").get_json()["items"]
    assert [row["revoked"] for row in listed] == [False]
    with app.app_context():
        revoke_certificate(db.session, number=cert.number, actor=db.session.get(User, bureau.id), reason="重复")
        db.session.commit()
        revoked_text = db.session.get(Certificate, cert.id).revoked
    assert revoked_text
    after = client.get(f"/verify/{cert.number}", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert "重复" in after.get_data(as_text=True)
    assert [row["revoked"] for row in client.get("/api/v1/public/retirements").get_json()["items"]] == [True]


def test_signed_in_visitors_and_language_choices_get_their_own_answers(app, factory, client, login):
    factory.listing()
    anonymous = client.get("/registry/")
    assert anonymous.headers["Cache-Control"] == "public, no-cache"
    chosen = client.get("/registry/?lang=en")  # sets the session's language: never a public answer
    assert "Set-Cookie" in chosen.headers and "public" not in chosen.headers.get("Cache-Control", "")
    bureau = factory.user("bureau")
    login(bureau.email)
    signed_in = client.get("/registry/")
    assert "ETag" not in signed_in.headers and "public" not in signed_in.headers.get("Cache-Control", "")


def test_the_registry_pages_its_projects_and_the_api_its_listings(app, factory, client):
    seller = factory.user("seller")
    bureau = factory.user("bureau")
    projects = [factory.project(seller, bureau=bureau) for _ in range(22)]
    listings = [factory.listing(factory.batch(projects[i], bureau=bureau), price=f"{30 + i}.00") for i in range(3)]
    first = client.get("/registry/").get_data(as_text=True)
    link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert link and f"after={projects[19].id}" in link.group(1)
    def panels(page):
        return [int(i) for i in re.findall(r'<h3><a href="/registry/projects/(\d+)">', page)]

    assert panels(first) == [p.id for p in projects[:20]]
    second = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert panels(second) == [p.id for p in projects[20:]]
    assert 'rel="next"' not in second
    seen = []
    url = "/api/v1/listings?limit=2"
    for _ in range(2):  # twice: the second time from the cache, which keeps the Link header
        seen, url = [], "/api/v1/listings?limit=2"
        while url:
            response = client.get(url)
            seen += [row["id"] for row in response.get_json()]
            found = re.match(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
            url = found.group(1) if found else None
        assert seen == [listing.id for listing in listings]
    assert client.get("/api/v1/listings?after=x").status_code == 422


def test_static_files_carry_a_fingerprint_and_are_cached_for_a_year(client):
    page = client.get("/").get_data(as_text=True)
    href = re.search(r'href="(/static/css/site\.css\?v=([0-9a-f]{12}))"', page)
    assert href
    fresh = client.get(href.group(1))
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get("/static/css/site.css?v=000000000000")
    assert stale.status_code == 200 and "immutable" not in stale.headers.get("Cache-Control", "")
    assert "immutable" not in client.get("/static/css/site.css").headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", ["/", "/registry/", "/api/v1/listings", "/api/v1/public/retirements"])
def test_public_reads_answer_304_to_their_own_etag(client, path):
    etag = client.get(path).headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.postgres
def test_writers_on_different_connections_do_not_queue_on_one_version_row(app, factory, client):
    """Two orders' reservations on different listings, each in its open transaction: the second does not wait
    for the first to commit (the scope's version is kept in a row per connection shard), and each commit
    shows at once."""
    first, second = factory.listing(tonnes="500"), factory.listing(tonnes="500")
    with app.app_context():
        connections = [db.engine.connect()]
        pids = {connections[0].execute(sa.text("SELECT pg_backend_pid()")).scalar() % 16}
        while True:  # a second connection on another shard
            conn = db.engine.connect()
            connections.append(conn)
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() % 16
            if pid not in pids:
                break
        one, other = connections[0], connections[-1]
        try:
            one.execute(sa.text("UPDATE ledger_balances SET units = units - 10000 WHERE account = :a"),
                        {"a": f"listed:{first.id}"})
            other.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            other.execute(sa.text("UPDATE ledger_balances SET units = units - 10000 WHERE account = :a"),
                          {"a": f"listed:{second.id}"})  # would fail with a lock timeout behind one row
            other.commit()
            assert _available(client, second.id) == "499.0000"
            one.commit()
            assert _available(client, first.id) == "499.0000"
        finally:
            for conn in connections:
                conn.close()
