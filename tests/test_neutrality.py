"""Event neutralisation as the guideline asks: plan (boundary, route, deadline, evaluator), publish, actual
footprint, coverage by eligible units (exact, with top-ups), declaration and evaluation (signed PDFs verified
offline), reminders and overdue, the public disclosure page and its JSON."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.accounts.models import User
from marketplace.certificates import retirement
from marketplace.certificates.pdf import verify_pdf
from marketplace.certificates.signing import public_keys
from marketplace.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.footprint import emission_factors
from marketplace.footprint import service as footprint
from marketplace.neutrality import coverage as coverage_of
from marketplace.neutrality import declarations, reminders
from marketplace.neutrality import service as neutrality
from marketplace.neutrality.guideline import SOURCE_CODES
from marketplace.neutrality.models import Declaration, NeutralityPlan, NeutralityReminder
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from tests.conftest import CsrfClient

#: 1 kWh of this factor = 1 t CO2e, so activity quantities read as tonnes.
FACTOR = "venue.test_tonne"


def _factor(session):
    if emission_factors.current_factor(session, FACTOR) is None:
        emission_factors.publish_factor(session, None, code=FACTOR, category="venue", name_zh="测试因子",
                                        name_en="Test factor", unit="kWh", kgco2e_per_unit="1000",
                                        source="test", year=2026)


def _actor(session, user):
    return session.get(User, user.id)


def make_event(app, buyer, tonnes: str = "175.402", *, starts_on="2026-10-30", ends_on="2026-11-01",
               reductions=()):
    with app.app_context():
        _factor(db.session)
        actor = _actor(db.session, buyer)
        event = footprint.create_event(db.session, actor, name=f"测试峰会{buyer.id}", starts_on=starts_on,
                                       ends_on=ends_on, location="丽水", attendees=300, organiser="峰会组委会")
        footprint.add_activity(db.session, actor, event.id, footprint.ActivityInput("venue", FACTOR, tonnes))
        for tonnes_saved in reductions:
            footprint.add_reduction(db.session, actor, event.id, category="venue", description="光伏供电",
                                    estimated_tonnes=tonnes_saved)
        db.session.commit()
        return event.id


def full_boundary(**left_out):
    return {code: (code not in left_out, left_out.get(code, "")) for code in SOURCE_CODES}


def plan_input(**overrides):
    values = dict(boundary=full_boundary(venue_heat="会场无集中供热"), offsetting_route=["zhejiang_forestry"],
                  deadline=None, evaluation="self")
    values.update(overrides)
    return neutrality.PlanInput(**values)


def make_plan(app, buyer, event_id, **overrides):
    with app.app_context():
        plan = neutrality.save_plan(db.session, _actor(db.session, buyer), event_id, plan_input(**overrides))
        db.session.commit()
        return plan.id


def complete_order(app, buyer, event_id, tonnes, *, listing_id, purpose="event", finish=True, refund=False):
    with app.app_context():
        order = orders.place_order(db.session, actor=_actor(db.session, buyer), units=parse_tonnes(tonnes),
                                   payment_method="bank_transfer", beneficiary="峰会", retirement_reason="碳中和",
                                   listing_id=listing_id, event_id=event_id, purpose=purpose)
        db.session.commit()
        order_id = order.id
        assert orders.mark_paid(db.session, order_id, note="test", bank_reference=f"R{order_id}")
        db.session.commit()
        if refund:
            orders.cancel(db.session, db.session.get(Order, order_id), actor=_actor(db.session, buyer))
            db.session.commit()
            return order_id
        if finish:
            retirement.retire_order(db.session, order_id)
            db.session.commit()
            retirement.generate_certificate(db.session, order_id)
        return order_id


@pytest.fixture
def market(factory):
    bureau = factory.user("bureau")
    eligible = factory.listing(factory.batch(factory.project(bureau=bureau), tonnes="5000", bureau=bureau,
                                             scheme="zhejiang_forestry", event_eligible=True), tonnes="4000")
    plain = factory.listing(factory.batch(factory.project(bureau=bureau), tonnes="5000", bureau=bureau),
                            tonnes="4000")
    return SimpleNamespace(bureau=bureau, eligible=eligible, plain=plain)


# --- the plan --------------------------------------------------------------------------------------

def test_a_plan_keeps_its_boundary_footprint_route_and_a_deadline_a_year_after_the_event(app, factory):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, "180")
    plan_id = make_plan(app, buyer, event_id)
    with app.app_context():
        plan = db.session.get(NeutralityPlan, plan_id)
        assert plan.planned_units == parse_tonnes("180") and plan.planned_by_category["venue"] == parse_tonnes("180")
        assert plan.boundary["venue_heat"] == {"included": False, "reason": "会场无集中供热"}
        assert plan.boundary["venue_electricity"] == {"included": True, "reason": ""}
        assert plan.deadline == date(2027, 11, 1) and plan.offsetting_route == ["zhejiang_forestry"]


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"boundary": {code: (False, "不适用") for code in SOURCE_CODES}}, "boundary", "至少纳入一个排放源"),
    ({"boundary": full_boundary(venue_heat="")}, "reason-venue_heat", "说明"),
    ({"offsetting_route": []}, "offsetting_route", "抵消"),
    ({"deadline": date(2020, 1, 1)}, "deadline", "已过"),
    ({"evaluation": "third_party"}, "evaluator_organisation_id", "评价机构"),
])
def test_bad_plans_are_refused_in_chinese_and_change_nothing(app, factory, overrides, field, message):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer)
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        with pytest.raises(ValidationFailed) as refused:
            neutrality.save_plan(db.session, _actor(db.session, buyer), event_id, plan_input(**overrides))
        assert refused.value.field == field and message in str(refused.value.message)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(NeutralityPlan)) == 0


def test_reductions_larger_than_the_estimate_are_refused(app, factory):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, "10", reductions=("8", "5"))
    with app.app_context(), pytest.raises(ValidationFailed) as refused:
        neutrality.save_plan(db.session, _actor(db.session, buyer), event_id, plan_input())
    assert refused.value.field == "reductions"


def test_another_organisation_cannot_plan_or_see_the_event(app, factory):
    buyer, other = factory.user("buyer"), factory.user("buyer")
    event_id = make_event(app, buyer)
    plan_id = make_plan(app, buyer, event_id)
    with app.app_context():
        with pytest.raises(NotFound):
            neutrality.save_plan(db.session, _actor(db.session, other), event_id, plan_input())
        with pytest.raises(NotFound):
            neutrality.publish(db.session, _actor(db.session, other), plan_id)


# --- coverage --------------------------------------------------------------------------------------

def test_coverage_counts_eligible_completed_event_orders_only_and_the_top_up_is_the_exact_difference(
        app, factory, market):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer)
    plan_id = make_plan(app, buyer, event_id)
    with app.app_context():
        neutrality.record_actual(db.session, _actor(db.session, buyer), plan_id)
        db.session.commit()
    complete_order(app, buyer, event_id, "100", listing_id=market.eligible.id)
    complete_order(app, buyer, event_id, "50", listing_id=market.plain.id)            # not eligible
    complete_order(app, buyer, event_id, "20", listing_id=market.eligible.id, purpose="voluntary")
    complete_order(app, buyer, event_id, "30", listing_id=market.eligible.id, finish=False)  # still paid
    with app.app_context():
        cover = coverage_of.of_plan(db.session, db.session.get(NeutralityPlan, plan_id))
        assert (cover.eligible_units, cover.ineligible_units) == (parse_tonnes("100"), parse_tonnes("50"))
        assert cover.percent_text == "57.01"  # 100 / 175.402 = 57.0119…, cut
        assert cover.shortfall_units == parse_tonnes("75.402") and not cover.complete
    complete_order(app, buyer, event_id, "75.402", listing_id=market.eligible.id)
    with app.app_context():
        cover = coverage_of.of_plan(db.session, db.session.get(NeutralityPlan, plan_id))
        assert cover.percent_text == "100.00" and cover.complete and cover.shortfall_units == 0


def test_a_coverage_a_hair_below_100_percent_never_shows_100(app):
    cover = coverage_of.Coverage(footprint_units=1_754_020, eligible_units=1_754_019, ineligible_units=0)
    assert cover.percent_text == "99.99" and not cover.complete and cover.shortfall_units == 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["eligible", "plain", "refund", "voluntary"]),
                                # at ¥30/t an order comes to at least ¥1.00 (the smallest order) from 334 units
                                st.integers(min_value=334, max_value=400_000)), min_size=1, max_size=4),
       footprint_units=st.integers(min_value=1, max_value=2_000_000))
def test_coverage_equals_retired_eligible_units_over_the_footprint_exactly(app, factory, market, steps,
                                                                           footprint_units):
    """Random orders, top-ups and refunds: coverage is exactly the eligible units of completed event orders
    over the footprint, and the top-up is exactly what is missing."""
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, "1")
    expected = 0
    for kind, units in steps:
        tonnes = f"{units // 10000}.{units % 10000:04d}"
        listing = market.plain.id if kind == "plain" else market.eligible.id
        complete_order(app, buyer, event_id, tonnes, listing_id=listing,
                       purpose="voluntary" if kind == "voluntary" else "event", refund=kind == "refund")
        if kind == "eligible":
            expected += units
    with app.app_context():
        cover = coverage_of.coverage(db.session, event_id=event_id, footprint_units=footprint_units)
    assert cover.eligible_units == expected
    assert cover.ratio * footprint_units == expected
    assert cover.percent * 100 == (expected * 10000) // footprint_units  # cut to 0.01 %, exactly
    assert cover.shortfall_units == max(0, footprint_units - expected)
    assert cover.complete == (expected >= footprint_units)


# --- declaration and evaluation --------------------------------------------------------------------

def _neutralised(app, factory, market, *, evaluator=None):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer)
    extra = {"evaluation": "third_party", "evaluator_organisation_id": evaluator.organisation_id} if evaluator else {}
    plan_id = make_plan(app, buyer, event_id, **extra)
    with app.app_context():
        actor = _actor(db.session, buyer)
        neutrality.publish(db.session, actor, plan_id)
        neutrality.record_actual(db.session, actor, plan_id)
        db.session.commit()
    return buyer, event_id, plan_id


def test_a_declaration_below_100_percent_or_with_ineligible_units_is_refused(app, factory, market):
    buyer, event_id, plan_id = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.plain.id)  # all ineligible
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        plan = db.session.get(NeutralityPlan, plan_id)
        with pytest.raises(InvalidTransition) as refused:
            declarations.declare(db.session, _actor(db.session, buyer), plan)
        assert "0.00" in str(refused.value.message) and "不计入" in str(refused.value.message)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Declaration)) == 0


def test_the_declaration_pdf_verifies_offline_and_a_tampered_one_fails(app, factory, market, runner, tmp_path):
    buyer, event_id, plan_id = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)
    with app.app_context():
        plan = db.session.get(NeutralityPlan, plan_id)
        declaration = declarations.declare(db.session, _actor(db.session, buyer), plan)
        again = declarations.declare(db.session, _actor(db.session, buyer), plan)
        db.session.commit()
        assert again.id == declaration.id and declaration.number.startswith("THN-")
        facts = json.loads(declaration.facts_json)
        assert facts["coverage_percent"] == "100.00" and facts["retired_tonnes"] == "175.4020"
        assert declarations.is_valid(db.session, declaration)
        path = declarations.pdf_file(declaration)
        keys = public_keys(db.session)
        assert verify_pdf(path, keys)[0]
        number = declaration.number
    result = runner.invoke(args=["certificates", "verify", str(path)])
    assert result.exit_code == 0, result.output

    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(str(path))
    record = json.loads(reader.attachments["certificate.json"][0])
    record["facts"]["coverage_percent"] = "200.00"
    tampered_pdf = io.BytesIO()
    fresh = PdfWriter()
    for page in reader.pages:
        fresh.add_page(page)
    fresh.add_attachment("certificate.json", json.dumps(record).encode())
    fresh.write(tampered_pdf)
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(tampered_pdf.getvalue())
    result = runner.invoke(args=["certificates", "verify", str(tampered)])
    assert result.exit_code == 1 and "INVALID" in result.output

    client = app.test_client()
    page = client.get(f"/neutrality/declarations/{number}").get_data(as_text=True)
    assert number in page and "100.00" in page


def test_a_declaration_whose_pages_differ_from_its_genuine_record_fails_offline(app, factory, market, tmp_path):
    """The genuine signed record attached to pages drawn from other figures (a 100 % page over a record of
    less, an edited evaluator) must not verify: the pages are drawn again from the record and compared."""
    from marketplace.certificates import pdf as certificate_pdf

    buyer, event_id, plan_id = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)
    with app.app_context():
        declaration = declarations.declare(db.session, _actor(db.session, buyer),
                                           db.session.get(NeutralityPlan, plan_id))
        db.session.commit()
        facts, signature = json.loads(declaration.facts_json), declaration.signature
        url = declarations.verify_url_for(declaration.number)
        keys = public_keys(db.session)
        genuine = tmp_path / "genuine.pdf"
        genuine.write_bytes(declarations.render_pdf(facts, signature, url))
        ok, reason = verify_pdf(genuine, keys)
        assert ok, reason
        record = {"algorithm": "Ed25519", "facts": facts, "signature": signature}
        edited = dict(facts, footprint_tonnes="17.5402", event=dict(facts["event"], organiser="别的单位"))
        forged = tmp_path / "forged.pdf"
        forged.write_bytes(certificate_pdf.attach_signed_record(
            declarations.render_pages(edited, signature, url), record))
        ok, reason = verify_pdf(forged, keys)
        assert not ok and ("page 1 differs" in reason or "第 1 页不同" in reason), reason
        # Another registry's address printed under the genuine record is refused too.
        elsewhere = tmp_path / "elsewhere.pdf"
        elsewhere.write_bytes(declarations.render_pdf(facts, signature, url.replace("://", "://evil.")))
        assert not verify_pdf(elsewhere, keys)[0]


def test_an_evaluator_sees_only_its_assigned_event_and_evaluates_it(app, factory, market):
    evaluator = factory.user("evaluator")
    other_evaluator = factory.user("evaluator")
    buyer, event_id, plan_id = _neutralised(app, factory, market, evaluator=evaluator)
    _other_buyer, _other_event, other_plan = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)
    with app.app_context():
        actor = _actor(db.session, evaluator)
        with pytest.raises(NotFound):
            neutrality.visible_plan(db.session, actor, other_plan)
        with pytest.raises(NotFound):
            neutrality.visible_plan(db.session, _actor(db.session, other_evaluator), plan_id)
        plan = neutrality.visible_plan(db.session, actor, plan_id)
        with pytest.raises(Forbidden):
            neutrality.own_plan(db.session, actor, plan_id)  # reads the dossier, cannot change the plan
        with pytest.raises(Forbidden):
            declarations.evaluate(db.session, _actor(db.session, other_evaluator), plan, conclusion="conforms",
                                  findings="")
        evaluation = declarations.evaluate(db.session, actor, plan, conclusion="conforms", findings="边界完整")
        db.session.commit()
        assert evaluation.kind == "evaluation" and declarations.is_valid(db.session, evaluation)


def test_an_evaluator_opening_another_event_gets_404_on_the_page(app, factory, market, client, login):
    evaluator = factory.user("evaluator")
    _buyer, _event_id, plan_id = _neutralised(app, factory, market)  # not assigned to this evaluator
    login(evaluator.email)
    assert client.get(f"/evaluators/plans/{plan_id}").status_code == 404
    assert client.get("/evaluators/").status_code == 200


# --- reminders -------------------------------------------------------------------------------------

def test_reminders_at_90_30_and_7_days_once_each_then_overdue_for_the_bureau(app, factory, market, tmp_path):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer)
    plan_id = make_plan(app, buyer, event_id, deadline=date(2027, 11, 1))
    deadline = date(2027, 11, 1)
    with app.app_context():
        assert reminders.run(db.session, on=deadline - timedelta(days=120)) == {"reminded": 0, "overdue": 0}
        assert reminders.run(db.session, on=deadline - timedelta(days=90))["reminded"] == 1
        assert reminders.run(db.session, on=deadline - timedelta(days=89))["reminded"] == 0  # once
        assert reminders.run(db.session, on=deadline - timedelta(days=30))["reminded"] == 1
        assert reminders.run(db.session, on=deadline - timedelta(days=6))["reminded"] == 1
        assert reminders.run(db.session, on=deadline + timedelta(days=1)) == {"reminded": 0, "overdue": 1}
        assert reminders.run(db.session, on=deadline + timedelta(days=2)) == {"reminded": 0, "overdue": 0}
        days = sorted(db.session.scalars(sa.select(NeutralityReminder.days_before)
                                         .where(NeutralityReminder.plan_id == plan_id)))
        assert days == [0, 7, 30, 90]
        assert db.session.get(NeutralityPlan, plan_id).overdue_at is not None


# --- pages and the public contract -----------------------------------------------------------------

def test_the_organiser_plans_publishes_and_the_public_json_follows_design_5(app, factory, market, client, login):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer)
    login(buyer.email)
    page = f"/buyers/events/{event_id}/neutrality"
    csrf = CsrfClient(client)
    form = {f"source-{code}": "1" for code in SOURCE_CODES}
    del form["source-venue_heat"]
    refused = csrf.post_form(page, {**form, "offsetting_route": "zhejiang_forestry", "evaluation": "self"})
    assert refused.status_code == 422 and "请说明该排放源未纳入边界的原因" in refused.get_data(as_text=True)
    saved = csrf.post_form(page, {**form, "reason-venue_heat": "无集中供热", "offsetting_route": "zhejiang_forestry",
                                  "evaluation": "self"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert client.get(f"/api/v1/public/events/{event_id}").status_code == 404  # not published yet
    assert csrf.post_form(page, {}, action=f"{page}/publish").status_code == 302
    assert csrf.post_form(page, {}, action=f"{page}/actual").status_code == 302
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)
    assert csrf.post_form(page, {}, action=f"{page}/declare").status_code == 302

    body = client.get(f"/api/v1/public/events/{event_id}").get_json()
    for key in ("name", "organiser", "starts_on", "ends_on", "boundary", "planned_tco2e", "actual_tco2e",
                "by_category", "retired_tonnes", "coverage_percent", "deadline", "certificates", "declaration"):
        assert key in body, key
    assert body["coverage_percent"] == "100.00" and body["actual_tco2e"] == "175.4020"
    assert body["declaration"]["kind"] == "self" and body["declaration"]["valid"] is True
    assert len(body["certificates"]) == 1 and body["retirements"][0]["serial_ranges"]
    listed = client.get("/api/v1/public/events?year=2026").get_json()
    assert [e["id"] for e in listed] == [event_id]
    assert client.get("/api/v1/public/events?year=2025").get_json() == []
    assert client.get("/api/v1/public/events?organiser=峰会组委会").get_json()[0]["id"] == event_id
    html = client.get(f"/neutrality/events/{event_id}").get_data(as_text=True)
    assert "100.00 %" in html and body["declaration"]["number"] in html
    assert body["declaration"]["number"] in client.get("/neutrality/events").get_data(as_text=True)


def test_the_api_document_describes_the_new_fields_and_calls(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/public/events", "/api/v1/public/events/{event_id}"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert "coverage_percent" in schemas["PublicEventOut"]["properties"]
    assert {"purpose", "eligible_only"} <= set(schemas["OrderIn"]["properties"])
    assert {"scheme", "event_eligible", "methodology_code"} <= set(schemas["BatchIn"]["properties"])
    assert "purpose" in schemas["RetirementOut"]["properties"]


@pytest.mark.postgres
def test_a_declaration_signed_twice_at_once_is_one_declaration_and_one_number(app, factory, market):
    from marketplace.neutrality.models import DeclarationCounter
    from tests.test_certificates import _in_threads

    buyer, event_id, plan_id = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)

    def declare_once(_i):
        plan = db.session.get(NeutralityPlan, plan_id)
        declaration = declarations.declare(db.session, _actor(db.session, buyer), plan)
        db.session.commit()
        return declaration.number

    numbers = _in_threads(app, 4, declare_once)
    assert len(set(numbers)) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Declaration)) == 1
        assert db.session.scalar(sa.select(DeclarationCounter.last_number)) == 1


# --- sources and reductions achieved, with their evidence ------------------------------------------

def _pdf(text: str = "evidence") -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.showPage()
    page.save()
    return buffer.getvalue()


def test_the_plan_keeps_its_versions_by_source_and_the_public_json_compares_them(app, factory, market, client):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, "100")
    with app.app_context():
        actor = _actor(db.session, buyer)
        footprint.add_activity(db.session, actor, event_id, footprint.ActivityInput(
            "venue", FACTOR, "20", "备用发电机", "venue_stationary_fuel"))
        db.session.commit()
    plan_id = make_plan(app, buyer, event_id)
    with app.app_context():
        plan = db.session.get(NeutralityPlan, plan_id)
        # FACTOR names no source: its lines default to the venue's first, stationary fuel
        assert plan.planned_by_source == {"venue_stationary_fuel": 1_200_000}
        actor = _actor(db.session, buyer)
        footprint.add_activity(db.session, actor, event_id, footprint.ActivityInput(
            "venue", FACTOR, "5", "", "venue_heat"))  # a source the plan left out
        footprint.add_activity(db.session, actor, event_id, footprint.ActivityInput(
            "venue", FACTOR, "3", "", "venue_electricity"))
        neutrality.publish(db.session, actor, plan_id)
        neutrality.record_actual(db.session, actor, plan_id)
        db.session.commit()
        plan = db.session.get(NeutralityPlan, plan_id)
        assert plan.actual_by_source == {"venue_stationary_fuel": 1_200_000, "venue_electricity": 30_000,
                                         "venue_heat": 50_000}
        assert sum(plan.actual_by_source.values()) == plan.actual_units == 1_280_000
        comparison = neutrality.plan_vs_actual(plan)
        assert [(r.code, r.planned, r.actual, r.in_boundary) for r in comparison.sources_in("venue")] == [
            ("venue_stationary_fuel", 1_200_000, 1_200_000, True), ("venue_electricity", 0, 30_000, True),
            ("venue_heat", 0, 50_000, False)]
        assert comparison.outside_boundary == ["venue_heat"]
        assert footprint.outside_boundary(db.session, event_id) == ["venue_heat"]
    body = client.get(f"/api/v1/public/events/{event_id}").get_json()
    assert body["by_category"]["venue"] == {"planned_tco2e": "120.0000", "actual_tco2e": "128.0000"}
    by_source = {row["source"]: row for row in body["by_source"]}
    assert list(by_source) == ["venue_stationary_fuel", "venue_electricity", "venue_heat"]
    heat = by_source["venue_heat"]
    assert (heat["category"], heat["planned_tco2e"], heat["actual_tco2e"], heat["in_boundary"]) == (
        "venue", "0.0000", "5.0000", False)
    assert heat["name"] == "外购热力" and heat["accounting_basis"]
    assert by_source["venue_stationary_fuel"]["in_boundary"] is True
    html = client.get(f"/neutrality/events/{event_id}").get_data(as_text=True)
    assert 'data-source="venue_heat"' in html and "不在计划核算边界内" in html


def test_the_event_page_and_the_dossier_warn_of_lines_outside_the_boundary(app, factory, client, login):
    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, "100")
    make_plan(app, buyer, event_id, boundary=full_boundary(venue_stationary_fuel="未使用化石燃料"))
    login(buyer.email)
    page = client.get(f"/buyers/events/{event_id}").get_data(as_text=True)
    assert 'id="outside-boundary"' in page and "固定源化石燃料" in page
    dossier = client.get(f"/buyers/events/{event_id}/neutrality").get_data(as_text=True)
    assert 'id="outside-boundary"' in dossier


def _evidence_post(client, event_id, measure_id, *, title="电费单", data=None, filename="bill.pdf"):
    page = f"/buyers/events/{event_id}/neutrality"
    token = CsrfClient(client).csrf_token(page)
    return client.post(f"{page}/reductions/{measure_id}/evidence", content_type="multipart/form-data", data={
        "csrf_token": token, f"title-{measure_id}": title,
        f"file-{measure_id}": (io.BytesIO(_pdf() if data is None else data), filename)})


def _measure_of(app, event_id):
    from marketplace.footprint.models import ReductionMeasure

    with app.app_context():
        return db.session.scalar(sa.select(ReductionMeasure.id).where(ReductionMeasure.event_id == event_id))


@pytest.mark.parametrize("typed, message", [
    ("-1", "实际减排量不能为负数"), ("1.23456", "最多保留 4 位小数"), ("", "请填写该措施实际减排"),
    ("abc", "请输入以吨为单位的数字"), ("2000000", "单项措施最多 1,000,000 吨"),
])
def test_a_bad_achieved_figure_is_a_form_error_and_changes_nothing(app, factory, client, login, typed, message):
    from marketplace.footprint.models import ReductionMeasure

    buyer = factory.user("buyer")
    event_id = make_event(app, buyer, reductions=["2"])
    make_plan(app, buyer, event_id)
    measure_id = _measure_of(app, event_id)
    login(buyer.email)
    page = f"/buyers/events/{event_id}/neutrality"
    refused = CsrfClient(client).post_form(page, {f"achieved-{measure_id}": typed},
                                           action=f"{page}/reductions/{measure_id}/achieved")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and message in html, html[-2000:]
    assert f'id="achieved-{measure_id}-error"' in html and f'value="{typed}"' in html
    with app.app_context():
        assert db.session.get(ReductionMeasure, measure_id).achieved_units is None


def test_reductions_achieved_and_their_evidence_for_the_organiser_the_evaluator_and_the_public(
        app, factory, market, client, login):
    from marketplace.footprint.models import ReductionEvidence, ReductionMeasure

    evaluator, other_evaluator = factory.user("evaluator"), factory.user("evaluator")
    buyer, other_buyer = factory.user("buyer"), factory.user("buyer")
    event_id = make_event(app, buyer, reductions=["2"])
    plan_id = make_plan(app, buyer, event_id, evaluation="third_party",
                        evaluator_organisation_id=evaluator.organisation_id)
    measure_id = _measure_of(app, event_id)
    page = f"/buyers/events/{event_id}/neutrality"

    # another organisation's measure, or a measure of another event: 404, nothing changed
    other_event = make_event(app, other_buyer, reductions=["1"])
    make_plan(app, other_buyer, other_event)
    login(other_buyer.email)
    csrf = CsrfClient(client)
    assert csrf.post_form(f"/buyers/events/{other_event}/neutrality", {f"achieved-{measure_id}": "1"},
                          action=f"{page}/reductions/{measure_id}/achieved").status_code == 404
    assert csrf.post_form(f"/buyers/events/{other_event}/neutrality", {f"achieved-{measure_id}": "1"},
                          action=f"/buyers/events/{other_event}/neutrality/reductions/{measure_id}/achieved"
                          ).status_code == 404
    assert _evidence_post(client, other_event, measure_id).status_code == 404
    client.post("/logout", data={"csrf_token": csrf.csrf_token("/")})

    login(buyer.email)
    csrf = CsrfClient(client)
    # more than estimated is fine: a measure may do better than planned
    done = csrf.post_form(page, {f"achieved-{measure_id}": "2.5"}, action=f"{page}/reductions/{measure_id}/achieved")
    assert done.status_code == 302
    again = csrf.post_form(page, {f"achieved-{measure_id}": "2.5000"}, action=f"{page}/reductions/{measure_id}/achieved")
    assert again.status_code == 302  # the same figure again changes nothing
    for kwargs, message in [({"data": b"<html>not a pdf</html>"}, "只接受 PDF"), ({"title": " "}, "请为材料填写标题"),
                            ({"data": b""}, "请选择要上传的文件")]:
        refused = _evidence_post(client, event_id, measure_id, **kwargs)
        assert refused.status_code == 422 and message in refused.get_data(as_text=True), message
    app.config["UPLOAD_MAX_MB"] = 1
    try:
        refused = _evidence_post(client, event_id, measure_id, data=_pdf() + b"%" * (1024 * 1024))
        assert refused.status_code == 422 and "文件太大：最多 1 MB" in refused.get_data(as_text=True)
    finally:
        app.config["UPLOAD_MAX_MB"] = 10
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReductionEvidence)) == 0
    assert _evidence_post(client, event_id, measure_id, title="光伏发电量记录").status_code == 302
    with app.app_context():
        measure = db.session.get(ReductionMeasure, measure_id)
        assert measure.achieved_units == 25_000 and measure.achieved_recorded_at is not None
        document = measure.evidence[0]
        assert (document.title, document.content_type, document.original_name) == ("光伏发电量记录", "application/pdf",
                                                                                   "bill.pdf")
        evidence_id = document.id
    dossier = client.get(page).get_data(as_text=True)
    assert "光伏发电量记录" in dossier and "2.5000 t" in dossier and "超过预计" in dossier
    download = client.get(f"{page}/evidence/{evidence_id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert client.get(f"/buyers/events/{other_event}/neutrality/evidence/{evidence_id}").status_code == 404
    # the public sees it once the plan is published
    client.post("/logout", data={"csrf_token": csrf.csrf_token("/")})
    assert client.get(f"/neutrality/events/{event_id}/evidence/{evidence_id}").status_code == 404
    with app.app_context():
        neutrality.publish(db.session, _actor(db.session, buyer), plan_id)
        db.session.commit()
    body = client.get(f"/api/v1/public/events/{event_id}").get_json()
    reduction = body["reductions"][0]
    assert reduction["estimated_tco2e"] == "2.0000" and reduction["achieved_tco2e"] == "2.5000"
    listed = reduction["evidence"][0]
    assert (listed["title"], listed["content_type"]) == ("光伏发电量记录", "application/pdf")
    assert listed["size_bytes"] == len(_pdf()) and listed["uploaded_at"]
    assert client.get(listed["download"]).data.startswith(b"%PDF-")
    html = client.get(f"/neutrality/events/{event_id}").get_data(as_text=True)
    assert "光伏发电量记录" in html and f"/neutrality/events/{event_id}/evidence/{evidence_id}" in html
    assert client.get(f"/neutrality/events/{other_event}/evidence/{evidence_id}").status_code == 404
    # the assigned evaluator reads it; another evaluator gets 404
    login(other_evaluator.email)
    assert client.get(f"/evaluators/plans/{plan_id}/evidence/{evidence_id}").status_code == 404
    client.post("/logout", data={"csrf_token": CsrfClient(client).csrf_token("/")})
    login(evaluator.email)
    assert "光伏发电量记录" in client.get(f"/evaluators/plans/{plan_id}").get_data(as_text=True)
    assert client.get(f"/evaluators/plans/{plan_id}/evidence/{evidence_id}").data.startswith(b"%PDF-")


def test_achieved_figures_wait_for_the_event_and_freeze_once_it_is_declared(app, factory, market):
    from marketplace.neutrality import evidence

    buyer = factory.user("buyer")
    future = (date.today() + timedelta(days=40)).isoformat()
    early = make_event(app, buyer, starts_on=future, ends_on=future, reductions=["1"])
    make_plan(app, buyer, early)
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        with pytest.raises(InvalidTransition) as refused:
            evidence.record_achieved(db.session, _actor(db.session, buyer), early, _measure_of(app, early), "1")
        assert "活动举办后" in str(refused.value.message)
    buyer, event_id, plan_id = _neutralised(app, factory, market)
    complete_order(app, buyer, event_id, "175.402", listing_id=market.eligible.id)
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        from marketplace.footprint.models import ReductionMeasure

        actor = _actor(db.session, buyer)
        measure = ReductionMeasure(event_id=event_id, category="venue", description="光伏")
        db.session.add(measure)
        db.session.commit()
        evidence.record_achieved(db.session, actor, event_id, measure.id, "0")
        declarations.declare(db.session, actor, db.session.get(NeutralityPlan, plan_id))
        db.session.commit()
        for call in (lambda: evidence.record_achieved(db.session, actor, event_id, measure.id, "1"),
                     lambda: evidence.add_evidence(db.session, actor, event_id, measure.id, title="t",
                                                   filename="a.pdf", data=_pdf())):
            with pytest.raises(InvalidTransition) as refused:
                call()
            assert "不能再修改" in str(refused.value.message)
        assert db.session.get(ReductionMeasure, measure.id).achieved_units == 0
