"""Sign-in limits: Redis down never stops sign-in (the limits go on in memory, with a warning); forwarded
addresses are believed only from TRUSTED_PROXIES; a per-account limit beside the per-address one."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time

import pytest

from marketplace.extensions import limiter
from tests.conftest import CsrfClient, _port_open, free_port
from tests.factories import PASSWORD


@pytest.fixture
def limiter_restored(make_app):
    """The limiter is one extension object shared by every app of the test run: after a test that pointed it at
    a dead storage, bind it to the ordinary test storage again and forget that the storage was dead."""
    yield
    limiter._storage_dead = False  # the library's own flag (no public reset); see flask_limiter._extension
    make_app()


def _attempt(client, email, password="wrong password", address=None):
    environ = {"REMOTE_ADDR": address} if address else {}
    form = CsrfClient(client)
    token = form.csrf_token("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base=environ)


def test_sign_in_works_with_redis_unreachable_and_the_limit_holds_in_memory(make_app, factory, caplog,
                                                                            limiter_restored):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(RATELIMIT_STORAGE_URI=dead, LOGIN_RATE_LIMIT="3 per minute")
    user = factory.user("buyer")
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        assert _attempt(client, user.email, PASSWORD).status_code == 302
    assert any("falling back to in-memory" in r.getMessage() for r in caplog.records), caplog.text
    other = app.test_client()
    statuses = [_attempt(other, user.email).status_code for _ in range(4)]
    assert statuses[-1] == 429, statuses  # still limited, in this process's memory


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own on a free port (the shared one is never stopped)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",  # noqa: S603
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("private redis-server did not start")
        time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.redis
def test_sign_in_goes_on_when_redis_stops_in_the_middle(make_app, factory, private_redis, limiter_restored):
    process, url = private_redis
    app = make_app(RATELIMIT_STORAGE_URI=url)
    user = factory.user("buyer")
    assert _attempt(app.test_client(), user.email, PASSWORD).status_code == 302
    process.kill()
    process.wait(timeout=10)
    started = time.monotonic()
    assert _attempt(app.test_client(), user.email, PASSWORD).status_code == 302
    assert time.monotonic() - started < 5
    assert _attempt(app.test_client(), user.email).status_code == 422


def test_forwarded_addresses_from_anyone_but_a_trusted_proxy_are_ignored(make_app, factory):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES="")
    factory.user("buyer", email="b@example.cn")
    client = app.test_client()
    statuses = []
    for n in range(3):
        form = CsrfClient(client)
        token = form.csrf_token("/login")
        statuses.append(client.post("/login", data={"email": "b@example.cn", "password": "x", "csrf_token": token},
                                    headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code)
    assert statuses == [422, 422, 429]  # a forged header does not buy a new bucket


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(make_app, factory):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES="10.0.0.0/8")
    factory.user("buyer", email="b@example.cn")
    client = app.test_client()

    def attempt(client_address, forwarded_prefix=""):
        form = CsrfClient(client)
        token = form.csrf_token("/login")
        return client.post("/login", data={"email": "b@example.cn", "password": "x", "csrf_token": token},
                           headers={"X-Forwarded-For": f"{forwarded_prefix}{client_address}"},
                           environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code

    assert [attempt("203.0.113.7") for _ in range(3)] == [422, 422, 429]
    # Another client behind the same proxy is not punished for the first one.
    assert attempt("203.0.113.8") == 422
    # A client cannot hide behind an address it put in the header itself: the proxy appends the real one.
    assert attempt("203.0.113.7", forwarded_prefix="192.0.2.55, ") == 429


def test_the_client_address_reaches_the_audit_log(make_app, factory):
    import sqlalchemy as sa

    from marketplace.accounts.models import AccountEvent
    from marketplace.extensions import db

    app = make_app(TRUSTED_PROXIES="10.0.0.1")
    user = factory.user("buyer")
    client = app.test_client()
    token = CsrfClient(client).csrf_token("/login")
    client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    with app.app_context():
        assert db.session.scalar(sa.select(AccountEvent.address).where(AccountEvent.user_id == user.id,
                                                                       AccountEvent.kind == "sign_in")) == "203.0.113.9"


def test_one_account_is_limited_whatever_the_address(make_app, factory):
    app = make_app(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
    target = factory.user("buyer", email="target@example.cn")
    bystander = factory.user("buyer", email="bystander@example.cn")
    client = app.test_client()
    statuses = [_attempt(client, target.email, address=f"198.51.100.{n}").status_code for n in range(4)]
    assert statuses == [422, 422, 422, 429]
    assert _attempt(client, target.email, PASSWORD, address="198.51.100.200").status_code == 429
    # Other accounts from those addresses are not affected, and successes never count.
    assert _attempt(client, bystander.email, PASSWORD, address="198.51.100.1").status_code == 302


def test_a_mistyped_trusted_proxy_stops_the_start_naming_the_setting(make_app):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        make_app(TRUSTED_PROXIES="10.0.0.0/8, proxy.internal")
