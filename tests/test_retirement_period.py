"""The period a retirement covers, and its event: on orders (form and API, the event's days by default, bad
periods refused), signed on new certificates (the PDF, /verify, the certificate APIs; older certificates
without them still verify), and in the public retirement registry (fields and the period-overlap filter)."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from marketplace.accounts.models import User
from marketplace.certificates import pdf as certificate_pdf
from marketplace.certificates import retirement
from marketplace.certificates.models import Certificate
from marketplace.certificates.service import InvalidFacts, issue_certificate, validate_facts
from marketplace.certificates.signing import published_keys
from marketplace.core.errors import ValidationFailed
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from tests.conftest import CsrfClient

SUMMIT = ("2026-10-30", "2026-11-01")


def _bearer(factory):
    user = factory.user("buyer")
    return user, {"Authorization": f"Bearer {factory.token(user)}"}


def _event(app, buyer, name="第十届“智汇丽水”人才科技峰会", days=SUMMIT) -> int:
    with app.app_context():
        event = footprint.create_event(db.session, db.session.get(User, buyer.id), name=name, starts_on=days[0],
                                       ends_on=days[1], location="丽水", attendees=800)
        db.session.commit()
        return event.id


def _order_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Order))


def _place(app, buyer, listing_id, *, tonnes="10", **kwargs) -> int:
    with app.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="bank_transfer", beneficiary="丽水市生态环境局",
                                   retirement_reason="碳中和", listing_id=listing_id, **kwargs)
        db.session.commit()
        return order.id


def _complete(app, order_id, *, facts_edit=None) -> str:
    """Pay, retire and certify the order; ``facts_edit`` changes the facts before signing (an older
    certificate's facts, which lacked the period and the event's id)."""
    with app.app_context():
        assert orders.mark_paid(db.session, order_id, note="test", bank_reference=f"R{order_id}")
        db.session.commit()
        retirement.retire_order(db.session, order_id)
        db.session.commit()
        if facts_edit is not None:
            order = db.session.get(Order, order_id)
            facts = facts_edit(retirement.facts_for(db.session, order))
            issue_certificate(db.session, order_id=order_id, facts=facts)
            db.session.commit()
        return retirement.generate_certificate(db.session, order_id)


def _certificate(app, number):
    with app.app_context():
        row = db.session.scalar(sa.select(Certificate).where(Certificate.number == number))
        path = certificate_pdf.certificate_pdf_file(db.session, row)
        db.session.commit()
        return json.loads(row.facts_json), row.signature, path.read_bytes(), published_keys(db.session)


def _verify(app, tmp_path, data: bytes, keys) -> tuple[bool, str]:
    path = tmp_path / "suspect.pdf"
    path.write_bytes(data)
    with app.test_request_context("/?lang=en"):
        ok, reason = certificate_pdf.verify_pdf(path, keys)
    return ok, str(reason)


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


# --- orders ----------------------------------------------------------------------------------------

def test_an_order_for_an_event_covers_its_days_unless_another_period_is_given(app, factory, client):
    buyer, headers = _bearer(factory)
    listing = factory.listing()
    event_id = _event(app, buyer)
    body = {"quantity_tonnes": "5", "listing_id": listing.id, "payment_method": "bank_transfer",
            "beneficiary": "峰会组委会", "retirement_reason": "峰会碳中和"}
    placed = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "p-1"},
                         json={**body, "event_id": event_id})
    assert placed.status_code == 201, placed.get_json()
    assert (placed.get_json()["period_start"], placed.get_json()["period_end"]) == SUMMIT
    read = client.get(f"/api/v1/orders/{placed.get_json()['id']}", headers=headers).get_json()
    assert (read["period_start"], read["period_end"]) == SUMMIT

    given = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "p-2"},
                        json={**body, "event_id": event_id, "period_start": "2026-10-29", "period_end": "2026-11-02"})
    assert (given.get_json()["period_start"], given.get_json()["period_end"]) == ("2026-10-29", "2026-11-02")
    annual = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "p-3"},
                         json={**body, "purpose": "zero_carbon_org", "period_start": "2026-01-01",
                               "period_end": "2026-12-31"})
    assert (annual.get_json()["period_start"], annual.get_json()["period_end"]) == ("2026-01-01", "2026-12-31")
    none = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "p-4"}, json=body)
    assert (none.get_json()["period_start"], none.get_json()["period_end"]) == (None, None)
    with app.app_context():
        stored = db.session.get(Order, annual.get_json()["id"])
        assert (stored.period_start, stored.period_end) == (date(2026, 1, 1), date(2026, 12, 31))


@pytest.mark.parametrize(("period", "field", "message"), [
    ({"period_start": "2026-11-01", "period_end": "2026-10-30"}, "period_end", "结束日期不能早于开始日期"),
    ({"period_start": "2026-10-30"}, "period_end", "最后一天"),
    ({"period_end": "2026-11-01"}, "period_start", "第一天"),
    ({"period_start": "1899-12-31", "period_end": "2026-11-01"}, "period_start", None),
    ({"period_start": "2026-10-30", "period_end": "3000-01-01"}, "period_end", None),
    ({"period_start": "2026-02-30", "period_end": "2026-03-01"}, "period_start", None),
    ({"period_start": "30/10/2026", "period_end": "2026-11-01"}, "period_start", None),
])
def test_a_bad_period_is_refused_with_its_field_and_nothing_is_placed(app, factory, client, period, field, message):
    buyer, headers = _bearer(factory)
    listing = factory.listing()
    response = client.post("/api/v1/orders", headers={**headers, "Idempotency-Key": "bad-1"}, json={
        "quantity_tonnes": "5", "listing_id": listing.id, "payment_method": "bank_transfer", "beneficiary": "某机构",
        "retirement_reason": "自愿抵消", **period})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field
    if message:
        assert message in error["message"]
    assert _order_count(app) == 0


def test_the_service_refuses_bad_periods_for_every_caller(app, factory):
    buyer = factory.user("buyer")
    listing = factory.listing()
    with app.app_context():
        actor = db.session.get(User, buyer.id)
        for start, end, field in [(date(2026, 5, 2), date(2026, 5, 1), "period_end"), (date(1, 1, 1), date(2026, 1, 1), "period_start"),
                                  ("2026-05-01", None, "period_end"), ("", "2026-05-01", "period_start"),
                                  ("not a day", "2026-05-01", "period_start")]:
            with pytest.raises(ValidationFailed) as refused:
                orders.place_order(db.session, actor=actor, units=50_000, payment_method="bank_transfer",
                                   beneficiary="某机构", retirement_reason="抵消", listing_id=listing.id,
                                   period_start=start, period_end=end)
            assert refused.value.field == field
            db.session.rollback()
    assert _order_count(app) == 0


def test_the_same_key_with_another_period_is_a_conflict(app, factory, client):
    buyer, headers = _bearer(factory)
    listing = factory.listing()
    body = {"quantity_tonnes": "5", "listing_id": listing.id, "payment_method": "bank_transfer", "beneficiary": "某机构",
            "retirement_reason": "年度抵消", "period_start": "2026-01-01", "period_end": "2026-12-31"}
    keyed = {**headers, "Idempotency-Key": "same-key"}
    first = client.post("/api/v1/orders", headers=keyed, json=body)
    assert first.status_code == 201
    again = client.post("/api/v1/orders", headers=keyed, json=body)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    other = client.post("/api/v1/orders", headers=keyed, json={**body, "period_end": "2026-06-30"})
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert _order_count(app) == 1


def test_the_order_form_takes_the_period_keeps_what_was_typed_and_the_pages_show_it(app, factory, client, login):
    buyer = factory.user("buyer")
    listing = factory.listing()
    event_id = _event(app, buyer)
    login(buyer.email)
    form = CsrfClient(client)
    data = {"event_id": str(event_id), "quantity": "5", "listing_id": str(listing.id), "payment_method": "bank_transfer",
            "beneficiary": "峰会组委会", "retirement_reason": "峰会碳中和", "period_start": "2026-11-01",
            "period_end": "2026-10-30", "confirm": "0"}
    refused = form.post_form("/buyers/orders/new", data)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "结束日期不能早于开始日期" in html
    assert 'value="2026-11-01"' in html and 'value="2026-10-30"' in html and "峰会碳中和" in html
    assert _order_count(app) == 0

    data.update(period_start="2026-10-29", period_end="2026-11-02")
    quoted = form.post_form("/buyers/orders/new", data)
    assert quoted.status_code == 200
    token = quoted.get_data(as_text=True).split('name="request_token" type="hidden" value="')[1].split('"')[0]
    placed = form.post_form("/buyers/orders/new", {**data, "confirm": "1", "request_token": token})
    assert placed.status_code == 302, placed.get_data(as_text=True)[:800]
    with app.app_context():
        order = db.session.scalar(sa.select(Order))
        assert (order.period_start, order.period_end, order.event_id) == (date(2026, 10, 29), date(2026, 11, 2), event_id)
        order_id = order.id
    detail = client.get(f"/buyers/orders/{order_id}").get_data(as_text=True)
    assert "覆盖期间" in detail and "2026-10-29" in detail and "2026-11-02" in detail
    assert "第十届“智汇丽水”人才科技峰会" in detail
    listing_page = client.get("/buyers/orders/").get_data(as_text=True)
    assert "2026-10-29" in listing_page and "第十届“智汇丽水”人才科技峰会" in listing_page


# --- certificates ----------------------------------------------------------------------------------

def test_a_new_certificate_signs_the_period_and_the_event_and_shows_them_everywhere(app, factory, client, tmp_path):
    buyer, headers = _bearer(factory)
    listing = factory.listing()
    event_id = _event(app, buyer)
    number = _complete(app, _place(app, buyer, listing.id, event_id=event_id))
    facts, _signature, pdf, keys = _certificate(app, number)
    assert facts["period"] == {"start": "2026-10-30", "end": "2026-11-01"}
    assert facts["event_id"] == event_id and facts["event"] == "第十届“智汇丽水”人才科技峰会"

    text = _text(pdf)
    assert "覆盖期间" in text and "Period covered" in text and "2026-10-30" in text and "2026-11-01" in text
    assert f"Event ID: {event_id}" in text
    ok, reason = _verify(app, tmp_path, pdf, keys)
    assert ok, reason

    page = client.get(f"/verify/{number}").get_data(as_text=True)
    assert "覆盖期间" in page and "2026-10-30" in page and f"活动编号 {event_id}" in page
    public = client.get(f"/api/v1/public/certificates/{number}").get_json()
    assert public["facts"]["period"] == facts["period"] and public["valid"]
    assert (public["period_start"], public["period_end"], public["event_id"]) == (*SUMMIT, event_id)
    owner = client.get(f"/api/v1/certificates/{number}", headers=headers).get_json()
    assert (owner["period_start"], owner["period_end"], owner["event"]) == (*SUMMIT, "第十届“智汇丽水”人才科技峰会")


def test_a_tampered_period_fails_offline_verification(app, factory, tmp_path):
    buyer = factory.user("buyer")
    listing = factory.listing()
    number = _complete(app, _place(app, buyer, listing.id, event_id=_event(app, buyer)))
    facts, signature, pdf, keys = _certificate(app, number)
    with app.app_context():
        url = certificate_pdf.verify_url_for(number)
        # The pages show another period over the genuine signed record …
        shown = {**facts, "period": {"start": "2026-01-01", "end": "2026-12-31"}}
        forged = certificate_pdf.attach_signed_record(certificate_pdf.render_pages(shown, signature, url), {
            "algorithm": "Ed25519", "facts": facts, "signature": signature})
        # … or the record itself claims another period under the genuine pages.
        edited = certificate_pdf.attach_signed_record(certificate_pdf.render_pages(facts, signature, url), {
            "algorithm": "Ed25519", "facts": {**facts, "period": {"start": "2026-10-30", "end": "2026-12-31"}},
            "signature": signature})
        # … or the period row was left out of the pages.
        dropped = certificate_pdf.attach_signed_record(certificate_pdf.render_pages(
            {k: v for k, v in facts.items() if k != "period"}, signature, url),
            {"algorithm": "Ed25519", "facts": facts, "signature": signature})
    assert "2026-12-31" in _text(forged)
    ok, reason = _verify(app, tmp_path, forged, keys)
    assert not ok and "page 1 differs" in reason
    ok, reason = _verify(app, tmp_path, edited, keys)
    assert not ok and "signature does not match" in reason
    ok, reason = _verify(app, tmp_path, dropped, keys)
    assert not ok and "page 1 differs" in reason


def test_a_certificate_signed_before_the_period_existed_still_verifies_and_shows_the_orders(app, factory, client,
                                                                                            tmp_path):
    """Its facts lack ``period`` and ``event_id``: its page is drawn as it always was, and the registry, the
    verify page and the API show the order's period, said to come from the order."""
    buyer = factory.user("buyer")
    listing = factory.listing()
    event_id = _event(app, buyer)
    older = lambda facts: {k: v for k, v in facts.items() if k not in ("period", "event_id")}  # noqa: E731
    number = _complete(app, _place(app, buyer, listing.id, event_id=event_id), facts_edit=older)
    facts, _signature, pdf, keys = _certificate(app, number)
    assert "period" not in facts and "event_id" not in facts
    assert "覆盖期间" not in _text(pdf) and "Event ID" not in _text(pdf)
    ok, reason = _verify(app, tmp_path, pdf, keys)
    assert ok, reason

    row = client.get("/api/v1/public/retirements").get_json()["items"][0]
    assert (row["period_start"], row["period_end"], row["event_id"]) == (*SUMMIT, event_id)
    page = client.get(f"/verify/{number}").get_data(as_text=True)
    assert "2026-10-30" in page and "此证书签发时证书尚不记载覆盖期间" in page
    public = client.get(f"/api/v1/public/certificates/{number}").get_json()
    assert (public["period_start"], public["event_id"]) == ("2026-10-30", event_id) and public["valid"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: {**f, "period": {"start": "2026-11-02", "end": "2026-11-01"}}, "period.end"),
    (lambda f: {**f, "period": {"start": "2026-11-01"}}, "period: missing"),
    (lambda f: {**f, "period": {"start": "2026-11-01", "end": "11/02/2026"}}, "period.end"),
    (lambda f: {**f, "period": {"start": "0001-01-01", "end": "2026-11-01"}}, "period.start"),
    (lambda f: {**f, "event_id": "12"}, "event_id"),
    (lambda f: {**f, "event": None, "event_id": 12}, "event_id needs"),
])
def test_malformed_period_or_event_facts_are_refused(app, factory, edit, message):
    buyer = factory.user("buyer")
    listing = factory.listing()
    order_id = _place(app, buyer, listing.id, event_id=_event(app, buyer))
    with app.app_context():
        assert orders.mark_paid(db.session, order_id, note="test", bank_reference="R")
        db.session.commit()
        retirement.retire_order(db.session, order_id)
        db.session.commit()
        facts = retirement.facts_for(db.session, db.session.get(Order, order_id))
        validate_facts(facts)  # the genuine ones pass
        with pytest.raises(InvalidFacts, match=message):
            validate_facts(edit(facts))


