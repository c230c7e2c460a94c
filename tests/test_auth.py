"""Signing in and out: CSRF on every form, a rate limit on attempts, safe redirects."""

import pytest

from tests.conftest import CsrfClient
from tests.factories import PASSWORD


def test_login_page_is_chinese_by_default(client):
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "登录" in html and 'lang="zh-CN"' in html
    assert '<label for="email">电子邮箱</label>' in html


def test_a_user_signs_in_and_lands_on_their_role_home(client, factory):
    user = factory.user("seller", email="coop@example.cn")
    response = CsrfClient(client).post_form("/login", {"email": "coop@example.cn", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sellers/")
    home = client.get("/sellers/")
    assert home.status_code == 200
    assert user.organisation.name in home.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, factory):
    factory.user("buyer", email="buyer@example.cn")
    response = CsrfClient(client).post_form("/login", {"email": "buyer@example.cn", "password": "wrong password"})
    assert response.status_code == 422
    assert "邮箱或密码错误" in response.get_data(as_text=True)
    assert client.get("/buyers/").status_code == 302  # still signed out


def test_login_without_csrf_token_is_refused_and_signs_nobody_in(client, factory):
    factory.user("buyer", email="buyer@example.cn")
    response = client.post("/login", data={"email": "buyer@example.cn", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert client.get("/buyers/").status_code == 302


def test_logout_needs_a_post_with_csrf(login, factory):
    user = factory.user("buyer")
    client = login(user.email)
    assert client.get("/logout").status_code == 405
    client.post("/logout", data={})  # no token: ignored
    assert client.get("/buyers/").status_code == 200
    CsrfClient(client).post_form("/buyers/", {}, action="/logout")
    assert client.get("/buyers/").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, factory):
    factory.user("buyer", email="buyer@example.cn")
    form = CsrfClient(client)
    token = form.csrf_token("/login")
    response = client.post("/login?next=//evil.example/x", data={
        "email": "buyer@example.cn", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"].endswith("/buyers/")


def test_login_attempts_are_rate_limited(make_app, factory):
    limited = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = limited.test_client()
    form = CsrfClient(client)
    factory.user("buyer", email="buyer@example.cn")
    statuses = []
    for _ in range(5):
        statuses.append(form.post_form("/login", {"email": "buyer@example.cn", "password": "wrong"}).status_code)
    assert statuses[:3] == [422, 422, 422]
    assert statuses[3:] == [429, 429]
    page = form.post_form("/login", {"email": "buyer@example.cn", "password": PASSWORD})
    assert page.status_code == 429  # even the right password waits
    assert "尝试次数过多" in page.get_data(as_text=True)


@pytest.mark.parametrize("role,allowed", [("buyer", "/buyers/"), ("seller", "/sellers/"), ("bureau", "/bureau/")])
def test_each_role_sees_its_own_navigation_and_not_the_others_pages(login, factory, role, allowed):
    user = factory.user(role)
    client = login(user.email)
    html = client.get(allowed).get_data(as_text=True)
    assert client.get(allowed).status_code == 200
    for other in {"/buyers/", "/sellers/", "/bureau/"} - {allowed}:
        assert client.get(other).status_code == 403
        assert f'href="{other}"' not in html
