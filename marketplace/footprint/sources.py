"""The emission sources the MEE guideline (《大型活动碳中和实施指南（试行）》, 2019) names, under the six
categories the story uses, each with the accounting basis it is computed on.

The six categories stay the summary (footprint.models.CATEGORIES); every activity line records its source,
so a footprint reads by category and, under each, by source with its basis cited. A neutrality plan's
boundary says, source by source, what is in and, for anything left out, why (the guideline's completeness
and transparency).

The guideline lists travel "by air, high-speed rail, metro, taxi, private car etc."; coaches and shuttle buses
(the demo summit's) are a travel mode of their own here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from marketplace.footprint.models import CATEGORIES


@dataclass(frozen=True)
class Source:
    code: str
    #: one of footprint.models.CATEGORIES
    category: str
    name: object
    #: the accounting basis: activity data × emission factor, and where the factor comes from
    basis: object


SOURCES: tuple[Source, ...] = (
    Source("official_cars", "transport", _l("Mobile fossil fuel: official cars"),
           _l("Fuel burnt (litres) × fuel emission factor, or vehicle-km × per-km factor")),
    Source("air_travel", "transport", _l("Travel by air"),
           _l("Passenger-km by air × per passenger-km factor")),
    Source("rail_travel", "transport", _l("Travel by high-speed rail"),
           _l("Passenger-km by rail × per passenger-km factor")),
    Source("metro_travel", "transport", _l("Travel by metro"),
           _l("Passenger-km by metro × per passenger-km factor")),
    Source("taxi_travel", "transport", _l("Travel by taxi"),
           _l("Passenger-km by taxi × per passenger-km factor")),
    Source("private_car_travel", "transport", _l("Travel by private car"),
           _l("Vehicle-km × per-km factor of the fuel type")),
    Source("coach_travel", "transport", _l("Travel by coach or shuttle bus"),
           _l("Passenger-km by coach × per passenger-km factor")),
    Source("catering", "catering", _l("Catering"),
           _l("Meals served × per-meal factor, or the kitchen's energy use")),
    Source("accommodation", "accommodation", _l("Accommodation"),
           _l("Room-nights × per room-night factor, or the hotel's metered energy")),
    Source("venue_stationary_fuel", "venue", _l("Stationary fossil fuel at the venue and offices"),
           _l("Fuel burnt (m³ of gas, kg of coal or oil) × fuel emission factor")),
    Source("venue_electricity", "venue", _l("Purchased electricity"),
           _l("Metered kWh × the national grid average factor published by MEE/NBS")),
    Source("venue_heat", "venue", _l("Purchased heat"),
           _l("Metered GJ of heat × heat emission factor")),
    Source("materials", "materials", _l("Embodied emissions of meeting materials"),
           _l("Mass or count of materials (paper, badges, banners) × embodied factor")),
    Source("waste_landfill", "waste", _l("Waste to landfill"),
           _l("Mass of waste landfilled × landfill factor")),
    Source("waste_incineration", "waste", _l("Waste incinerated"),
           _l("Mass of waste incinerated × incineration factor")),
)
SOURCE_CODES = tuple(source.code for source in SOURCES)
BY_CODE = {source.code: source for source in SOURCES}
assert all(source.category in CATEGORIES for source in SOURCES)

#: Where a factor code says which source it is (checked in order; the first match wins). The shipped
#: ``transport.car`` (private or official car, per vehicle-km) reads as a private car: an organiser's own
#: cars are chosen as ``official_cars`` on the line.
_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    ("transport", r"flight|air|plane", "air_travel"),
    ("transport", r"hsr|rail|train", "rail_travel"),
    ("transport", r"metro|subway|light_rail", "metro_travel"),
    ("transport", r"taxi|ride", "taxi_travel"),
    ("transport", r"coach|bus|shuttle", "coach_travel"),
    ("transport", r"diesel|petrol|gasoline|fuel|official", "official_cars"),
    ("transport", r"car", "private_car_travel"),
    ("venue", r"grid|electric|power", "venue_electricity"),
    ("venue", r"heat|steam", "venue_heat"),
    ("waste", r"landfill", "waste_landfill"),
    ("waste", r"incinerat", "waste_incineration"),
)
#: A category's source when the factor code says nothing more (the first the guideline lists; a category
#: with one source has just that one).
CATEGORY_DEFAULTS = {
    "transport": "official_cars", "catering": "catering", "accommodation": "accommodation",
    "venue": "venue_stationary_fuel", "materials": "materials", "waste": "waste_landfill",
}


def sources_of(category: str) -> list[Source]:
    return [source for source in SOURCES if source.category == category]


def default_source(category: str, factor_code: str = "") -> str:
    """The source a line of this category and factor is recorded under when none is chosen."""
    name = (factor_code or "").split(".", 1)[-1].lower()
    for keyword_category, pattern, code in _KEYWORDS:
        if keyword_category == category and re.search(pattern, name):
            return code
    return CATEGORY_DEFAULTS[category]


def source_name(code: str) -> str:
    source = BY_CODE.get(code)
    return str(source.name) if source else code


def source_basis(code: str) -> str:
    source = BY_CODE.get(code)
    return str(source.basis) if source else ""