# --- the public registry ---------------------------------------------------------------------------

def test_the_public_registry_shows_and_filters_by_the_period_and_the_event(app, factory, client):
    buyer = factory.user("buyer")
    listing = factory.listing()
    summit = _event(app, buyer)
    forum = _event(app, buyer, name="2026杭州低碳城市论坛", days=("2026-05-20", "2026-05-21"))
    periods = {
        "summit": _complete(app, _place(app, buyer, listing.id, event_id=summit)),
        "forum": _complete(app, _place(app, buyer, listing.id, event_id=forum)),
        "year": _complete(app, _place(app, buyer, listing.id, purpose="zero_carbon_org", period_start="2026-01-01",
                                      period_end="2026-12-31")),
        "none": _complete(app, _place(app, buyer, listing.id)),
    }
    spans = {"summit": SUMMIT, "forum": ("2026-05-20", "2026-05-21"), "year": ("2026-01-01", "2026-12-31"),
             "none": (None, None)}
    every = client.get("/api/v1/public/retirements").get_json()["items"]
    by_number = {row["certificate_number"]: row for row in every}
    for name, number in periods.items():
        assert (by_number[number]["period_start"], by_number[number]["period_end"]) == spans[name]
    assert by_number[periods["summit"]]["event_id"] == summit
    assert by_number[periods["year"]]["event_id"] is None and by_number[periods["year"]]["event"] is None

    def found(**query):
        response = client.get("/api/v1/public/retirements", query_string=query)
        assert response.status_code == 200, response.get_json()
        return {name for name, number in periods.items()
                if number in {r["certificate_number"] for r in response.get_json()["items"]}}

    # Overlap with [from, to]: the brute-force answer for several windows, open ones too.
    windows = [("2026-11-01", "2026-11-01"), ("2026-10-31", None), (None, "2026-05-19"), ("2026-05-21", "2026-10-29"),
               ("2027-01-01", None), ("2025-01-01", "2025-12-31"), (None, "2026-05-20")]
    for start, end in windows:
        expected = {name for name, (s, e) in spans.items()
                    if s is not None and (end is None or s <= end) and (start is None or e >= start)}
        query = {k: v for k, v in (("period_from", start), ("period_to", end)) if v}
        assert found(**query) == expected, (start, end)
    assert found(event_id=forum) == {"forum"}

    for bad in ({"period_from": "2026-11-02", "period_to": "2026-11-01"}, {"period_from": "1000-01-01"},
                {"period_to": "2026-13-01"}, {"event_id": "0"}):
        assert client.get("/api/v1/public/retirements", query_string=bad).status_code == 422, bad

    page = client.get("/registry/retirements", query_string={"period_from": "2026-10-31",
                                                             "period_to": "2026-10-31"}).get_data(as_text=True)
    assert periods["summit"] in page and periods["year"] in page and periods["forum"] not in page
    assert "第十届“智汇丽水”人才科技峰会" in page and "2026-10-30" in page and 'value="2026-10-31"' in page
    odd = client.get("/registry/retirements", query_string={"period_from": "9999-12-31", "event_id": "x"})
    assert odd.status_code == 200  # an unreadable filter on the page is no filter, as with the retirement dates
    by_event = client.get("/registry/retirements", query_string={"event_id": str(forum)}).get_data(as_text=True)
    assert periods["forum"] in by_event and periods["summit"] not in by_event


