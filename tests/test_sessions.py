"""Sessions end when they should: sign-out, a password change, disabling and "sign out everywhere" end every
session of the user (a copied cookie included); idle and absolute timeouts; strong session protection."""

from __future__ import annotations

import time

from marketplace.accounts.views_auth import LAST_SEEN, SIGNED_IN_AT
from tests.conftest import CsrfClient
from tests.factories import PASSWORD

COOKIE = "session"


def _sign_in(app, email, password=PASSWORD, user_agent=None):
    client = app.test_client()
    if user_agent:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    response = CsrfClient(client).post_form("/login", {"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def _copy_of_cookie(app, client):
    """Another browser holding a copy of this browser's session cookie, byte for byte."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value, domain="localhost")
    return thief


def _signed_in(client, page="/buyers/") -> bool:
    return client.get(page).status_code == 200


def test_a_cookie_copied_before_logout_does_not_work_after_it(app, factory):
    user = factory.user("buyer")
    browser = _sign_in(app, user.email)
    thief = _copy_of_cookie(app, browser)
    assert _signed_in(thief)  # the copy works while the session lives
    CsrfClient(browser).post_form("/buyers/", {}, action="/logout")
    assert not _signed_in(browser)
    answer = thief.get("/buyers/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_signing_out_ends_the_users_other_sessions_too(app, factory):
    user = factory.user("buyer")
    laptop, phone = _sign_in(app, user.email), _sign_in(app, user.email)
    CsrfClient(laptop).post_form("/buyers/", {}, action="/logout")
    assert not _signed_in(phone)


def test_changing_the_password_ends_other_sessions_and_keeps_this_one(app, factory):
    user = factory.user("buyer")
    here, elsewhere = _sign_in(app, user.email), _sign_in(app, user.email)
    stolen = _copy_of_cookie(app, elsewhere)
    response = CsrfClient(here).post_form("/account/password", {
        "current_password": PASSWORD, "new_password": "a new password 2026", "confirm": "a new password 2026"})
    assert response.status_code == 302
    assert _signed_in(here)
    assert not _signed_in(elsewhere)
    assert not _signed_in(stolen)
    _sign_in(app, user.email, "a new password 2026")


def test_sign_out_everywhere_ends_every_session(app, factory):
    user = factory.user("buyer")
    one, two = _sign_in(app, user.email), _sign_in(app, user.email)
    response = CsrfClient(one).post_form("/account/", {}, action="/account/sign-out-everywhere")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not _signed_in(one)
    assert not _signed_in(two)


def test_disabling_a_user_ends_their_sessions_and_re_enabling_lets_them_sign_in(app, factory):
    bureau = factory.user("bureau")
    person = factory.user("buyer")
    theirs = _sign_in(app, person.email)
    staff = _sign_in(app, bureau.email)
    page = f"/bureau/users/{person.id}"
    response = CsrfClient(staff).post_form(page, {"active": "0"}, action=f"{page}/active")
    assert response.status_code == 302
    assert not _signed_in(theirs)
    refused = CsrfClient(app.test_client()).post_form("/login", {"email": person.email, "password": PASSWORD})
    assert refused.status_code == 422
    CsrfClient(staff).post_form(page, {"active": "1"}, action=f"{page}/active")
    _sign_in(app, person.email)


def test_an_idle_session_ends_after_the_idle_timeout(make_app, factory):
    app = make_app(SESSION_IDLE_MINUTES=30)
    user = factory.user("buyer")
    client = _sign_in(app, user.email)
    with client.session_transaction() as session:
        session[LAST_SEEN] = time.time() - 29 * 60
    assert _signed_in(client)  # used within the half hour: still signed in, and the clock restarts
    with client.session_transaction() as session:
        assert time.time() - session[LAST_SEEN] < 5
        session[LAST_SEEN] = time.time() - 31 * 60
    assert not _signed_in(client)


def test_the_idle_timeout_is_a_setting(make_app, factory):
    app = make_app(SESSION_IDLE_MINUTES=5)
    user = factory.user("buyer")
    client = _sign_in(app, user.email)
    with client.session_transaction() as session:
        session[LAST_SEEN] = time.time() - 6 * 60
    assert not _signed_in(client)


def test_a_busy_session_still_ends_at_the_absolute_lifetime(app, factory):
    user = factory.user("buyer")
    client = _sign_in(app, user.email)
    lifetime = app.permanent_session_lifetime.total_seconds()
    with client.session_transaction() as session:
        session[SIGNED_IN_AT] = time.time() - lifetime - 1
    assert not _signed_in(client)


def test_the_session_cookie_dies_with_the_browser(app, factory):
    user = factory.user("buyer")
    client = _sign_in(app, user.email)
    assert client.get_cookie(COOKIE).expires is None


def test_strong_protection_stays_strong_a_cookie_replayed_from_another_browser_ends_the_session(app, factory):
    """``session.permanent = True`` made Flask-Login downgrade "strong" to "basic": a cookie replayed from
    another browser (user agent) only lost its freshness. Now it ends the session."""
    user = factory.user("buyer")
    client = _sign_in(app, user.email, user_agent="Firefox/140")
    assert client.get("/buyers/").status_code == 200
    assert client.get("/buyers/", headers={"User-Agent": "curl/8"}).status_code == 302


def test_a_session_of_a_user_who_was_reset_by_the_bureau_ends(app, factory):
    bureau = factory.user("bureau")
    person = factory.user("seller")
    theirs = _sign_in(app, person.email)
    staff = _sign_in(app, bureau.email)
    page = f"/bureau/users/{person.id}"
    CsrfClient(staff).post_form(page, {}, action=f"{page}/force-reset")
    assert not _signed_in(theirs, "/sellers/")
