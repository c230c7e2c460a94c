"""Demo neutrality: the summit carried through every stage of the guideline — plan (boundary, route,
third-party evaluator), published, reductions, actual 175.402 t, Guanpuyang's eligible units retired,
coverage exactly 100.00 %, its reductions' achieved figures with evidence, an evaluation by the demo evaluator and the organiser's signed declaration —
and Jiaxing's forum mid-way: planned and published, but its credits (Zhailang's carbon-inclusion batch) are
not eligible for a large-event claim, so its coverage is 0.00 % and the reminders run for it.

Idempotent: each stage is done only if it is not done yet. Runs after the orders (their retirements are
what the coverage counts)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import sqlalchemy as sa
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from marketplace.core.pdf_fonts import cjk_font
from marketplace.demo.events import DEMO_EVENTS
from marketplace.demo.people import DemoOrganisation, ensure_organisation, ensure_user
from marketplace.footprint.models import Event
from marketplace.footprint.sources import SOURCE_CODES
from marketplace.neutrality import declarations, evidence
from marketplace.neutrality import service as neutrality

EVALUATOR = DemoOrganisation("evaluator", "evaluator", "浙江省低碳发展评价中心", "Zhejiang Low-carbon Evaluation Centre",
                             "12330000MB1738451", "evaluator@lishui.example", "周慧敏")

#: Sources the summit's footprint does not contain, and why (the guideline asks for the reason).
SUMMIT_LEFT_OUT = {
    "official_cars": "组委会公务用车纳入机关日常核算，未计入本次活动",
    "metro_travel": "丽水市无地铁",
    "private_car_travel": "未组织私家车出行，参会人员统一乘坐接驳车",
    "venue_stationary_fuel": "会场不使用化石燃料锅炉或发电机",
    "venue_heat": "会场无集中供热",
}
#: What the summit's reduction measures achieved (recorded after it) and the document proving each.
SUMMIT_ACHIEVED = {
    "电子会议手册替代部分纸质资料": ("0.521", "电子会议手册下载统计及印刷减量说明", "e-handbook.pdf", [
        "第十届“智汇丽水”人才科技峰会 电子会议手册", "电子手册下载 1,126 次；纸质手册印刷由 1,800 册减至 1,200 册。",
        "少用纸张 566.7 千克 × 0.9194 千克二氧化碳当量/千克 = 0.521 吨二氧化碳当量。"]),
    "鼓励高铁出行并统一安排新能源接驳车": ("5.876", "新能源接驳车租赁合同及行驶里程记录", "shuttles.pdf", [
        "丽水市公交集团 新能源接驳车租赁合同（摘要）及 10 月 30 日—11 月 1 日行驶里程记录",
        "纯电动大巴 12 辆，合计 4,210 车公里；较柴油大巴少排放 5.876 吨二氧化碳当量。"]),
}
#: The plan was made before the summit (30 Oct 2026), as the guideline's preparation stage asks.
SUMMIT_PLANNED_AT = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)


def _event(ctx, key: str) -> Event:
    spec = next(s for s in DEMO_EVENTS if s.key == key)
    org = ctx.organisations[key]
    return ctx.session.scalar(sa.select(Event).where(Event.organisation_id == org.id, Event.name == spec.name))


def _plan(ctx, key: str, *, left_out: dict[str, str], route: list[str], deadline: date | None = None,
          evaluator=None):
    s, actor, event = ctx.session, ctx.users[key], _event(ctx, key)
    plan = neutrality.plan_for(s, event.id)
    if plan is None:
        plan = neutrality.save_plan(s, actor, event.id, neutrality.PlanInput(
            boundary={code: (code not in left_out, left_out.get(code, "")) for code in SOURCE_CODES},
            offsetting_route=route, deadline=deadline, evaluation="third_party" if evaluator else "self",
            evaluator_organisation_id=evaluator.id if evaluator else None))
    neutrality.publish(s, actor, plan.id)
    return plan


def _evidence_pdf(lines: list[str]) -> bytes:
    """A one-page PDF standing for the organiser's scanned document."""
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.setFont(cjk_font(), 11)
    for i, line in enumerate(lines):
        page.drawString(60, 780 - 22 * i, line)
    page.showPage()
    page.save()
    return buffer.getvalue()


def _summit_reductions(ctx, plan) -> None:
    """What the summit's measures achieved and their evidence, before it is evaluated (then they are fixed)."""
    s, actor = ctx.session, ctx.users["summit"]
    if neutrality.declaration_of(s, plan.id, "evaluation") or neutrality.declaration_of(s, plan.id, "self"):
        return
    for measure in neutrality.reductions(s, plan.event_id):
        if measure.description not in SUMMIT_ACHIEVED:
            continue
        achieved, title, filename, lines = SUMMIT_ACHIEVED[measure.description]
        if measure.achieved_units is None:
            evidence.record_achieved(s, actor, plan.event_id, measure.id, achieved)
        if not measure.evidence:
            evidence.add_evidence(s, actor, plan.event_id, measure.id, title=title, filename=filename,
                                  data=_evidence_pdf(lines))
    s.flush()


def seed_neutrality(ctx) -> None:
    s = ctx.session
    evaluator = ensure_organisation(s, EVALUATOR)
    evaluator_user = ensure_user(s, evaluator, EVALUATOR.email, EVALUATOR.person)
    ctx.organisations["evaluator"], ctx.users["evaluator"] = evaluator, evaluator_user

    summit = _plan(ctx, "summit", left_out=SUMMIT_LEFT_OUT, route=["zhejiang_forestry"], evaluator=evaluator)
    if summit.created_at > SUMMIT_PLANNED_AT:
        # The demo is seeded after the story; its plan carries the day it was made in the story.
        summit.created_at = summit.updated_at = SUMMIT_PLANNED_AT
        summit.published_at = SUMMIT_PLANNED_AT
    if summit.actual_units is None:
        neutrality.record_actual(s, ctx.users["summit"], summit.id)
    s.flush()
    _summit_reductions(ctx, summit)
    declarations.evaluate(s, evaluator_user, summit, conclusion="conforms",
                          findings="核算边界覆盖指南所列排放源，未纳入项均说明理由；实际排放 175.402 吨已由官埔垟村"
                                   "合格林业碳汇全部抵消，注销证明齐全。")
    declarations.declare(s, ctx.users["summit"], summit)

    # Jiaxing: planned and published; its credits do not count for a large event yet, deadline approaching.
    jiaxing = _plan(ctx, "jiaxing", left_out={"official_cars": "无公务用车", "metro_travel": "嘉兴无地铁",
                                              "venue_stationary_fuel": "未使用", "venue_heat": "未使用"},
                    route=["zhejiang_forestry", "lishui_inclusive"], deadline=date(2027, 1, 31))
    if jiaxing.actual_units is None:
        neutrality.record_actual(s, ctx.users["jiaxing"], jiaxing.id)
    ctx.say("neutrality: the summit declared and evaluated at 100.00 %; Jiaxing's forum mid-way")
