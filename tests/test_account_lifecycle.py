"""The account lifecycle: change password, reset by an e-mailed single-use link that expires, the bureau
disables / re-enables and forces a reset, API tokens with expiry, scope and last use, the audit log."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import sqlalchemy as sa

from marketplace.accounts.models import AccountEvent, ApiToken, PasswordReset
from marketplace.core.db import utcnow
from marketplace.extensions import db
from tests.conftest import CsrfClient
from tests.factories import PASSWORD

NEW = "a brand new password"


def _sign_in(app, email, password=PASSWORD):
    return CsrfClient(app.test_client()).post_form("/login", {"email": email, "password": password})


def _signed_in_client(app, email):
    client = app.test_client()
    assert CsrfClient(client).post_form("/login", {"email": email, "password": PASSWORD}).status_code == 302
    return client


def _mails(app, to):
    folder = Path(app.instance_path) / "mail"
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        if message["To"] == to:
            found.append(message)
    return found


def _reset_link(app, to):
    body = _mails(app, to)[-1].get_body().get_content()
    return re.search(r"https?://\S+(/password/reset/\S+)", body).group(1)


def _events(app, user_id):
    with app.app_context():
        return db.session.scalars(sa.select(AccountEvent.kind).where(AccountEvent.user_id == user_id)
                                  .order_by(AccountEvent.id)).all()


def test_changing_the_password_needs_the_current_one(app, factory):
    user = factory.user("buyer")
    client = _signed_in_client(app, user.email)
    wrong = CsrfClient(client).post_form("/account/password", {
        "current_password": "not my password", "new_password": NEW, "confirm": NEW})
    assert wrong.status_code == 422
    assert "当前密码不正确" in wrong.get_data(as_text=True)
    assert _sign_in(app, user.email).status_code == 302  # unchanged
    ok = CsrfClient(client).post_form("/account/password", {"current_password": PASSWORD, "new_password": NEW,
                                                            "confirm": NEW})
    assert ok.status_code == 302
    assert _sign_in(app, user.email).status_code == 422
    assert _sign_in(app, user.email, NEW).status_code == 302
    assert "password_changed" in _events(app, user.id)


def test_a_forgotten_password_is_reset_by_a_mailed_link_that_works_once(app, factory):
    user = factory.user("seller")
    client = app.test_client()
    sent = CsrfClient(client).post_form("/password/forgot", {"email": user.email})
    assert sent.status_code == 302
    link = _reset_link(app, user.email)
    with app.app_context():
        token = link.rsplit("/", 1)[1]
        stored = db.session.scalars(sa.select(PasswordReset.token_hash)).all()
        assert token not in stored and len(stored) == 1  # only a hash is kept
    assert client.get(link).status_code == 200
    done = CsrfClient(client).post_form(link, {"new_password": NEW, "confirm": NEW})
    assert done.status_code == 302
    assert _sign_in(app, user.email).status_code == 422
    assert _sign_in(app, user.email, NEW).status_code == 302
    again = CsrfClient(app.test_client())
    assert again.client.get(link).status_code == 404
    assert "已过期或已使用" in again.client.get(link).get_data(as_text=True)
    assert {"password_reset_requested", "password_reset"} <= set(_events(app, user.id))


def test_a_reset_link_expires(app, factory):
    user = factory.user("buyer")
    client = app.test_client()
    CsrfClient(client).post_form("/password/forgot", {"email": user.email})
    link = _reset_link(app, user.email)
    with app.app_context():
        db.session.execute(sa.update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get(link).status_code == 404


def test_asking_for_an_unknown_e_mail_answers_the_same_and_sends_nothing(app, factory):
    response = CsrfClient(app.test_client()).post_form("/password/forgot", {"email": "nobody@example.cn"})
    assert response.status_code == 302
    assert _mails(app, "nobody@example.cn") == []


def test_the_bureau_disables_and_re_enables_a_user_and_their_tokens_follow(app, factory):
    bureau = factory.user("bureau")
    person = factory.user("buyer")
    token = factory.token(person)
    auth = {"Authorization": f"Bearer {token}"}
    staff = _signed_in_client(app, bureau.email)
    page = f"/bureau/users/{person.id}"
    assert person.email in staff.get(page).get_data(as_text=True)
    CsrfClient(staff).post_form(page, {"active": "0"}, action=f"{page}/active")
    assert _sign_in(app, person.email).status_code == 422
    assert app.test_client().get("/api/v1/me", headers=auth).status_code == 401
    CsrfClient(staff).post_form(page, {"active": "1"}, action=f"{page}/active")
    assert _sign_in(app, person.email).status_code == 302
    assert app.test_client().get("/api/v1/me", headers=auth).status_code == 200
    events = _events(app, person.id)
    assert "disabled" in events and "enabled" in events
    history = staff.get(page).get_data(as_text=True)
    assert "账户已停用" in history and "账户已启用" in history


def test_the_bureau_forces_a_reset_the_old_password_stops_and_a_link_is_mailed(app, factory):
    bureau = factory.user("bureau")
    person = factory.user("seller")
    staff = _signed_in_client(app, bureau.email)
    page = f"/bureau/users/{person.id}"
    CsrfClient(staff).post_form(page, {}, action=f"{page}/force-reset")
    refused = _sign_in(app, person.email)
    assert refused.status_code == 422
    assert "登录前必须修改密码" in refused.get_data(as_text=True)
    link = _reset_link(app, person.email)
    CsrfClient(app.test_client()).post_form(link, {"new_password": NEW, "confirm": NEW})
    assert _sign_in(app, person.email, NEW).status_code == 302


def test_only_the_bureau_sees_a_users_page(app, factory):
    buyer = factory.user("buyer")
    other = factory.user("buyer")
    client = _signed_in_client(app, buyer.email)
    assert client.get(f"/bureau/users/{other.id}").status_code == 403


def test_a_user_sees_their_own_audit_log_with_failures(app, factory):
    user = factory.user("buyer")
    assert _sign_in(app, user.email, "wrong password").status_code == 422
    client = _signed_in_client(app, user.email)
    page = client.get("/account/").get_data(as_text=True)
    assert "登录被拒绝" in page and "已登录" in page


def test_a_read_only_token_reads_and_is_refused_writes_with_403_json(app, factory):
    buyer = factory.user("buyer")
    client = _signed_in_client(app, buyer.email)
    page = CsrfClient(client).post_form("/account/", {"name": "dashboards", "scope": "read", "days": "30"},
                                        action="/account/tokens")
    token = re.search(r'<code class="token">(th_[^<]+)</code>', page.get_data(as_text=True)).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/v1/me", headers=auth).status_code == 200
    refused = api.post("/api/v1/orders", headers=auth, json={
        "quantity_tonnes": "1", "payment_method": "card", "beneficiary": "x", "retirement_reason": "y"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    with app.app_context():
        row = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == buyer.id))
        assert row.scope == "read" and row.last_used_at is not None
        assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    assert {"token_created", "token_refused_read_only"} <= set(_events(app, buyer.id))


def test_an_expired_token_is_refused(app, factory):
    buyer = factory.user("buyer")
    token = factory.token(buyer)
    auth = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/me", headers=auth).status_code == 200
    with app.app_context():
        db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert app.test_client().get("/api/v1/me", headers=auth).status_code == 401


def test_a_mail_server_that_refuses_does_not_turn_the_reset_into_an_error(make_app, factory):
    from tests.conftest import free_port

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nothing listens there
    user = factory.user("buyer")
    response = CsrfClient(app.test_client()).post_form("/password/forgot", {"email": user.email})
    assert response.status_code == 302
    assert "password_reset_requested" in _events(app, user.id)


def test_a_borrowed_session_is_limited_in_guessing_the_current_password(make_app, factory):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    user = factory.user("buyer")
    client = _signed_in_client(app, user.email)
    statuses = [CsrfClient(client).post_form("/account/password", {
        "current_password": f"guess number {n}", "new_password": NEW, "confirm": NEW}).status_code for n in range(4)]
    assert statuses == [422, 422, 422, 429]
