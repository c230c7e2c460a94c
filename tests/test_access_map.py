"""Every route of the application is either on a short list of public endpoints or refuses anonymous callers
and callers of the wrong role: a view added without @role_required (pages) or @token_required (API) fails here.

The requests use ids that match no row: a guard answers before the view looks anything up, so a refusal
(redirect to sign-in, 401, 403) can only come from the guard, never from the missing row (404).
"""

from __future__ import annotations

import marshmallow as ma
import pytest
from flask import url_for

ROLES = ("bureau", "seller", "buyer", "evaluator", "operator")

#: Anyone may call these, signed in or not.
PUBLIC = {
    "static",
    "public.home", "public.health",
    "auth.login", "auth.logout", "auth.set_language",
    # the second sign-in step (it needs the first) and the e-mailed password reset
    "auth.second_step", "auth.forgot_password", "auth.reset_password",
    # the public registry and the verification of certificates
    "registry.index", "registry.project", "certificates.retirements",
    "certificates.verify_form", "certificates.verify", "certificates.public_pdf",
    # Stripe calls it; the signature of the event is its authentication
    "webhooks.stripe",
    # the public API: the OpenAPI document, the registry, the retirements and the certificates' keys
    "api-docs.openapi_json",
    "api_registry.projects", "api_registry.project", "api_registry.batch", "api_registry.listings",
    "api_parcels.public_parcels",
    "api_footprint.list_emission_factors",
    "api_public.retirements", "api_certificates.public_keys", "api_certificates.public_certificate",
    # the public disclosure of neutralised events and their declarations
    "neutrality.public_events", "neutrality.public_event", "neutrality.declaration", "neutrality.declaration_pdf",
    "neutrality.public_evidence",  # a reduction's evidence, once its plan is published
    "api_public_events.events", "api_public_events.event",
    # the public benefit ledger of villages (settlement)
    "settlement_public.villages", "settlement_public.village", "api_public_villages.villages",
}

#: Any signed-in user (any role); what they see is scoped to their organisation (others' rows are a 404).
ANY_ROLE = {
    "account.profile", "account.create_token", "account.revoke_token",
    "account.change_password", "account.sign_out_everywhere", "account.two_step_setup",
    "account.two_step_disable", "account.renew_recovery_codes",
    "certificates.download_pdf",
    "api_account.me", "api_certificates.certificate", "api_footprint.get_event",
}

#: Pages under these prefixes are for one role only …
PREFIX_ROLE = {"/bureau/": "bureau", "/sellers/": "seller", "/buyers/": "buyer", "/evaluators/": "evaluator"}
#: … but for the money desk, which the bureau shares with the platform operator it delegates its settlement work
#: to: statements, payout batches, the bank's sheet, payouts paid or failed, fapiao records. Not the fee rule,
#: and nothing else of the bureau's (registry review and issuance, organisations and users).
DESK = {
    "settlement_bureau.money", "settlement_bureau.create_batch", "settlement_bureau.batch",
    "settlement_bureau.batch_xlsx", "settlement_bureau.mark_paid", "settlement_bureau.mark_failed",
    "settlement_bureau.fapiao", "settlement_bureau.record_fapiao", "settlement_bureau.statements_page",
    "settlement_bureau.close_statements", "settlement_bureau.statement",
}

NO_ROW = 987_654_321  # an id no test row has
ARGUMENT_VALUES = {"number": "TH-C-2026-000000", "action": "pause", "kind": "transport", "table_key": "orders",
                   "fmt": "csv", "filename": "app.css"}


def _is_api(rule) -> bool:
    return rule.rule.startswith("/api/")


def _sample(field: ma.fields.Field):
    """A value marshmallow accepts for the field (only its type and choices matter here)."""
    for validator in getattr(field, "validators", []):
        if isinstance(validator, ma.validate.OneOf):
            return next(iter(validator.choices))
    if isinstance(field, ma.fields.Nested):
        return _sample_body(field.schema)
    if isinstance(field, ma.fields.List):
        return []
    if isinstance(field, ma.fields.Date):
        return "2026-01-01"
    if isinstance(field, (ma.fields.Integer, ma.fields.Number)):
        return 1
    if isinstance(field, ma.fields.Boolean):
        return True
    return "1"


def _sample_body(schema: ma.Schema | type[ma.Schema]) -> dict:
    if isinstance(schema, type):
        schema = schema()
    return {name: _sample(field) for name, field in schema.fields.items() if field.required}


