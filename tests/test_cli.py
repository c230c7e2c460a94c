"""The `marketplace` command: users, tokens and the demo."""

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.extensions import db


def test_users_create_makes_the_organisation_with_the_right_kind(runner, app, client):
    result = runner.invoke(args=["users", "create", "--email", "Coop@Example.cn", "--password", "long enough pw",
                                 "--org", "遂昌县测试村股份经济合作社", "--role", "seller"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "coop@example.cn"))
        assert user.organisation.kind == "seller" and user.organisation.name == "遂昌县测试村股份经济合作社"
    again = runner.invoke(args=["users", "create", "--email", "b@example.cn", "--password", "long enough pw",
                                "--org", "遂昌县测试村股份经济合作社", "--role", "buyer"])
    assert again.exit_code == 2 and "seller" in again.output


def test_users_create_refuses_bad_input_and_changes_nothing(runner, app):
    for args in (["--email", "not-an-email", "--password", "long enough pw"],
                 ["--email", "ok@example.cn", "--password", "short"]):
        result = runner.invoke(args=["users", "create", *args, "--org", "新机构", "--role", "buyer"])
        assert result.exit_code == 2
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 0


def test_tokens_create_prints_the_token_alone(runner, client, factory):
    user = factory.user("bureau")
    result = runner.invoke(args=["tokens", "create", "--email", user.email])
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("th_") and "\n" not in token
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_seed_demo_is_idempotent_and_prints_logins(runner, app):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "bureau@lishui.example" in first.output
    with app.app_context():
        counts = [db.session.scalar(sa.select(sa.func.count()).select_from(t)) for t in db.metadata.sorted_tables]
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert [db.session.scalar(sa.select(sa.func.count()).select_from(t))
                for t in db.metadata.sorted_tables] == counts
