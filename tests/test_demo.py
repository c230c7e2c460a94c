"""The demo tells the story exactly: 175.402 t for the summit, 629.9914 t for the others, 805.3934 t in all,
completed through the real services with verifiable certificates, and a second run changes nothing."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.certificates.models import Certificate
from marketplace.certificates.service import verify_certificate_record
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.orders.models import Order
from marketplace.registry import ledger
from marketplace.registry.models import LedgerEntry, Project, SerialRange


def test_the_story_in_figures(app):
    with app.app_context():
        demo.seed_demo(db.session)
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
        demo.seed_demo(db.session)  # idempotent
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == entries

        by_buyer = dict(db.session.execute(
            sa.select(Organisation.name, Order.quantity_units).join(Organisation, Organisation.id ==
                                                                    Order.buyer_organisation_id)
            .where(Order.status == "completed")).all())
        summit = by_buyer.pop("第十届“智汇丽水”人才科技峰会组委会")
        assert summit == 1_754_020  # 175.402 t
        assert sum(by_buyer.values()) == 6_299_914  # 629.9914 t
        assert set(by_buyer) == {"浙江省机关事务管理局", "杭州市生态环境局", "金华市生态环境局", "嘉兴市生态环境局"}
        retired = db.session.scalar(sa.select(sa.func.sum(SerialRange.end - SerialRange.start))
                                    .where(SerialRange.kind == "retirement"))
        assert retired == 8_053_934  # 805.3934 t, serial by serial
        summit_order = db.session.scalar(sa.select(Order).join(Organisation, Organisation.id ==
                                                               Order.buyer_organisation_id)
                                         .where(Organisation.name == "第十届“智汇丽水”人才科技峰会组委会"))
        assert {line.listing.batch.project.village.name for line in summit_order.lines} == {"官埔垟村"}
        for certificate in db.session.scalars(sa.select(Certificate)):
            assert verify_certificate_record(db.session, certificate.number)["valid"]
        report = ledger.check_invariants(db.session)
        assert report.ok, report.problems
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Project)) == 4


def test_the_public_retirement_registry_searches_the_story(app, client):
    with app.app_context():
        demo.seed_demo(db.session)
    body = client.get("/api/v1/public/retirements").get_json()
    assert body["total"] == 5
    assert sum(int(r["quantity_tonnes"].replace(".", "")) for r in body["items"]) == 8_053_934
    summit = client.get("/api/v1/public/retirements", query_string={"beneficiary": "智汇丽水"}).get_json()["items"]
    assert [r["quantity_tonnes"] for r in summit] == ["175.4020"]
    assert summit[0]["villages"] == ["龙泉市 › 兰巨乡 › 官埔垟村"]
    assert sum(s["units"] for s in summit[0]["serial_ranges"]) == 1_754_020
    assert client.get("/api/v1/public/retirements", query_string={"village": "斋郎"}).get_json()["total"] == 1
    assert client.get("/api/v1/public/retirements", query_string={"buyer": "无此机构"}).get_json()["total"] == 0
    assert client.get("/api/v1/public/retirements", query_string={"from": "2999-01-01"}).get_json()["total"] == 0
    assert client.get("/api/v1/public/retirements", query_string={"per_page": "0"}).status_code == 422
    page = client.get("/registry/retirements", query_string={"village": "官埔垟"}).get_data(as_text=True)
    assert page.count("/verify/TH-") == 3 and "175.4020" in page
    number = summit[0]["certificate_number"]
    assert client.get(f"/api/v1/public/certificates/{number}").get_json()["valid"] is True


def test_the_storys_retirements_cover_their_events_days(app, client):
    """Each story order covers its event's days (the summit: 30 Oct – 1 Nov 2026), signed on its certificate,
    and the registry's period filter finds the summit alone on 31 October."""
    from marketplace.demo.events import DEMO_EVENTS

    with app.app_context():
        demo.seed_demo(db.session)
    days = {spec.name: (spec.starts_on.isoformat(), spec.ends_on.isoformat()) for spec in DEMO_EVENTS}
    rows = client.get("/api/v1/public/retirements").get_json()["items"]
    assert {row["event"]: (row["period_start"], row["period_end"]) for row in rows} == days
    assert days["第十届“智汇丽水”人才科技峰会"] == ("2026-10-30", "2026-11-01")
    for row in rows:
        facts = client.get(f"/api/v1/public/certificates/{row['certificate_number']}").get_json()["facts"]
        assert facts["period"] == {"start": row["period_start"], "end": row["period_end"]}
        assert facts["event_id"] == row["event_id"] and facts["purpose"] == "event"
    found = client.get("/api/v1/public/retirements", query_string={"period_from": "2026-10-31",
                                                                   "period_to": "2026-10-31"}).get_json()["items"]
    assert [row["event"] for row in found] == ["第十届“智汇丽水”人才科技峰会"]
    disclosed = client.get(f"/api/v1/public/events/{found[0]['event_id']}").get_json()["retirements"]
    assert {(r["period_start"], r["period_end"]) for r in disclosed} == {("2026-10-30", "2026-11-01")}


