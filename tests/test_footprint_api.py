"""The footprint API: factors for anyone, events for their owner (and the bureau), in the OpenAPI doc."""

import pytest

from marketplace.demo import service as demo
from marketplace.extensions import db
from marketplace.footprint.emission_factors import load_default_factors

SUMMIT = next(spec for spec in demo.DEMO_EVENTS if spec.key == "summit")


@pytest.fixture
def factors(app):
    with app.app_context():
        load_default_factors(db.session)
        db.session.commit()


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _summit_body():
    return {"name": SUMMIT.name, "starts_on": "2026-10-30", "ends_on": "2026-11-01", "location": "丽水",
            "activities": [{"category": c, "factor_code": code, "quantity": q} for c, code, q, _d in SUMMIT.lines]}


def test_anyone_lists_the_factors_with_decimal_strings(client, factors):
    body = client.get("/api/v1/emission-factors").get_json()
    grid = next(f for f in body if f["code"] == "venue.grid_cn_2022")
    assert grid["kgco2e_per_unit"] == "0.5366" and grid["year"] == 2022 and grid["unit"] == "kWh"
    assert grid["category"] == "venue" and "生态环境部" in grid["source"] and grid["name"].startswith("全国")
    english = client.get("/api/v1/emission-factors?lang=en").get_json()
    assert next(f for f in english if f["code"] == "venue.grid_cn_2022")["name"].startswith("Grid electricity")


def test_a_buyer_posts_the_summit_and_gets_175_4020(client, factors, factory):
    buyer = factory.user("buyer")
    response = client.post("/api/v1/events", json=_summit_body(), headers=_auth(factory.token(buyer)))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["total_tco2e"] == "175.4020"
    assert body["by_category"] == {"transport": "95.2224", "catering": "10.0881", "accommodation": "48.1500",
                                   "venue": "19.1713", "materials": "1.5707", "waste": "1.1995"}
    again = client.get(f"/api/v1/events/{body['id']}", headers=_auth(factory.token(buyer))).get_json()
    assert again["total_tco2e"] == "175.4020" and len(again["lines"]) == len(SUMMIT.lines)
    assert {line["factor_version"] for line in again["lines"]} == {1}


def test_another_org_gets_404_and_the_bureau_sees_it(client, factors, factory):
    buyer, other, bureau = factory.user("buyer"), factory.user("buyer"), factory.user("bureau")
    event_id = client.post("/api/v1/events", json=_summit_body(), headers=_auth(factory.token(buyer))).get_json()["id"]
    response = client.get(f"/api/v1/events/{event_id}", headers=_auth(factory.token(other)))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/events/{event_id}", headers=_auth(factory.token(bureau))).status_code == 200
    assert client.get(f"/api/v1/events/{event_id}").status_code == 401
    assert client.get("/api/v1/events/abc", headers=_auth(factory.token(buyer))).status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"ends_on": "2026-10-01"}, "ends_on"),
    ({"activities": [{"category": "venue", "factor_code": "venue.nope", "quantity": "1"}]},
     "activities[0].factor_code"),
    ({"activities": [{"category": "transport", "factor_code": "venue.grid_cn_2023", "quantity": "1"}]},
     "activities[0].factor_code"),
    ({"activities": [{"category": "venue", "factor_code": "venue.grid_cn_2023", "quantity": "-1"}]},
     "activities[0].quantity"),
    ({"activities": [{"category": "venue", "factor_code": "venue.grid_cn_2023", "quantity": 0.1}]},
     "activities[0].quantity"),
    ({"activities": [{"category": "venue", "factor_code": "venue.grid_cn_2023", "quantity": "1e308"}]},
     "activities[0].quantity"),
])
def test_bad_events_get_a_field_error_and_save_nothing(client, factors, factory, change, field):
    buyer = factory.user("buyer")
    token = factory.token(buyer)
    response = client.post("/api/v1/events", json={**_summit_body(), **change}, headers=_auth(token))
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    from marketplace.footprint.models import Event

    with client.application.app_context():
        assert db.session.query(Event).count() == 0


def test_only_buyers_post_events(client, factors, factory):
    seller = factory.user("seller")
    response = client.post("/api/v1/events", json=_summit_body(), headers=_auth(factory.token(seller)))
    assert response.status_code == 403


def test_missing_fields_are_named(client, factors, factory):
    buyer = factory.user("buyer")
    response = client.post("/api/v1/events", json={"name": "x"}, headers=_auth(factory.token(buyer)))
    assert response.status_code == 422 and response.get_json()["error"]["field"]


def test_the_calls_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/emission-factors"]
    assert "post" in paths["/api/v1/events"]
    assert "get" in paths["/api/v1/events/{event_id}"]