def _json_body(view) -> dict | None:
    """A body the API view's argument schema accepts: flask-smorest validates the body before the view's
    own decorators run, so a malformed body would be refused (422) before the token is even looked at."""
    parameters = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    bodies = [_sample_body(p["schema"]) for p in parameters if p.get("in") == "json"]
    return bodies[0] if bodies else ({} if parameters else None)


@pytest.fixture
def routes(app):
    """(endpoint, method, url, is_api, json body) for every route and method of the application."""
    found = []
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
            values = {name: NO_ROW if type(rule._converters[name]).__name__ == "IdConverter"
                      else ARGUMENT_VALUES.get(name, "x") for name in rule.arguments}
            url = url_for(rule.endpoint, **values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                body = _json_body(app.view_functions[rule.endpoint]) if _is_api(rule) and method != "GET" else None
                found.append((rule.endpoint, method, url, _is_api(rule), body))
    return found


@pytest.fixture
def callers(make_app, factory):
    """Clients of the application (CSRF off, so that a POST reaches the guard): anonymous, and one signed in
    (pages) and one API token per role."""
    application = make_app(WTF_CSRF_ENABLED=False)
    signed_in, tokens = {}, {}
    for role in ROLES:
        user = factory.user(role)
        client = application.test_client()
        response = client.post("/login", data={"email": user.email, "password": "correct horse battery"})
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        signed_in[role] = client
        tokens[role] = factory.token(user)
    anonymous = application.test_client()

    def call(role, method, url, is_api, body):
        if is_api:
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
            return anonymous.open(url, method=method, headers=headers, json=body)
        return (signed_in[role] if role else anonymous).open(url, method=method)

    return call


def test_the_public_list_names_real_endpoints(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert (PUBLIC | ANY_ROLE | DESK) - endpoints == set()


def test_the_operator_reaches_the_money_desk_only(routes, callers):
    """Every page the operator is let into is on the money desk (or open to any role); everything else of the
    bureau's answers 403."""
    let_in = []
    for endpoint, method, url, is_api, body in routes:
        if endpoint in PUBLIC or endpoint in ANY_ROLE or endpoint in DESK:
            continue
        response = callers("operator", method, url, is_api, body)
        if response.status_code != 403:
            let_in.append(f"{method} {url} ({endpoint}): {response.status_code}")
    assert not let_in, "the operator is let in outside the money desk:\n" + "\n".join(let_in)


def test_every_other_endpoint_refuses_anonymous_callers(routes, callers):
    let_in = []
    for endpoint, method, url, is_api, body in routes:
        if endpoint in PUBLIC:
            continue
        response = callers(None, method, url, is_api, body)
        if is_api:
            refused = response.status_code == 401 and response.is_json \
                and response.get_json()["error"]["code"] == "unauthorized"
        else:
            refused = response.status_code in (401, 403) or (
                response.status_code == 302 and response.headers["Location"].startswith("/login"))
        if not refused:
            let_in.append(f"{method} {url} ({endpoint}): {response.status_code}")
    assert not let_in, ("anonymous callers are let in (add @role_required / @token_required, or list the endpoint"
                        " as public):\n" + "\n".join(let_in))


def test_every_role_restricted_endpoint_refuses_the_wrong_role(routes, callers):
    problems = []
    for endpoint, method, url, is_api, body in routes:
        if endpoint in PUBLIC or endpoint in ANY_ROLE:
            continue
        answers = {role: callers(role, method, url, is_api, body) for role in ROLES}
        refused = {role for role, response in answers.items() if response.status_code == 403
                   and (not is_api or response.get_json()["error"]["code"] == "forbidden")}
        let_in = set(ROLES) - refused
        statuses = ", ".join(f"{role} {response.status_code}" for role, response in answers.items())
        expected = next(({role} for prefix, role in PREFIX_ROLE.items() if url.startswith(prefix)), None)
        if endpoint in DESK:
            expected = {"bureau", "operator"}
        if not refused:
            problems.append(f"{method} {url} ({endpoint}) refuses no role: {statuses}")
        elif not let_in:
            problems.append(f"{method} {url} ({endpoint}) refuses every role: {statuses}")
        elif not is_api and expected and let_in != expected:
            problems.append(f"{method} {url} ({endpoint}) is for {expected} but lets in {sorted(let_in)}")
    assert not problems, "endpoints without a right role guard (@role_required / @token_required(roles)):\n" + \
        "\n".join(problems)