def test_a_neutralised_event_can_no_longer_change(app):
    from marketplace.accounts.models import User
    from marketplace.core.errors import InvalidTransition
    from marketplace.footprint import service as footprint
    from marketplace.footprint.models import Event

    with app.app_context():
        ctx = demo.seed_demo(db.session)
        summit = db.session.scalar(sa.select(Event).where(Event.name == "第十届“智汇丽水”人才科技峰会"))
        user = db.session.get(User, ctx.users["summit"].id)
        try:
            footprint.add_activity(db.session, user, summit.id, footprint.ActivityInput(
                "waste", "waste.landfill", "1", ""))
        except InvalidTransition:
            pass
        else:
            raise AssertionError("the neutralised summit's footprint changed")
        assert footprint.event_total_units(db.session, summit.id) == 1_754_020


def test_the_buyers_are_told_by_mail_once_in_their_language(app):
    from pathlib import Path

    from marketplace.accounts.models import User
    from marketplace.certificates import notifications
    from marketplace.orders.models import Order

    with app.app_context():
        demo.seed_demo(db.session)
        order = db.session.scalar(sa.select(Order).where(Order.beneficiary == "第十届“智汇丽水”人才科技峰会"))
        db.session.execute(sa.update(Order).values(notified_at=None))
        db.session.execute(sa.update(User).where(User.organisation_id == order.buyer_organisation_id)
                           .values(locale="en"))
        db.session.commit()
        mail = Path(app.instance_path) / "mail"
        before = set(mail.glob("*.eml")) if mail.exists() else set()
        assert notifications.certificate_ready(db.session, order.id) == 1
        assert notifications.certificate_ready(db.session, order.id) == 0  # once
        (written,) = set(mail.glob("*.eml")) - before
        text = written.read_text()
        assert "is ready" in text and "summit@lishui.example" in text and "/verify/TH-" in text


def test_a_neutralised_events_pages_stay_open_and_read_only(app, client, login):
    """The summit was neutralised: its page, report and PDF still open for its buyer, without the forms
    that would change it; a line sent anyway is refused with a message and changes nothing."""
    from marketplace.footprint import service as footprint
    from marketplace.footprint.models import Event
    from tests.conftest import CsrfClient

    with app.app_context():
        ctx = demo.seed_demo(db.session)
        summit_id = db.session.scalar(sa.select(Event.id).where(Event.name == "第十届“智汇丽水”人才科技峰会"))
        email = ctx.users["summit"].email
    login(email, demo.DEMO_PASSWORD)
    page = client.get(f"/buyers/events/{summit_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "该活动的碳足迹已付款中和，不能再修改。" in html and "175.4020" in html
    assert f"/buyers/events/{summit_id}/lines" not in html and "submission_key" not in html
    assert "/buyers/orders/" in html  # the paid order is linked
    assert client.get(f"/buyers/events/{summit_id}/report").status_code == 200
    pdf = client.get(f"/buyers/events/{summit_id}/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    refused = CsrfClient(client).post_form(f"/buyers/events/{summit_id}", {
        "line-category": "waste", "line-factor_code": "waste.landfill", "line-quantity": "1"},
        action=f"/buyers/events/{summit_id}/lines")
    assert refused.status_code == 409 and "不能再修改" in refused.get_data(as_text=True)
    with app.app_context():
        assert footprint.event_total_units(db.session, summit_id) == 1_754_020


