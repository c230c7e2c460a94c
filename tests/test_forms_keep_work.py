"""Forms keep what people typed: the language switch keeps the page's URL and query string, the event
page's other forms keep their defaults after a refused helper (the round-trip box stays ticked), and a
form refused because the session ended sends the person to sign in and back to the form."""

from __future__ import annotations

import html
import re

import pytest

from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors
from tests.conftest import CsrfClient
from tests.factories import PASSWORD


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


def _language_links(page: str) -> dict[str, str]:
    return {lang: html.unescape(href) for href, lang in re.findall(r'<a href="([^"]*)" lang="(zh-CN|en)"', page)}


def test_the_language_switch_keeps_the_page_and_its_query_string(client, factory, login):
    login(factory.user("buyer").email)
    page = client.get("/buyers/orders/new?event_id=7&listing_id=3").get_data(as_text=True)
    links = _language_links(page)
    assert links["en"] == "/buyers/orders/new?event_id=7&listing_id=3&lang=en"
    assert links["zh-CN"] == "/buyers/orders/new?event_id=7&listing_id=3&lang=zh_CN"
    # The English page links back with the same query, lang replaced rather than added twice.
    english = client.get(links["en"]).get_data(as_text=True)
    assert _language_links(english)["zh-CN"] == "/buyers/orders/new?event_id=7&listing_id=3&lang=zh_CN"
    assert 'data-keeps-forms' in english  # site.js carries the typed fields across


def test_a_refused_helper_leaves_the_round_trip_box_ticked(client, factory, login, factors):
    login(factory.user("buyer").email)
    form = CsrfClient(client)
    created = form.post_form("/buyers/events/new", {
        "name": "年会", "starts_on": "2026-10-30", "ends_on": "2026-10-30", "location": "丽水",
        "attendees": "100", "organiser": "", "boundary": ""})
    event_url = created.headers["Location"]
    response = form.post_form(event_url, {"rooms-factor_code": "", "rooms-rooms": "x", "rooms-nights": ""},
                              action=f"{event_url}/helpers/rooms")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    box = re.search(r'<input[^>]*id="travel-round_trip"[^>]*>', page).group(0)
    assert "checked" in box, box


def test_a_form_sent_after_signing_out_elsewhere_leads_to_sign_in_and_back(client, factory, login, factors):
    buyer = factory.user("buyer")
    login(buyer.email)
    form = CsrfClient(client)
    token = form.csrf_token("/buyers/events/new")
    form.post_form("/buyers/", {}, action="/logout")  # the other tab signs out

    response = client.post("/buyers/events/new", data={"csrf_token": token, "name": "年会"},
                           headers={"Referer": "http://localhost/buyers/events/new"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/buyers/events/new"
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "会话已结束" in login_page and "flash-warning" in login_page

    token = form.csrf_token("/login")
    signed_in = client.post("/login?next=%2Fbuyers%2Fevents%2Fnew",
                            data={"email": buyer.email, "password": PASSWORD, "csrf_token": token})
    assert signed_in.headers["Location"] == "/buyers/events/new"
    back = client.get("/buyers/events/new").get_data(as_text=True)
    assert 'class="flash flash-kept"' in back  # tells site.js to fill in what was typed


def test_an_expired_form_of_a_signed_in_person_goes_back_to_the_form(client, factory, login):
    login(factory.user("buyer").email)
    response = client.post("/buyers/events/new", data={"csrf_token": "stale", "name": "年会"},
                           headers={"Referer": "http://localhost/buyers/events/new?x=1"})
    assert response.status_code == 302 and response.headers["Location"] == "/buyers/events/new?x=1"
    assert 'flash-kept' in client.get("/buyers/events/new?x=1").get_data(as_text=True)


def test_a_refused_token_without_a_page_of_ours_is_still_a_400(client, factory, login):
    login(factory.user("buyer").email)
    assert client.post("/buyers/events/new", data={"name": "x"}).status_code == 400
    elsewhere = client.post("/buyers/events/new", data={"name": "x"}, headers={"Referer": "https://evil.example/"})
    assert elsewhere.status_code == 400
    as_json = client.post("/buyers/events/new", data={"name": "x"}, headers={
        "Referer": "http://localhost/buyers/events/new", "Accept": "application/json"})
    assert as_json.status_code == 400 and as_json.get_json()["error"]["code"] == "csrf_failed"


def test_a_refused_form_on_a_page_answered_to_a_post_is_still_a_400(client, factory, login):
    """The Referer is a POST-only address (a refused helper's page): there is no page to go back to."""
    login(factory.user("buyer").email)
    response = client.post("/buyers/events/new", data={"csrf_token": "stale"},
                           headers={"Referer": "http://localhost/buyers/events/1/helpers/travel"})
    assert response.status_code == 400
