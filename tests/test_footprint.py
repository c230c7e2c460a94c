"""Event footprints: exact arithmetic, one rounding rule, versioned factors, all-or-nothing input."""

from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from marketplace.accounts.models import User
from marketplace.core.errors import Forbidden, NotFound, ValidationFailed
from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.emission_factors import (
    current_factor,
    load_default_factors,
    publish_factor,
    retire_factor,
)
from marketplace.footprint.models import ActivityLine, EmissionFactor, Event
from marketplace.footprint.service import ActivityInput, line_units


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


def _user(session, user_id):
    return session.get(User, user_id)


def _event(session, actor, **overrides):
    fields = dict(name="测试会议", starts_on="2026-10-30", ends_on="2026-11-01", location="丽水", attendees=100)
    fields.update(overrides)
    return footprint.create_event(session, actor, **fields)


# --- arithmetic and the rounding rule ----------------------------------------------------------------

def test_line_arithmetic_by_hand():
    # 34,856.9 kWh × 0.55 kg/kWh = 19,171.295 kg = 19.171295 t → 19.1713 t
    assert line_units(Decimal("34856.9"), Decimal("0.5500")) == 191_713
    # 900 room-nights × 53.5 kg = 48,150 kg = 48.15 t exactly
    assert line_units(Decimal("900"), Decimal("53.5")) == 481_500
    # 312,000 pkm × 0.03549 = 11,072.88 kg → 11.0729 t (half-up of 11.07288)
    assert line_units(Decimal("312000"), Decimal("0.03549")) == 110_729


def test_rounding_is_half_up_at_the_fifth_place_of_a_tonne():
    # 0.05 kg = 0.00005 t: exactly half a unit rounds up; a hair less rounds down
    assert line_units(Decimal("1"), Decimal("0.05")) == 1
    assert line_units(Decimal("1"), Decimal("0.04999999")) == 0
    assert line_units(Decimal("1"), Decimal("0.15")) == 2  # 0.00015 t → 0.0002 (half-up, not banker's)
    assert line_units(Decimal("1"), Decimal("0.25")) == 3


def test_total_is_the_sum_of_rounded_lines_so_the_breakdown_adds_up(app, factors, factory):
    buyer = factory.user("buyer")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        event = _event(db.session, actor)
        # 0.1071 kg × 0.467 = 0.0500157 kg = 0.0000500157 t per line, which rounds up to 0.0001 t.
        # Three lines: 0.0003 t, although the exact sum (0.00015 t) would round to 0.0002 t.
        footprint.add_activities(db.session, actor, event.id, [
            ActivityInput("waste", "waste.landfill", "0.1071")] * 3)
        db.session.commit()
        breakdown = footprint.event_breakdown(db.session, event.id)
        assert breakdown.by_category["waste"] == 3
        footprint.add_activity(db.session, actor, event.id, ActivityInput("venue", "venue.grid_cn_2022", "1000"))
        footprint.add_activity(db.session, actor, event.id, ActivityInput("transport", "transport.coach", "10"))
        breakdown = footprint.event_breakdown(db.session, event.id)
        # 1000 kWh × 0.5366 = 536.6 kg = 0.5366 t; 10 pkm × 0.02733 = 0.2733 kg = 0.00027 t → 0.0003 t
        assert breakdown.by_category["venue"] == 5366 and breakdown.by_category["transport"] == 3
        assert breakdown.total_units == sum(breakdown.by_category.values()) == 5372
        assert footprint.event_total_units(db.session, event.id) == 5372


def test_the_summit_adds_up_to_exactly_175_402_and_the_other_buyers_to_629_9914(app):
    with app.app_context():
        ctx = demo.seed_demo(db.session)
        events = {spec.key: db.session.scalar(sa.select(Event).where(
            Event.organisation_id == ctx.organisations[spec.key].id, Event.name == spec.name))
            for spec in demo.DEMO_EVENTS}
        totals = {key: footprint.event_total_units(db.session, e.id) for key, e in events.items()}
        assert totals["summit"] == 1_754_020 == demo.DEMO_EVENT_TOTALS["summit"]
        assert sum(totals[k] for k in ("province", "hangzhou", "jinhua", "jiaxing")) == 6_299_914
        assert totals == demo.DEMO_EVENT_TOTALS
        summit = footprint.event_breakdown(db.session, events["summit"].id)
        assert all(summit.by_category[c] > 0 for c in summit.by_category)  # all six categories
        assert ctx.organisations["summit"].kind == "buyer"
        # idempotent: a second run adds nothing
        demo.seed_demo(db.session)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 5
        assert db.session.scalar(sa.select(sa.func.count()).select_from(EmissionFactor)) == 23


# --- factor versioning -------------------------------------------------------------------------------