def test_the_summit_is_carried_through_every_stage_of_the_guideline(app, client):
    from marketplace.neutrality.models import Declaration, NeutralityPlan

    with app.app_context():
        demo.seed_demo(db.session)
        demo.seed_demo(db.session)  # idempotent: no second plan, declaration or evaluation
        assert db.session.scalar(sa.select(sa.func.count()).select_from(NeutralityPlan)) == 2
        assert sorted(db.session.scalars(sa.select(Declaration.kind))) == ["evaluation", "self"]
        summit_event = db.session.scalar(sa.select(NeutralityPlan.event_id).where(
            NeutralityPlan.evaluation == "third_party"))
    summit = client.get(f"/api/v1/public/events/{summit_event}").get_json()
    assert summit["actual_tco2e"] == "175.4020" and summit["retired_tonnes"] == "175.4020"
    assert summit["coverage_percent"] == "100.00"
    assert summit["declaration"]["kind"] == "evaluation" and summit["declaration"]["valid"]
    assert summit["retirements"][0]["villages"] == ["龙泉市 › 兰巨乡 › 官埔垟村"]
    events = {e["name"]: e for e in client.get("/api/v1/public/events").get_json()}
    jiaxing = events["2026嘉兴南湖绿色发展大会"]
    assert jiaxing["coverage_percent"] == "0.00" and jiaxing["declaration"] is None
    eligible = client.get("/api/v1/listings", query_string={"event_eligible": "true"}).get_json()
    assert "斋郎村" not in {row["village"] for row in eligible}


def test_the_summits_lines_carry_their_sources_and_its_reductions_their_achievements_and_evidence(app, client):
    from marketplace.footprint.models import ActivityLine, ReductionEvidence
    from marketplace.neutrality.models import NeutralityPlan

    with app.app_context():
        demo.seed_demo(db.session)
        demo.seed_demo(db.session)  # idempotent: no second evidence document
        plan = db.session.scalar(sa.select(NeutralityPlan).where(NeutralityPlan.evaluation == "third_party"))
        sources = dict(db.session.execute(sa.select(ActivityLine.source, sa.func.sum(ActivityLine.emissions_units))
                                          .where(ActivityLine.event_id == plan.event_id)
                                          .group_by(ActivityLine.source)).all())
        assert sum(sources.values()) == plan.actual_units == plan.planned_units == 1_754_020
        assert plan.actual_by_source == plan.planned_by_source == {k: int(v) for k, v in sources.items()}
        assert sources["venue_electricity"] == 191_713 and sources["coach_travel"] > 0
        assert {"rail_travel", "air_travel", "taxi_travel", "waste_landfill", "waste_incineration"} <= set(sources)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReductionEvidence)) == 2
        event_id = plan.event_id
    body = client.get(f"/api/v1/public/events/{event_id}").get_json()
    assert body["actual_tco2e"] == "175.4020"
    assert sum(int(row["actual_tco2e"].replace(".", "")) for row in body["by_source"]) == 1_754_020
    assert all(row["in_boundary"] for row in body["by_source"])
    achieved = {r["description"]: r for r in body["reductions"]}
    assert achieved["电子会议手册替代部分纸质资料"]["achieved_tco2e"] == "0.5210"
    assert achieved["鼓励高铁出行并统一安排新能源接驳车"]["estimated_tco2e"] == "6.2000"
    document = achieved["鼓励高铁出行并统一安排新能源接驳车"]["evidence"][0]
    assert document["title"] == "新能源接驳车租赁合同及行驶里程记录" and document["content_type"] == "application/pdf"
    assert client.get(document["download"]).data.startswith(b"%PDF-")


def test_the_story_settles_to_the_fen_and_reaches_guanpuyang_households(app, client):
    from marketplace.core.quantities import fen
    from marketplace.settlement import journal, money_check, public_benefit
    from marketplace.settlement.models import Distribution, MoneyEntry, Payout

    with app.app_context():
        demo.seed_demo(db.session)
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(MoneyEntry))
        demo.seed_demo(db.session)  # idempotent
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MoneyEntry)) == entries
        assert money_check.check_invariants(db.session) == []
        paid = sum(fen(o.amount_cny) for o in db.session.scalars(sa.select(Order).where(Order.status == "completed")))
        assert -journal.balance(db.session, journal.BUYERS) == paid
        payout = db.session.scalar(sa.select(Payout))
        assert payout.status == "paid" and payout.seller.name == "龙泉市兰巨乡官埔垟村股份经济合作社"
        distribution = db.session.scalar(sa.select(Distribution))
        to_households = sum(line.amount_fen for line in distribution.lines)
        assert distribution.collective_fen + to_households == payout.amount_fen
        assert public_benefit.household_distributions_fen(db.session) == to_households
        sold = sum(r.sold_units for r in public_benefit.village_benefits(db.session))
        assert sold == 8_053_934  # 805.3934 t
    answer = client.get("/api/v1/public/villages").get_json()
    guanpuyang = next(v for v in answer["items"] if v["name"] == "官埔垟村")
    assert guanpuyang["paid_out_cny"] == f"{payout.amount_fen / 100:.2f}"
    assert guanpuyang["distributed_cny"] == f"{to_households / 100:.2f}"
    assert guanpuyang["households"] == 12
