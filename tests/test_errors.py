"""Bad input gets a clear message in the user's language, never a 500 or a stack trace."""

import pytest
from flask import Blueprint


@pytest.fixture
def failing_app(make_app):
    application = make_app(PROPAGATE_EXCEPTIONS=False, TESTING=False)
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    @bp.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("secret internal detail")

    application.register_blueprint(bp)
    return application


def test_an_unexpected_error_shows_a_friendly_page_without_details(failing_app):
    page = failing_app.test_client().get("/boom")
    assert page.status_code == 500
    html = page.get_data(as_text=True)
    assert "系统内部出错" in html and "secret internal detail" not in html and "Traceback" not in html


def test_an_unexpected_api_error_is_json(failing_app):
    response = failing_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "server_error"
    assert "secret" not in response.get_data(as_text=True)


def test_http_errors_say_their_description_only_when_written_for_people(make_app):
    from werkzeug.exceptions import BadRequest

    from marketplace.core.http_errors import ExplainedForbidden

    application = make_app()
    bp = Blueprint("refusals", __name__)

    @bp.get("/api/v1/technical")
    def technical():
        raise BadRequest("Failed to decode JSON object: Expecting value")  # what Flask itself raises

    @bp.get("/api/v1/explained")
    def explained():
        raise ExplainedForbidden("此接口仅限 buyer 账户调用。")

    application.register_blueprint(bp)
    client = application.test_client()
    assert client.get("/api/v1/technical").get_json()["error"] == {"code": "bad_request", "message": "无法理解该请求。"}
    assert client.get("/api/v1/explained").get_json()["error"] == {"code": "forbidden",
                                                                   "message": "此接口仅限 buyer 账户调用。"}


def test_404_page_in_both_languages(client):
    assert "未找到" in client.get("/no/such/page").get_data(as_text=True)
    assert "Not found" in client.get("/no/such/page?lang=en").get_data(as_text=True)


def test_oversized_bodies_get_413(make_app):
    small = make_app(MAX_CONTENT_LENGTH=1024, WTF_CSRF_ENABLED=False)
    response = small.test_client().post("/login", data={"email": "a@b.cn", "password": "x" * 5000})
    assert response.status_code == 413
    assert "上传内容过大" in response.get_data(as_text=True)


def test_malformed_form_posts_are_refused_cleanly(client):
    response = client.post("/login", data=b"\xff\xfe garbage", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_an_expired_session_sends_people_to_sign_in(client):
    response = client.get("/buyers/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_security_headers_are_on_every_response(client):
    for path in ("/", "/login", "/api/v1/openapi.json", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_or_style():
    import re
    from pathlib import Path

    offenders = []
    for template in (Path(__file__).resolve().parent.parent / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text) \
                or re.search(r"\sstyle\s*=", text) or "<style" in text:
            offenders.append(template.name)
    assert offenders == []


def test_schema_errors_speak_the_users_language(client):
    zh = client.get("/api/v1/public/retirements?from=2026-13-01").get_json()["error"]
    assert zh == {"code": "validation_error", "field": "from", "message": "请按 YYYY-MM-DD 格式填写日期。"}
    en = client.get("/api/v1/public/retirements?from=x&lang=en").get_json()["error"]
    assert en["message"] == "Send a date as YYYY-MM-DD."
    assert "超出范围" in client.get("/api/v1/public/retirements?per_page=0&lang=zh_CN").get_json()["error"]["message"]


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after_not_a_500(make_app, tmp_path):
    """The fault matrix restarts a real PostgreSQL (tests/test_fault_matrix.py); here, on any database, one
    that cannot be opened at all."""
    application = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'missing' / 'gone.sqlite'}",
                           PROPAGATE_EXCEPTIONS=False, TESTING=False)
    client = application.test_client()
    api = client.get("/api/v1/orders/1", headers={"Authorization": "Bearer th_not_checked_yet"})
    assert api.status_code == 503 and api.headers["Retry-After"]
    assert api.get_json()["error"]["code"] == "database_unavailable"
    page = client.get("/registry/")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "服务暂时无法使用" in page.get_data(as_text=True)