def test_old_events_keep_old_factor_values_after_a_new_version(app, factors, factory):
    buyer, bureau = factory.user("buyer"), factory.user("bureau")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        event = _event(db.session, actor)
        footprint.add_activity(db.session, actor, event.id, ActivityInput("venue", "venue.grid_east_2023", "10000"))
        db.session.commit()
        assert footprint.event_total_units(db.session, event.id) == 55_000  # 10,000 × 0.55 kg = 5.5 t

        old = current_factor(db.session, "venue.grid_east_2023")
        new = publish_factor(db.session, _user(db.session, bureau.id), code="venue.grid_east_2023",
                             category="venue", name_zh=old.name_zh, name_en=old.name_en, unit="kWh",
                             kgco2e_per_unit="0.6", source="corrected", year=2023)
        db.session.commit()
        assert new.version == 2 and old.retired_at is not None
        assert current_factor(db.session, "venue.grid_east_2023").id == new.id

        assert footprint.event_total_units(db.session, event.id) == 55_000
        assert footprint.recompute_event_units(db.session, event.id) == 55_000
        line = db.session.scalar(sa.select(ActivityLine).where(ActivityLine.event_id == event.id))
        assert line.factor.version == 1 and line.factor.kgco2e_per_unit == Decimal("0.55")

        second = footprint.add_activity(db.session, actor, event.id,
                                        ActivityInput("venue", "venue.grid_east_2023", "10000"))
        assert second.factor_id == new.id and second.emissions_units == 60_000


def test_a_retired_factor_is_refused_for_new_lines_but_kept_by_old_ones(app, factors, factory):
    buyer, bureau = factory.user("buyer"), factory.user("bureau")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        event = _event(db.session, actor)
        footprint.add_activity(db.session, actor, event.id, ActivityInput("waste", "waste.landfill", "1000"))
        retire_factor(db.session, _user(db.session, bureau.id), current_factor(db.session, "waste.landfill").id)
        db.session.commit()
        with pytest.raises(ValidationFailed) as exc:
            footprint.add_activity(db.session, actor, event.id, ActivityInput("waste", "waste.landfill", "1"))
        with force_locale("en"):
            assert exc.value.field == "factor_code" and "retired" in str(exc.value.message)
        assert footprint.event_total_units(db.session, event.id) == 4670


def test_only_the_bureau_changes_the_library(app, factors, factory):
    buyer = factory.user("buyer")
    with app.app_context():
        with pytest.raises(Forbidden):
            publish_factor(db.session, _user(db.session, buyer.id), code="venue.x", category="venue", name_zh="x",
                           name_en="x", unit="kWh", kgco2e_per_unit="1", source="s", year=2023)


@pytest.mark.postgres
def test_postgres_refuses_to_change_a_published_factor(app, factors):
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="cannot change"):
            db.session.execute(sa.update(EmissionFactor).where(EmissionFactor.code == "waste.landfill")
                               .values(kgco2e_per_unit=Decimal("1")))
            db.session.flush()
        db.session.rollback()


def test_publishing_validates_its_fields(app, factors, factory):
    bureau = factory.user("bureau")
    with app.app_context():
        actor = _user(db.session, bureau.id)
        base = dict(code="venue.grid_test", category="venue", name_zh="测试", name_en="Test", unit="kWh",
                    kgco2e_per_unit="0.5", source="test", year=2024)
        for change, field in [({"code": "Grid Test"}, "code"), ({"code": "waste.grid_test"}, "code"),
                              ({"kgco2e_per_unit": "-1"}, "kgco2e_per_unit"),
                              ({"kgco2e_per_unit": "0.123456789"}, "kgco2e_per_unit"),
                              ({"kgco2e_per_unit": "1e3"}, "kgco2e_per_unit"),
                              ({"unit": "parsec"}, "unit"), ({"source": " "}, "source"), ({"year": "1850"}, "year")]:
            with pytest.raises(ValidationFailed) as exc:
                publish_factor(db.session, actor, **{**base, **change})
            assert exc.value.field == field, change


