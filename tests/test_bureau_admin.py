"""Bureau staff create organisations and users from the browser."""

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.extensions import db


def test_bureau_creates_an_organisation_and_a_user(login, factory, browser_like, app):
    staff = factory.user("bureau")
    login(staff.email)
    bad = browser_like.post_form("/bureau/organisations", {
        "kind": "seller", "name": "庆元县某村股份经济合作社", "credit_code": "91350100M000100Y44"})
    assert bad.status_code == 422
    assert "统一社会信用代码无效" in bad.get_data(as_text=True)
    good = browser_like.post_form("/bureau/organisations", {
        "kind": "seller", "name": "庆元县某村股份经济合作社", "credit_code": "91350100m000100y43"})
    assert good.status_code == 302
    with app.app_context():
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == "庆元县某村股份经济合作社"))
        assert org.credit_code == "91350100M000100Y43"
        org_id = org.id
    page = f"/bureau/organisations/{org_id}"
    created = browser_like.post_form(page, {"email": "new@example.cn", "display_name": "新用户",
                                            "password": "a long password"})
    assert created.status_code == 302
    assert "new@example.cn" in browser_like.client.get(page).get_data(as_text=True)
    duplicate = browser_like.post_form(page, {"email": "NEW@example.cn", "password": "a long password"})
    assert duplicate.status_code == 422 and "该邮箱已被注册" in duplicate.get_data(as_text=True)


def test_buyers_cannot_reach_bureau_pages(login, factory):
    client = login(factory.user("buyer").email)
    assert client.get("/bureau/organisations").status_code == 403
