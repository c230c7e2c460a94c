"""The main navigation, by role. Later features add their entries here."""

from __future__ import annotations

from flask import url_for
from flask_babel import lazy_gettext as _l

PUBLIC = [("public.home", _l("Home")), ("registry.index", _l("Registry")),
          ("certificates.retirements", _l("Retirements")),
          ("neutrality.public_events", _l("Neutral events")),
          ("certificates.verify_form", _l("Verify a certificate"))]
BY_ROLE = {
    "seller": [("home.seller", _l("My cooperative")), ("registry_sellers.listings", _l("Listings")),
               ("orders_sellers.orders", _l("Sales")), ("dashboards.seller", _l("Dashboard"))],
    "buyer": [("home.buyer", _l("My organisation")), ("events.events", _l("Events")),
              ("orders.new", _l("Order credits")),
              ("orders.index", _l("Orders")), ("dashboards.buyer", _l("Dashboard"))],
    "bureau": [("home.bureau", _l("Bureau")), ("dashboards.bureau", _l("Dashboard")),
               ("registry_bureau.projects", _l("Project review")),
               ("orders_bureau.orders_list", _l("Orders")),
               ("registry_bureau.buffer_pool", _l("Buffer pool")),
               ("footprint_bureau.emission_factors_page", _l("Emission factors")), ("registry_bureau.ledger_check", _l("Ledger check")),
               ("accounts_bureau.organisations", _l("Organisations")),
               ("neutrality.bureau_overview", _l("Event neutrality"))],
    "evaluator": [("neutrality.assignments", _l("Assigned events"))],
}


def navigation_for(user) -> list[tuple[str, str]]:
    items = list(PUBLIC)
    # Outside a request (e-mails rendered by a worker) current_user is a proxy to nothing.
    if getattr(user, "is_authenticated", False):
        items += BY_ROLE.get(user.role, [])
    return items


#: Where each role starts: its home page.
HOME = {"bureau": "home.bureau", "buyer": "home.buyer", "seller": "home.seller",
        "evaluator": "neutrality.assignments"}


def home_for(user) -> str:
    """The URL of the user's home page."""
    return url_for(HOME[user.role])
