"""Event footprints under the MEE 《大型活动碳中和实施指南（试行）》 (2019).

emissions = activity data × emission factor, in six categories. The one rounding rule:

    each line's kg = quantity × factor, exact (Decimal, 50 significant digits, never float);
    each line's tCO2e = kg / 1000 rounded HALF-UP to 4 places, stored as integer units (0.0001 t);
    a category's total and the event's total are sums of those rounded lines.

So the breakdown always adds up to the total, and the total is what an order neutralises. A line
keeps the factor version it was computed with, so the result reproduces after the library changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import User
from marketplace.core.access import get_scoped
from marketplace.core.db import max_length
from marketplace.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from marketplace.core.i18n import current_language
from marketplace.core.quantities import (
    UNITS_PER_TONNE,
    DecimalInput,
    decimal_to_units,
    parse_decimal,
    parse_tonnes,
)
from marketplace.core.signals import ask
from marketplace.footprint.emission_factors import current_factor
from marketplace.footprint.models import CATEGORIES, ActivityLine, EmissionFactor, Event, ReductionMeasure
from marketplace.footprint.signals import event_boundary, event_locking_orders
from marketplace.footprint.sources import BY_CODE, SOURCES, default_source, source_name

CATEGORY_LABELS = {
    "transport": _l("Transport"),
    "catering": _l("Catering"),
    "accommodation": _l("Accommodation"),
    "venue": _l("Venue"),
    "materials": _l("Meeting materials"),
    "waste": _l("Waste disposal"),
}
UNIT_LABELS = {
    "kWh": _l("kWh"), "passenger-km": _l("passenger-km"), "vehicle-km": _l("vehicle-km"),
    "room-night": _l("room-night"), "meal": _l("meal"), "kg": _l("kg"), "m³": _l("m³"), "t": _l("t"),
    "L": _l("L"),
}

#: Activity data above this is a typing slip, not an event (1 billion kWh, passenger-km, meals …).
MAX_ACTIVITY_QUANTITY = Decimal("1000000000")
#: No single line of an event emits more than a million tonnes; beyond that the input is wrong.
MAX_LINE_UNITS = 1_000_000 * UNITS_PER_TONNE
MAX_ATTENDEES = 1_000_000
#: Events longer than a year are campaigns, not events; dates outside this window are typos.
MAX_EVENT_DAYS = 366
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
#: Helpers multiply counts; each count is bounded so a product cannot run away.
MAX_COUNT = 1_000_000
MAX_DISTANCE_KM = Decimal("40000")

ACTIVITY_QUANTITY = DecimalInput(
    places=4, integer_digits=13, maximum=MAX_ACTIVITY_QUANTITY,
    malformed=_l("Enter the quantity with digits and at most 4 decimal places."),
    missing=_l("Enter the activity quantity, e.g. 34856.9."), blank_is_missing=True,
    not_text=_l("Send the quantity as a decimal string, e.g. \"34856.9\"."), too_precise=_l("At most 4 decimal places."),
    negative=_l("The quantity must be positive."), zero=_l("The quantity must be greater than zero."),
    too_large=_l("The quantity is implausibly large (at most %(max)s).", max="1,000,000,000"))
_HALF_UP_PLACES = Decimal("0.0001")


def category_label(code: str) -> str:
    return str(CATEGORY_LABELS.get(code, code))


def unit_label(unit: str) -> str:
    return str(UNIT_LABELS.get(unit, unit))


# --- arithmetic --------------------------------------------------------------------------------------

def line_kg(quantity: Decimal, kgco2e_per_unit: Decimal) -> Decimal:
    """A line's kg CO2e, exact: the product of two decimals with ≤ 4 and ≤ 8 places fits in 50 digits."""
    with localcontext() as ctx:
        ctx.prec = 50
        return Decimal(quantity) * Decimal(kgco2e_per_unit)


def line_units(quantity: Decimal, kgco2e_per_unit: Decimal) -> int:
    """A line's tCO2e in integer units: kg / 1000, rounded half-up to 4 places (the one rule)."""
    with localcontext() as ctx:
        ctx.prec = 50
        tonnes = (line_kg(quantity, kgco2e_per_unit) / 1000).quantize(_HALF_UP_PLACES, rounding=ROUND_HALF_UP)
    return decimal_to_units(tonnes)


