"""The main navigation, by role. Later features add their entries here."""

from __future__ import annotations

from flask import url_for
from flask_babel import lazy_gettext as _l

PUBLIC = [("public.home", _l("Home")), ("registry.index", _l("Registry")),
          ("certificates.retirements", _l("Retirements")),
          ("neutrality.public_events", _l("Neutral events")),
          ("certificates.verify_form", _l("Verify a certificate")),
          ("settlement_public.villages", _l("Village benefits"))]
BY_ROLE = {
    "seller": [("home.seller", _l("My cooperative")), ("registry_sellers.listings", _l("Listings")),
               ("orders_sellers.orders", _l("Sales")),
               ("settlement_sellers.money", _l("Money")), ("settlement_sellers.fapiao", _l("Fapiao")),
               ("dashboards.seller", _l("Dashboard"))],
    "buyer": [("home.buyer", _l("My organisation")), ("events.events", _l("Events")),
              ("orders.new", _l("Order credits")),
              ("orders.index", _l("Orders")), ("dashboards.buyer", _l("Dashboard"))],
    "bureau": [("home.bureau", _l("Bureau")), ("dashboards.bureau", _l("Dashboard")),
               ("registry_bureau.projects", _l("Project review")),
               ("orders_bureau.orders_list", _l("Orders")),
               ("settlement_bureau.money", _l("Payouts")), ("settlement_bureau.statements_page", _l("Statements")),
               ("settlement_bureau.fapiao", _l("Fapiao")),
               ("registry_bureau.buffer_pool", _l("Buffer pool")), ("registry_pledges.pledges_page", _l("Pledges")),
               ("footprint_bureau.emission_factors_page", _l("Emission factors")), ("registry_bureau.ledger_check", _l("Ledger check")),
               ("accounts_bureau.organisations", _l("Organisations")),
               ("neutrality.bureau_overview", _l("Event neutrality"))],
    "evaluator": [("neutrality.assignments", _l("Assigned events"))],
    # the platform operator the bureau delegates its settlement work to
    "operator": [("settlement_bureau.money", _l("Payouts")), ("settlement_bureau.statements_page", _l("Statements")),
                 ("settlement_bureau.fapiao", _l("Fapiao"))],
}

#: Menus that hold several entries under one name (a <details> drop-down in the header, no script), so a
#: role's menu fits on one line at 1366 px. Entries not named here stay at the top level; later features
#: add their endpoints to a group (or a group of their own).
GROUPS = {
    "bureau": [(_l("Registry"), ("registry_bureau.projects", "registry_bureau.buffer_pool",
                                 "registry_pledges.pledges_page", "registry_bureau.ledger_check")),
               (_l("Market"), ("orders_bureau.orders_list", "settlement_bureau.money", "settlement_bureau.statements_page",
                               "settlement_bureau.fapiao",
                               "footprint_bureau.emission_factors_page", "accounts_bureau.organisations",
                               "neutrality.bureau_overview"))],
}
#: Signed-in people work in their own menu; the public pages sit under one name beside it.
PUBLIC_GROUP = _l("Public")


class NavGroup:
    """A drop-down of the main menu: its name and its (endpoint, label) entries."""

    def __init__(self, label, entries: list[tuple[str, str]]):
        self.label = label
        self.entries = entries

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(endpoint for endpoint, _label in self.entries)


def _grouped(entries: list[tuple[str, str]], groups) -> list:
    by_endpoint = dict(entries)
    placed: dict[str, NavGroup] = {}
    for label, endpoints in groups:
        group = NavGroup(label, [(e, by_endpoint[e]) for e in endpoints if e in by_endpoint])
        if group.entries:
            placed[group.entries[0][0]] = group
    grouped_endpoints = {e for _label, endpoints in groups for e in endpoints}
    items = []
    for endpoint, label in entries:
        if endpoint in placed:
            items.append(placed[endpoint])
        elif endpoint not in grouped_endpoints:
            items.append((endpoint, label))
    return items


def navigation_for(user) -> list:
    """The main menu: (endpoint, label) entries and NavGroup drop-downs."""
    # Outside a request (e-mails rendered by a worker) current_user is a proxy to nothing.
    if not getattr(user, "is_authenticated", False):
        return list(PUBLIC)
    own = _grouped(BY_ROLE.get(user.role, []), GROUPS.get(user.role, []))
    return [PUBLIC[0], *own, NavGroup(PUBLIC_GROUP, list(PUBLIC[1:]))]


#: Where each role starts: its home page.
HOME = {"bureau": "home.bureau", "buyer": "home.buyer", "seller": "home.seller",
        "evaluator": "neutrality.assignments", "operator": "settlement_bureau.money"}


def home_for(user) -> str:
    """The URL of the user's home page."""
    return url_for(HOME[user.role])
