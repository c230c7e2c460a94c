"""The API skeleton: bearer tokens, one JSON error format, an OpenAPI document generated from code."""

from tests.factories import PASSWORD


def test_openapi_document_describes_the_api_and_its_bearer_auth(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/me" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}


def test_a_token_authenticates_its_user(client, factory):
    user = factory.user("seller")
    token = factory.token(user)
    body = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["email"] == user.email and body["role"] == "seller"
    assert body["organisation"]["id"] == user.organisation_id


def test_missing_wrong_and_revoked_tokens_get_a_json_401(client, factory, login):
    for header in ({}, {"Authorization": "Bearer th_nope"}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer " + "x" * 5000}):
        response = client.get("/api/v1/me", headers=header)
        assert response.status_code == 401
        assert response.get_json()["error"] == {"code": "unauthorized",
                                                "message": "请提供有效的 API 令牌：Authorization: Bearer <token>。"}
    user = factory.user("buyer")
    token = factory.token(user)
    login(user.email, PASSWORD)
    from tests.conftest import CsrfClient

    page = client.get("/account/").get_data(as_text=True)
    import re

    token_id = re.search(r'/account/tokens/(\d+)/revoke', page).group(1)
    CsrfClient(client).post_form("/account/", {}, action=f"/account/tokens/{token_id}/revoke")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_unknown_routes_and_methods_answer_in_the_error_format(client):
    missing = client.get("/api/v1/does-not-exist")
    assert missing.status_code == 404
    assert set(missing.get_json()["error"]) == {"code", "message"}
    wrong_method = client.delete("/api/v1/me")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"


def test_the_api_needs_no_csrf_token_but_pages_do(client, factory):
    token = factory.token(factory.user("buyer"))
    # A bearer-authenticated POST to an API route is not refused for lack of a CSRF token.
    response = client.post("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405  # the route exists for GET only; the CSRF layer let it through


def test_api_writes_with_a_non_json_body_get_415(client):
    response = client.post("/api/v1/me", data="a=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_production_cookies_are_secure_and_http_only(monkeypatch, tmp_path):
    from marketplace.config import load_config

    monkeypatch.setenv("TANHUI_ENV", "production")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    config = load_config(tmp_path)
    assert config["SESSION_COOKIE_SECURE"] is True and config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    monkeypatch.setenv("TANHUI_ENV", "development")
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is False


def test_a_disabled_users_token_is_refused_and_roles_are_checked_from_the_token(client, factory):
    from marketplace.accounts.models import User
    from marketplace.extensions import db

    seller = factory.user("seller")
    token = factory.token(seller)
    auth = {"Authorization": f"Bearer {token}"}
    # A seller's token reaches the API, but not a buyer's call: 403 in the error format, nothing placed.
    refused = client.post("/api/v1/orders", headers=auth, json={"quantity_tonnes": "1", "payment_method": "card",
                                                                "beneficiary": "x", "retirement_reason": "y"})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == {"code": "forbidden", "message": "此接口仅限 buyer 账户调用。"}
    with client.application.app_context():
        db.session.get(User, seller.id).active = False
        db.session.commit()
    response = client.get("/api/v1/me", headers=auth)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