def test_every_shipped_factor_cites_a_source_and_a_year(app, factors):
    with app.app_context():
        rows = db.session.scalars(sa.select(EmissionFactor)).all()
        codes = {f.code: f for f in rows}
        assert codes["venue.grid_cn_2022"].kgco2e_per_unit == Decimal("0.5366")
        assert codes["venue.grid_cn_2023"].kgco2e_per_unit == Decimal("0.5306")
        assert "华东" in codes["venue.grid_east_2023"].name_zh
        for f in rows:
            assert f.source.strip() and 1990 <= f.year <= 2100, f.code
            assert f.code.startswith(f.category + ".")
            if "DESNZ" in f.source or "Scarborough" in f.source:
                assert "No Chinese official" in f.source, f.code  # says so where no Chinese source


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("activity, field, words", [
    (ActivityInput("venue", "venue.grid_cn_2023", "-5"), "quantity", "positive"),
    (ActivityInput("venue", "venue.grid_cn_2023", "0"), "quantity", "greater than zero"),
    (ActivityInput("venue", "venue.grid_cn_2023", "1.23456"), "quantity", "4 decimal"),
    (ActivityInput("venue", "venue.grid_cn_2023", "abc"), "quantity", "digits"),
    (ActivityInput("venue", "venue.grid_cn_2023", "１２"), "quantity", "digits"),
    (ActivityInput("venue", "venue.grid_cn_2023", "NaN"), "quantity", "digits"),
    (ActivityInput("venue", "venue.grid_cn_2023", 1.5), "quantity", "decimal string"),
    (ActivityInput("venue", "venue.grid_cn_2023", "2000000000"), "quantity", "implausibly large"),
    (ActivityInput("accommodation", "accommodation.hotel_room_night", "999999999"), "quantity", "million tonnes"),
    (ActivityInput("venue", "venue.no_such_factor", "1"), "factor_code", "Unknown emission factor"),
    (ActivityInput("transport", "venue.grid_cn_2023", "1"), "factor_code", "belongs to"),
    (ActivityInput("parking", "venue.grid_cn_2023", "1"), "category", "Unknown category"),
])
def test_bad_activities_are_refused_with_a_field(app, factors, factory, activity, field, words):
    buyer = factory.user("buyer")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        event = _event(db.session, actor)
        with pytest.raises(ValidationFailed) as exc:
            footprint.add_activity(db.session, actor, event.id, activity)
        with force_locale("en"):
            assert exc.value.field == field and words in str(exc.value.message)


@pytest.mark.parametrize("change, field", [
    ({"ends_on": "2026-10-29"}, "ends_on"),
    ({"starts_on": "2026-13-01"}, "starts_on"),
    ({"starts_on": "1899-01-01"}, "starts_on"),
    ({"ends_on": "2028-01-01"}, "ends_on"),
    ({"name": "  "}, "name"),
    ({"location": ""}, "location"),
    ({"attendees": "-3"}, "attendees"),
    ({"attendees": "lots"}, "attendees"),
    ({"name": "x" * 201}, "name"),
])
def test_bad_event_fields_are_refused(app, factory, change, field):
    buyer = factory.user("buyer")
    with app.app_context():
        with pytest.raises(ValidationFailed) as exc:
            _event(db.session, _user(db.session, buyer.id), **change)
        assert exc.value.field == field


def test_one_bad_activity_saves_nothing(app, factors, factory):
    buyer = factory.user("buyer")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        with pytest.raises(ValidationFailed) as exc:
            footprint.create_event_with_activities(
                db.session, actor, name="x", starts_on="2026-01-01", ends_on="2026-01-01", location="y",
                activities=[ActivityInput("venue", "venue.grid_cn_2023", "100"),
                            ActivityInput("venue", "venue.grid_cn_2023", "-1")])
        assert exc.value.field == "activities[1].quantity"
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ActivityLine)) == 0


def test_helpers_multiply_common_cases(app, factors, factory):
    buyer = factory.user("buyer")
    with app.app_context():
        actor = _user(db.session, buyer.id)
        event = _event(db.session, actor)
        travel = footprint.add_travel(db.session, actor, event.id, factor_code="transport.hsr", travellers="600",
                                      distance_km="260", round_trip=True)
        assert travel.quantity == 312_000 and travel.emissions_units == 110_729
        rooms = footprint.add_room_nights(db.session, actor, event.id, factor_code="accommodation.hotel_room_night",
                                          rooms="450", nights="2")
        assert rooms.quantity == 900 and rooms.emissions_units == 481_500
        meals = footprint.add_meals(db.session, actor, event.id, factor_code="catering.meal_standard",
                                    people="800", meals_each="3")
        assert meals.quantity == 2400 and meals.emissions_units == 45_041  # 2400 × 1.8767 = 4504.08 kg
        venue = footprint.add_venue_energy(db.session, actor, event.id, factor_code="venue.grid_east_2023",
                                           kwh="34856.9")
        assert venue.emissions_units == 191_713
        with pytest.raises(ValidationFailed) as exc:
            footprint.add_travel(db.session, actor, event.id, factor_code="transport.hsr", travellers="-1",
                                 distance_km="10")
        assert exc.value.field == "travellers"
        with pytest.raises(ValidationFailed) as exc:
            footprint.add_travel(db.session, actor, event.id, factor_code="transport.hsr", travellers="1",
                                 distance_km="50000")
        assert exc.value.field == "distance_km"


def test_another_organisations_event_is_not_found(app, factors, factory):
    owner, other, bureau = factory.user("buyer"), factory.user("buyer"), factory.user("bureau")
    with app.app_context():
        event = _event(db.session, _user(db.session, owner.id))
        db.session.commit()
        with pytest.raises(NotFound):
            footprint.add_activity(db.session, _user(db.session, other.id), event.id,
                                   ActivityInput("venue", "venue.grid_cn_2023", "1"))
        with pytest.raises(NotFound):
            footprint.visible_event(db.session, _user(db.session, other.id), event.id)
        assert footprint.visible_event(db.session, _user(db.session, bureau.id), event.id).id == event.id
        with pytest.raises(Forbidden):
            footprint.editable_event(db.session, _user(db.session, bureau.id), event.id)
