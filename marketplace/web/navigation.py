"""The main navigation, by role. Later features add their entries here."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

PUBLIC = [("public.home", _l("Home"))]
BY_ROLE = {
    "seller": [("sellers.home", _l("My cooperative"))],
    "buyer": [("buyers.home", _l("My organisation")), ("buyers.events", _l("Events"))],
    "bureau": [("bureau.home", _l("Bureau")), ("bureau.organisations", _l("Organisations")),
               ("bureau.emission_factors_page", _l("Emission factors"))],
}


def navigation_for(user) -> list[tuple[str, str]]:
    items = list(PUBLIC)
    if user is not None and user.is_authenticated:
        items += BY_ROLE.get(user.role, [])
    return items