def parse_activity_quantity(raw, field: str = "quantity") -> Decimal:
    """Activity data (kWh, passenger-km, meals …): positive, at most 4 decimal places, ASCII digits.

    Accepts a decimal string, an int or a Decimal. Floats are refused (the API and forms send strings;
    spreadsheet numbers are converted by their shortest representation before they reach here).
    """
    return parse_decimal(raw, ACTIVITY_QUANTITY, field)


# --- events ------------------------------------------------------------------------------------------

def _require_buyer(actor: User) -> None:
    if actor.role != "buyer":
        raise Forbidden(_l("Only buyer organisations record event footprints."))


def _text(value, field: str, column, required_message=None) -> str:
    """Text for a column, stripped; at most as long as the column takes."""
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if required_message is not None and not text:
        raise ValidationFailed(required_message, field)
    limit = max_length(column)
    if len(text) > limit:
        raise ValidationFailed(_l("At most %(n)d characters.", n=limit), field)
    return text


def _date(value, field: str) -> date:
    if isinstance(value, date):
        result = value
    else:
        try:
            result = date.fromisoformat(str(value or "").strip())
        except ValueError:
            raise ValidationFailed(_l("Enter a date as YYYY-MM-DD."), field) from None
    if not EARLIEST_YEAR <= result.year <= LATEST_YEAR:
        raise ValidationFailed(_l("Enter a date between %(first)d and %(last)d.", first=EARLIEST_YEAR,
                                  last=LATEST_YEAR), field)
    return result


