"""Demo neutrality: the summit carried through every stage of the guideline — plan (boundary, route,
third-party evaluator), published, reductions, actual 175.402 t, Guanpuyang's eligible units retired,
coverage exactly 100.00 %, an evaluation by the demo evaluator and the organiser's signed declaration —
and Jiaxing's forum mid-way: planned and published, but its credits (Zhailang's carbon-inclusion batch) are
not eligible for a large-event claim, so its coverage is 0.00 % and the reminders run for it.

Idempotent: each stage is done only if it is not done yet. Runs after the orders (their retirements are
what the coverage counts)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketplace.demo.events import DEMO_EVENTS
from marketplace.demo.people import DemoOrganisation, ensure_organisation, ensure_user
from marketplace.footprint.models import Event
from marketplace.neutrality import declarations
from marketplace.neutrality import service as neutrality
from marketplace.neutrality.guideline import SOURCE_CODES

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
