"""The demo's events: the summit and the other buyers' events, with their activity lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from marketplace.demo.people import DemoContext
from marketplace.footprint import service as footprint
from marketplace.footprint.emission_factors import load_default_factors
from marketplace.footprint.models import Event

DEMO_EVENT_TOTALS = {
    "summit": 1_754_020,
    "province": 2_125_000,
    "hangzhou": 1_583_000,
    "jinhua": 1_311_914,
    "jiaxing": 1_280_000,
}


@dataclass(frozen=True)
class DemoEvent:
    key: str  # the buyer's key in ORGANISATIONS
    name: str
    starts_on: date
    ends_on: date
    location: str
    attendees: int
    boundary: str
    #: (category, factor code, quantity, description); the venue's kWh is what makes the total exact
    lines: list[tuple[str, str, str, str]]
    reductions: list[tuple[str, str, str | None]] = field(default_factory=list)
    #: factor code → the guideline's source its lines are recorded under; a code not here takes the source
    #: its factor names (transport.hsr → rail_travel …)
    sources: dict[str, str] = field(default_factory=dict)


_BOUNDARY = "活动筹备及举办期间：参会人员往返交通、住宿、餐饮、会场用能、会议资料及废弃物处理。"
DEMO_EVENTS = [
    DemoEvent("summit", "第十届“智汇丽水”人才科技峰会", date(2026, 10, 30), date(2026, 11, 1), "浙江省丽水市", 800,
              _BOUNDARY, [
                  ("transport", "transport.hsr", "312000", "600 人 × 260 km × 2（杭州、上海方向高铁）"),
                  ("transport", "transport.flight_medium", "360000", "120 人 × 1500 km × 2"),
                  ("transport", "transport.flight_long", "160000", "10 人 × 8000 km × 2（境外嘉宾）"),
                  ("transport", "transport.coach", "48000", "800 人 × 30 km × 2（接驳大巴）"),
                  ("transport", "transport.taxi", "18000", "150 人 × 60 km × 2"),
                  ("accommodation", "accommodation.hotel_room_night", "900", "450 间 × 2 晚"),
                  ("catering", "catering.meal_standard", "2400", "800 人 × 3 餐"),
                  ("catering", "catering.meal_meat_rich", "600", "欢迎晚宴"),
                  ("catering", "catering.meal_vegetarian", "200", ""),
                  ("catering", "catering.natural_gas", "1800", "酒店厨房燃气"),
                  ("venue", "venue.grid_east_2023", "34856.9", "会场及展区电表读数"),
                  ("materials", "materials.paper", "1200", "会议手册、海报"),
                  ("materials", "materials.plastic", "150", "胸牌、证件、展板"),
                  ("waste", "waste.landfill", "2500", ""),
                  ("waste", "waste.incineration", "1500", ""),
              ], [
                  ("materials", "电子会议手册替代部分纸质资料", "0.45"),
                  ("transport", "鼓励高铁出行并统一安排新能源接驳车", "6.2"),
              ], sources={
                  "transport.hsr": "rail_travel", "transport.flight_medium": "air_travel",
                  "transport.flight_long": "air_travel", "transport.coach": "coach_travel",
                  "transport.taxi": "taxi_travel", "accommodation.hotel_room_night": "accommodation",
                  "catering.meal_standard": "catering", "catering.meal_meat_rich": "catering",
                  "catering.meal_vegetarian": "catering", "catering.natural_gas": "catering",
                  "venue.grid_east_2023": "venue_electricity", "materials.paper": "materials",
                  "materials.plastic": "materials", "waste.landfill": "waste_landfill",
                  "waste.incineration": "waste_incineration"}),
    DemoEvent("province", "2026年浙江省机关事务工作会议", date(2026, 3, 18), date(2026, 3, 19), "浙江省杭州市", 1200,
              _BOUNDARY, [
                  ("transport", "transport.hsr", "700000", ""), ("transport", "transport.flight_medium", "420000", ""),
                  ("transport", "transport.coach", "96000", ""), ("transport", "transport.car", "42000", ""),
                  ("accommodation", "accommodation.hotel_room_night", "1500", ""),
                  ("catering", "catering.meal_standard", "6000", ""), ("catering", "catering.meal_meat_rich", "1200", ""),
                  ("catering", "catering.natural_gas", "2600", ""), ("venue", "venue.grid_east_2023", "13215.2", ""),
                  ("materials", "materials.paper", "2400", ""), ("materials", "materials.plastic", "300", ""),
                  ("waste", "waste.landfill", "4200", ""), ("waste", "waste.incineration", "2800", ""),
              ]),
    DemoEvent("hangzhou", "2026杭州低碳城市论坛", date(2026, 5, 20), date(2026, 5, 21), "浙江省杭州市", 900,
              _BOUNDARY, [
                  ("transport", "transport.metro", "120000", ""), ("transport", "transport.hsr", "640000", ""),
                  ("transport", "transport.flight_medium", "250000", ""), ("transport", "transport.taxi", "36000", ""),
                  ("accommodation", "accommodation.hotel_room_night", "1100", ""),
                  ("catering", "catering.meal_standard", "4500", ""), ("catering", "catering.meal_vegetarian", "900", ""),
                  ("catering", "catering.natural_gas", "2000", ""), ("venue", "venue.grid_east_2023", "20946.0", ""),
                  ("materials", "materials.paper", "1600", ""), ("materials", "materials.plastic", "220", ""),
                  ("waste", "waste.landfill", "3000", ""), ("waste", "waste.incineration", "2500", ""),
              ]),
    DemoEvent("jinhua", "2026金华生态文明建设推进会", date(2026, 6, 12), date(2026, 6, 13), "浙江省金华市", 700,
              _BOUNDARY, [
                  ("transport", "transport.hsr", "520000", ""), ("transport", "transport.flight_medium", "240000", ""),
                  ("transport", "transport.coach", "60000", ""), ("transport", "transport.car", "18000", ""),
                  ("accommodation", "accommodation.hotel_room_night", "900", ""),
                  ("catering", "catering.meal_standard", "3600", ""), ("catering", "catering.meal_meat_rich", "500", ""),
                  ("catering", "catering.natural_gas", "1500", ""), ("venue", "venue.grid_east_2023", "15651.0", ""),
                  ("materials", "materials.paper", "1100", ""), ("materials", "materials.plastic", "160", ""),
                  ("waste", "waste.landfill", "2400", ""), ("waste", "waste.incineration", "1800", ""),
              ]),
    DemoEvent("jiaxing", "2026嘉兴南湖绿色发展大会", date(2026, 9, 9), date(2026, 9, 10), "浙江省嘉兴市", 650,
              _BOUNDARY, [
                  ("transport", "transport.hsr", "560000", ""), ("transport", "transport.flight_medium", "200000", ""),
                  ("transport", "transport.coach", "50000", ""), ("transport", "transport.taxi", "20000", ""),
                  ("accommodation", "accommodation.hotel_room_night", "850", ""),
                  ("catering", "catering.meal_standard", "3300", ""), ("catering", "catering.meal_vegetarian", "600", ""),
                  ("catering", "catering.natural_gas", "1400", ""), ("venue", "venue.grid_east_2023", "26744.5", ""),
                  ("materials", "materials.paper", "1000", ""), ("materials", "materials.plastic", "140", ""),
                  ("waste", "waste.landfill", "2200", ""), ("waste", "waste.incineration", "1600", ""),
              ]),
]


def seed_emission_factors(ctx: DemoContext) -> None:
    added = load_default_factors(ctx.session)
    ctx.say(f"emission factors: {added} added")


def ensure_event(ctx: DemoContext, spec: DemoEvent) -> Event:
    org = ctx.organisations[spec.key]
    event = ctx.session.scalar(sa.select(Event).where(Event.organisation_id == org.id, Event.name == spec.name))
    if event is not None:
        return event
    actor = ctx.users[spec.key]
    event = footprint.create_event(ctx.session, actor, name=spec.name, starts_on=spec.starts_on,
                                   ends_on=spec.ends_on, location=spec.location, attendees=spec.attendees,
                                   organiser=org.name, boundary=spec.boundary)
    footprint.add_activities(ctx.session, actor, event.id, [
        footprint.ActivityInput(category, code, quantity, description, spec.sources.get(code, ""))
        for category, code, quantity, description in spec.lines])
    for category, description, estimate in spec.reductions:
        footprint.add_reduction(ctx.session, actor, event.id, category=category, description=description,
                                estimated_tonnes=estimate)
    return event


def seed_events(ctx: DemoContext) -> None:
    for spec in DEMO_EVENTS:
        event = ensure_event(ctx, spec)
        total = footprint.event_total_units(ctx.session, event.id)
        if total != DEMO_EVENT_TOTALS[spec.key]:
            # Only if the bureau has replaced a factor the demo uses before the demo was seeded.
            raise RuntimeError(f"demo event {spec.name}: {total} units, expected {DEMO_EVENT_TOTALS[spec.key]}")
    ctx.say(f"events: {len(DEMO_EVENTS)}")
