"""The emission sources the MEE guideline (《大型活动碳中和实施指南（试行）》, 2019) names, under the six
categories the story uses, each with the accounting basis it is computed on.

The six categories stay the summary (footprint.models.CATEGORIES); a plan's boundary says, source by
source, what is in and, for anything left out, why (the guideline's completeness and transparency).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


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


def sources_of(category: str) -> list[Source]:
    return [source for source in SOURCES if source.category == category]
