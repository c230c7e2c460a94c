"""Ids beyond what the database holds (found by fuzzing the API from its OpenAPI document) are answered
before any query: a path with one is a 404, a field or filter with one a 422 naming it. Never a 500."""

from __future__ import annotations

import pytest

HUGE = "4146788976617999894052864"
EDGE = str(2**31)  # one past PostgreSQL's integer


@pytest.mark.parametrize("number", [HUGE, EDGE])
def test_paths_with_impossible_ids_are_not_found(client, factory, number):
    buyer, bureau = factory.user("buyer"), factory.user("bureau")
    for path, user in ((f"/api/v1/batches/{number}", None), (f"/api/v1/projects/{number}", None),
                       (f"/api/v1/orders/{number}", buyer), (f"/api/v1/events/{number}", buyer),
                       (f"/registry/projects/{number}", None)):
        headers = {"Authorization": f"Bearer {factory.token(user)}"} if user else {}
        response = client.get(path, headers=headers)
        assert response.status_code == 404, (path, response.status_code)
    token = factory.token(bureau)
    response = client.post(f"/api/v1/orders/{number}/confirm-bank-transfer", json={"reference": "X"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


@pytest.mark.parametrize("number", [HUGE, EDGE, "0", "-3"])
def test_filters_and_fields_with_impossible_ids_are_refused_by_name(client, factory, number):
    listing = client.get(f"/api/v1/listings?village={number}")
    assert listing.status_code == 422 and listing.get_json()["error"]["field"] == "village"
    assert "不是有效的编号" in listing.get_json()["error"]["message"]
    buyer = factory.user("buyer")
    order = client.post("/api/v1/orders", headers={"Authorization": f"Bearer {factory.token(buyer)}"}, json={
        "quantity_tonnes": "1", "listing_id": int(number), "payment_method": "card", "beneficiary": "甲",
        "retirement_reason": "测试"})
    assert order.status_code == 422 and order.get_json()["error"]["field"] == "listing_id"
    seller = factory.user("seller")
    project = client.post("/api/v1/projects", headers={"Authorization": f"Bearer {factory.token(seller)}"}, json={
        "village_id": int(number), "name": "x", "area_hectares": "1", "forest_type": "竹林", "methodology": "m",
        "crediting_start": "2020-01-01", "crediting_end": "2030-01-01"})
    assert project.status_code == 422 and project.get_json()["error"]["field"] == "village_id"
    bureau = factory.user("bureau")
    stats = client.get(f"/api/v1/stats/summary?county={number}",
                       headers={"Authorization": f"Bearer {factory.token(bureau)}"})
    assert stats.status_code == 422 and stats.get_json()["error"]["field"] == "county"
    vintage = client.get(f"/api/v1/listings?vintage={number}")
    assert vintage.status_code == 422 if int(number) > 9999 or int(number) < 1 else vintage.status_code == 200
