"""The main navigation, by role. Later features add their entries here."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

PUBLIC = [("public.home", _l("Home")), ("registry.index", _l("Registry")),
          ("registry.retirements", _l("Retirements")),
          ("certificates.verify_form", _l("Verify a certificate"))]
BY_ROLE = {
    "seller": [("sellers.home", _l("My cooperative")), ("sellers.listings", _l("Listings")),
               ("sellers.orders", _l("Sales")), ("dashboards.seller", _l("Dashboard"))],
    "buyer": [("buyers.home", _l("My organisation")), ("buyers.events", _l("Events")),
              ("orders.new", _l("Order credits")),
              ("orders.index", _l("Orders")), ("dashboards.buyer", _l("Dashboard"))],
    "bureau": [("bureau.home", _l("Bureau")), ("dashboards.bureau", _l("Dashboard")),
               ("bureau.projects", _l("Project review")),
               ("bureau.orders_list", _l("Orders")),
               ("bureau.buffer_pool", _l("Buffer pool")),
               ("bureau.emission_factors_page", _l("Emission factors")), ("bureau.ledger_check", _l("Ledger check")),
               ("bureau.organisations", _l("Organisations"))],
}


def navigation_for(user) -> list[tuple[str, str]]:
    items = list(PUBLIC)
    # Outside a request (e-mails rendered by a worker) current_user is a proxy to nothing.
    if getattr(user, "is_authenticated", False):
        items += BY_ROLE.get(user.role, [])
    return items