def test_the_api_document_describes_the_period(app, client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert {"period_start", "period_end"} <= set(schemas["OrderIn"]["properties"])
    assert {"period_start", "period_end"} <= set(schemas["OrderOut"]["properties"])
    assert {"period_start", "period_end", "event_id", "event"} <= set(schemas["RetirementOut"]["properties"])
    assert {"period_start", "period_end", "event_id"} <= set(schemas["PublicCertificate"]["properties"])
    parameters = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/public/retirements"]["get"]["parameters"]
    assert {"period_from", "period_to", "event_id"} <= {p["name"] for p in parameters}


def test_the_command_prints_the_period_and_refuses_a_file_whose_period_was_edited(app, factory, runner, tmp_path):
    buyer = factory.user("buyer")
    listing = factory.listing()
    event_id = _event(app, buyer)
    number = _complete(app, _place(app, buyer, listing.id, event_id=event_id))
    _facts, _signature, pdf, _keys = _certificate(app, number)
    genuine = tmp_path / "genuine.pdf"
    genuine.write_bytes(pdf)
    result = runner.invoke(args=["certificates", "verify", str(genuine)])
    assert result.exit_code == 0 and "VALID" in result.output, result.output
    assert "period: 2026-10-30 to 2026-11-01" in result.output and f"(id {event_id})" in result.output

    signed = b'"period":{"end":"2026-11-01","start":"2026-10-30"}'
    assert pdf.count(signed) == 1
    edited = tmp_path / "edited.pdf"
    edited.write_bytes(pdf.replace(signed, b'"period":{"end":"2026-12-31","start":"2026-10-30"}'))
    result = runner.invoke(args=["certificates", "verify", str(edited)])
    assert result.exit_code == 1 and "INVALID" in result.output