def _count(value, field: str, *, maximum: int = MAX_COUNT, allow_zero: bool = False, required: bool = True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed(_l("Enter a whole number."), field)
        return None
    if isinstance(value, bool):
        raise ValidationFailed(_l("Enter a whole number."), field)
    text = str(value).strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise ValidationFailed(_l("Enter a whole number."), field)
    number = int(text)
    if number < 0 or (number == 0 and not allow_zero):
        raise ValidationFailed(_l("Enter a number greater than zero."), field)
    if number > maximum:
        raise ValidationFailed(_l("At most %(max)d.", max=maximum), field)
    return number


def _event_fields(name, starts_on, ends_on, location, attendees, organiser, boundary) -> dict:
    values = {
        "name": _text(name, "name", Event.name, _l("Enter the event's name.")),
        "starts_on": _date(starts_on, "starts_on"),
        "ends_on": _date(ends_on, "ends_on"),
        "location": _text(location, "location", Event.location, _l("Enter where the event takes place.")),
        "attendees": _count(attendees, "attendees", maximum=MAX_ATTENDEES, allow_zero=True, required=False),
        "organiser": _text(organiser, "organiser", Event.organiser),
        "boundary": _text(boundary, "boundary", Event.boundary),
    }
    if values["ends_on"] < values["starts_on"]:
        raise ValidationFailed(_l("The event cannot end before it starts."), "ends_on")
    if (values["ends_on"] - values["starts_on"]).days >= MAX_EVENT_DAYS:
        raise ValidationFailed(_l("An event lasts at most a year."), "ends_on")
    return values


def create_event(session: so.Session, actor: User, *, name, starts_on, ends_on, location, attendees=None,
                 organiser="", boundary="") -> Event:
    """A new event of the actor's (buyer) organisation."""
    _require_buyer(actor)
    event = Event(organisation_id=actor.organisation_id, created_by_id=actor.id,
                  **_event_fields(name, starts_on, ends_on, location, attendees, organiser, boundary))
    session.add(event)
    session.flush()
    return event


def update_event(session: so.Session, actor: User, event_id, *, name, starts_on, ends_on, location,
                 attendees=None, organiser="", boundary="") -> Event:
    """Correct an event's facts until an order paid for its footprint (then they are on a certificate)."""
    event = editable_event(session, actor, event_id)
    for column, value in _event_fields(name, starts_on, ends_on, location, attendees, organiser, boundary).items():
        setattr(event, column, value)
    session.flush()
    return event


def own_event(session: so.Session, actor: User, event_id) -> Event:
    """The event if it belongs to the actor's buyer organisation; otherwise NotFound (Forbidden if not a buyer)."""
    _require_buyer(actor)
    return get_scoped(session, Event, event_id, actor, bureau_sees_all=False)


def locking_orders(session: so.Session, event_id: int) -> list:
    """The event's orders that fix its footprint (paid, retiring or completed), oldest first."""
    return ask(event_locking_orders, session=session, event_id=event_id) or []


def plan_boundary(session: so.Session, event_id: int) -> frozenset[str] | None:
    """The sources the event's neutrality plan includes, or None without a plan."""
    return ask(event_boundary, session=session, event_id=event_id)


def outside_boundary(session: so.Session, event_id: int, breakdown: Breakdown | None = None) -> list[str]:
    """Sources with lines that the event's plan leaves out of its boundary (empty without a plan)."""
    boundary = plan_boundary(session, event_id)
    if boundary is None:
        return []
    breakdown = breakdown or event_breakdown(session, event_id)
    return [code for code, units in breakdown.by_source.items() if code not in boundary]


def editable_event(session: so.Session, actor: User, event_id) -> Event:
    """The actor's own event, if its footprint may still change (no paid order for it yet)."""
    event = own_event(session, actor, event_id)
    if locking_orders(session, event.id):
        raise InvalidTransition(_l("This event has been neutralised; its footprint can no longer change."))
    return event


def visible_event(session: so.Session, actor: User, event_id) -> Event:
    """The event if the actor owns it or is bureau staff; otherwise NotFound."""
    return get_scoped(session, Event, event_id, actor)


# --- activity lines ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActivityInput:
    """One activity as entered (form, API or spreadsheet row), before validation."""

    category: object
    factor_code: object
    quantity: object
    description: object = ""
    #: the guideline's source (footprint.sources); blank: the one the factor names, else the category's first
    source: object = ""


@dataclass(frozen=True)
class ValidActivity:
    category: str
    factor: EmissionFactor
    quantity: Decimal
    description: str
    emissions_units: int
    source: str = ""


def validate_source(raw, category: str, factor_code: str, field: str = "source") -> str:
    """The line's source: a code of the guideline's list under the line's category; blank takes the default."""
    if raw is not None and not isinstance(raw, str):
        raise ValidationFailed(_l("Send the emission source as its code, e.g. venue_electricity."), field)
    code = (raw or "").strip().lower()
    if not code:
        return default_source(category, factor_code)
    source = BY_CODE.get(code)
    if source is None:
        raise ValidationFailed(_l("Unknown emission source: %(code)s. Use one of: %(list)s.", code=code[:40],
                                  list=", ".join(s.code for s in SOURCES if s.category == category)), field)
    if source.category != category:
        raise ValidationFailed(_l("The emission source “%(source)s” belongs to %(source_category)s, not %(category)s.",
                                  source=source_name(code), source_category=category_label(source.category),
                                  category=category_label(category)), field)
    return code


def validate_activity(session: so.Session, activity: ActivityInput, prefix: str = "") -> ValidActivity:
    """Check one activity against the current factor library. Raises ValidationFailed naming the field."""
    category = str(activity.category or "").strip().lower()
    if category not in CATEGORIES:
        raise ValidationFailed(_l("Unknown category. Use one of: %(list)s.", list=", ".join(CATEGORIES)),
                               f"{prefix}category")
    code = str(activity.factor_code or "").strip()
    if not code:
        raise ValidationFailed(_l("Choose an emission factor."), f"{prefix}factor_code")
    factor = current_factor(session, code)
    if factor is None:
        if session.scalar(sa.select(EmissionFactor.id).where(EmissionFactor.code == code).limit(1)):
            raise ValidationFailed(_l("The emission factor %(code)s has been retired.", code=code),
                                   f"{prefix}factor_code")
        raise ValidationFailed(_l("Unknown emission factor code: %(code)s.", code=code[:64]), f"{prefix}factor_code")
    if factor.category != category:
        # Named as the person chose it (its name in their language), not by its code.
        raise ValidationFailed(_l("The emission factor “%(value)s” belongs to %(factor_category)s, not %(category)s.",
                                  value=factor.name(current_language()),
                                  factor_category=category_label(factor.category),
                                  category=category_label(category)), f"{prefix}factor_code")
    quantity = parse_activity_quantity(activity.quantity, f"{prefix}quantity")
    units = line_units(quantity, factor.kgco2e_per_unit)
    if units > MAX_LINE_UNITS:
        raise ValidationFailed(_l("This line would emit more than a million tonnes; check the quantity and its unit."),
                               f"{prefix}quantity")
    description = _text(activity.description if isinstance(activity.description, str)
                        else str(activity.description or ""), f"{prefix}description", ActivityLine.description)
    source = validate_source(activity.source, category, factor.code, f"{prefix}source")
    return ValidActivity(category, factor, quantity, description, units, source)


def _add_valid(session: so.Session, event: Event, valid: ValidActivity) -> ActivityLine:
    line = ActivityLine(event_id=event.id, category=valid.category, source=valid.source, factor_id=valid.factor.id,
                        quantity=valid.quantity, description=valid.description,
                        emissions_units=valid.emissions_units)
    session.add(line)
    return line


def add_activity(session: so.Session, actor: User, event_id, activity: ActivityInput) -> ActivityLine:
    event = editable_event(session, actor, event_id)
    line = _add_valid(session, event, validate_activity(session, activity))
    session.flush()
    return line


def add_activities(session: so.Session, actor: User, event_id, activities: list[ActivityInput], *,
                   prefix: str = "activities") -> list[ActivityLine]:
    """All or nothing: every activity is validated before any line is added."""
    event = editable_event(session, actor, event_id)
    valid = [validate_activity(session, a, f"{prefix}[{i}].") for i, a in enumerate(activities)]
    lines = [_add_valid(session, event, v) for v in valid]
    session.flush()
    return lines


def own_line(session: so.Session, actor: User, event_id, line_id) -> ActivityLine:
    """An activity line of the actor's editable event, with its factor (another's, or another event's: 404)."""
    event = editable_event(session, actor, event_id)
    line = get_scoped(session, ActivityLine, line_id, actor, bureau_sees_all=False,
                      options=[so.joinedload(ActivityLine.factor)])
    if line.event_id != event.id:
        raise NotFound(_l("Not found."))
    return line


def delete_activity(session: so.Session, actor: User, event_id, line_id) -> None:
    session.delete(own_line(session, actor, event_id, line_id))
    session.flush()


def create_event_with_activities(session: so.Session, actor: User, *, activities: list[ActivityInput],
                                 **event_fields) -> Event:
    """The API's one call: the event and its lines, all or nothing."""
    event = create_event(session, actor, **event_fields)
    add_activities(session, actor, event.id, activities)
    return event


# --- helpers for common cases ------------------------------------------------------------------------

def _distance(raw, field: str) -> Decimal:
    value = parse_activity_quantity(raw, field)
    if value > MAX_DISTANCE_KM:
        raise ValidationFailed(_l("At most %(max)s km.", max="40,000"), field)
    return value


def add_travel(session: so.Session, actor: User, event_id, *, factor_code, travellers, distance_km,
               round_trip: bool = True, source="") -> ActivityLine:
    """Attendees × one-way distance (× 2 for a round trip) by one travel mode → passenger-km."""
    people = _count(travellers, "travellers")
    km = _distance(distance_km, "distance_km")
    trips = 2 if round_trip else 1
    description = f"{people} × {km} km" + (" × 2" if round_trip else "")
    return add_activity(session, actor, event_id, ActivityInput("transport", factor_code, people * km * trips,
                                                                 description, source))


def add_room_nights(session: so.Session, actor: User, event_id, *, factor_code, rooms, nights) -> ActivityLine:
    room_count = _count(rooms, "rooms")
    night_count = _count(nights, "nights", maximum=MAX_EVENT_DAYS)
    return add_activity(session, actor, event_id, ActivityInput(
        "accommodation", factor_code, room_count * night_count, f"{room_count} × {night_count}"))


def add_meals(session: so.Session, actor: User, event_id, *, factor_code, people, meals_each) -> ActivityLine:
    diners = _count(people, "people")
    each = _count(meals_each, "meals_each", maximum=3 * MAX_EVENT_DAYS)
    return add_activity(session, actor, event_id, ActivityInput(
        "catering", factor_code, diners * each, f"{diners} × {each}"))


def add_venue_energy(session: so.Session, actor: User, event_id, *, factor_code, kwh) -> ActivityLine:
    amount = parse_activity_quantity(kwh, "kwh")
    return add_activity(session, actor, event_id, ActivityInput("venue", factor_code, amount, f"{amount} kWh",
                                                                "venue_electricity"))


# --- reduction measures ------------------------------------------------------------------------------

def add_reduction(session: so.Session, actor: User, event_id, *, category, description,
                  estimated_tonnes=None) -> ReductionMeasure:
    """A measure taken before offsetting. Its estimate is disclosed, not subtracted from the footprint."""
    event = editable_event(session, actor, event_id)
    if category not in CATEGORIES:
        raise ValidationFailed(_l("Choose one of the six categories."), "category")
    text = _text(description, "description", ReductionMeasure.description, _l("Describe the measure."))
    units = None
    if estimated_tonnes is not None and str(estimated_tonnes).strip():
        units = parse_tonnes(estimated_tonnes, "estimated_tonnes", allow_zero=True)
    measure = ReductionMeasure(event_id=event.id, category=category, description=text, estimated_units=units)
    session.add(measure)
    session.flush()
    return measure


def delete_reduction(session: so.Session, actor: User, event_id, measure_id) -> None:
    event = editable_event(session, actor, event_id)
    measure = session.get(ReductionMeasure, int(measure_id)) if str(measure_id).isdigit() else None
    if measure is None or measure.event_id != event.id:
        raise NotFound(_l("Not found."))
    session.delete(measure)
    session.flush()


# --- results -----------------------------------------------------------------------------------------

@dataclass
class Breakdown:
    """An event's footprint: integer units per category (all six, in the guideline's order) and total."""

    event_id: int
    by_category: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    #: source code → units, only the sources that have lines (in the guideline's order)
    by_source: dict[str, int] = field(default_factory=dict)
    line_count: int = 0

    @property
    def total_units(self) -> int:
        return sum(self.by_category.values())

    def sources_in(self, category: str) -> list[tuple[str, int]]:
        """(source code, units) of one category's sources that have lines, in the guideline's order."""
        return [(code, units) for code, units in self.by_source.items() if BY_CODE[code].category == category]


def event_breakdown(session: so.Session, event_id: int) -> Breakdown:
    """Per-category sums of the stored, rounded line emissions. No access check: callers scope first."""
    breakdown = Breakdown(event_id=int(event_id))
    rows = session.execute(sa.select(ActivityLine.category, ActivityLine.source,
                                     sa.func.sum(ActivityLine.emissions_units), sa.func.count())
                           .where(ActivityLine.event_id == event_id)
                           .group_by(ActivityLine.category, ActivityLine.source)).all()
    by_source = {}
    for category, source, units, count in rows:
        breakdown.by_category[category] += int(units or 0)
        by_source[source] = int(units or 0)
        breakdown.line_count += int(count)
    breakdown.by_source = {s.code: by_source[s.code] for s in SOURCES if s.code in by_source}
    return breakdown


def event_total_units(session: so.Session, event_id: int) -> int:
    """The event's footprint in integer units (0.0001 tCO2e): what an order must neutralise."""
    return event_breakdown(session, event_id).total_units


def recompute_event_units(session: so.Session, event_id: int) -> int:
    """Recompute every line from its quantity and the factor version it recorded; the sum of the lines.

    Equal to event_total_units unless a stored line was tampered with: the proof that results reproduce.
    """
    return sum(line_units(line.quantity, line.factor.kgco2e_per_unit) for line in event_lines(session, event_id))


def event_lines(session: so.Session, event_id: int) -> list[ActivityLine]:
    """The event's activity lines in the order they were entered, each with the factor version it used."""
    return list(session.scalars(sa.select(ActivityLine).where(ActivityLine.event_id == event_id)
                                .order_by(ActivityLine.id).options(so.joinedload(ActivityLine.factor))))


def breakdown_for_events(session: so.Session, event_ids: list[int]) -> dict[int, int]:
    """Totals (units) of several events at once, for lists."""
    if not event_ids:
        return {}
    rows = session.execute(sa.select(ActivityLine.event_id, sa.func.sum(ActivityLine.emissions_units))
                           .where(ActivityLine.event_id.in_(event_ids)).group_by(ActivityLine.event_id)).all()
    totals = dict.fromkeys(event_ids, 0)
    totals.update({event_id: int(units or 0) for event_id, units in rows})
    return totals


def format_quantity(quantity: Decimal) -> str:
    """Activity data for display: no trailing zeros, thousands separated."""
    try:
        normalised = Decimal(quantity).normalize()
    except InvalidOperation:  # pragma: no cover
        return str(quantity)
    text = format(normalised, "f")
    whole, _dot, frac = text.partition(".")
    whole = f"{int(whole):,}"
    return f"{whole}.{frac}" if frac else whole
