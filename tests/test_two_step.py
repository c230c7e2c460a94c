"""Two-step sign-in with TOTP: required for bureau staff (TWO_STEP_REQUIRED_ROLES), enrolment on the first
sign-in with the secret as text and QR image, single-use codes and recovery codes, an encrypted secret."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import AccountEvent, RecoveryCode, User
from marketplace.extensions import db
from tests.conftest import CsrfClient
from tests.factories import PASSWORD


@pytest.fixture
def strict_app(make_app):
    return make_app(TWO_STEP_REQUIRED_ROLES=frozenset({"bureau"}))


def _password_step(client, email):
    response = CsrfClient(client).post_form("/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return response.headers["Location"]


def _code_for(secret, offset_steps=0):
    return pyotp.TOTP(secret).at(time.time() + offset_steps * 30)


def _enrol(client, email):
    """Sign in the first time: password, then set up the app; returns (secret, recovery codes)."""
    assert _password_step(client, email).endswith("/login/second-step")
    page = client.get("/login/second-step").get_data(as_text=True)
    secret = re.search(r'id="two-step-secret">([A-Z2-7]+)<', page).group(1)
    assert 'src="data:image/svg+xml' in page  # the QR code, an image (no script)
    assert client.get("/login/second-step").headers["Cache-Control"] == "no-store"  # the secret is not cached
    done = CsrfClient(client).post_form("/login/second-step", {"code": _code_for(secret)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def test_bureau_staff_must_set_up_two_step_sign_in_on_their_first_sign_in(strict_app, factory):
    bureau = factory.user("bureau")
    client = strict_app.test_client()
    _password_step(client, bureau.email)
    assert client.get("/bureau/").status_code == 302  # the password alone does not sign in
    _enrol(client, bureau.email)
    assert client.get("/bureau/").status_code == 200
    with strict_app.app_context():
        user = db.session.get(User, bureau.id)
        assert user.two_step_enabled_at is not None


def test_the_secret_is_not_stored_in_clear(strict_app, factory):
    bureau = factory.user("bureau")
    secret, _codes = _enrol(strict_app.test_client(), bureau.email)
    with strict_app.app_context():
        stored = db.session.scalar(sa.select(User.totp_secret_encrypted).where(User.id == bureau.id))
        hashes = db.session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == bureau.id)).all()
    assert secret not in stored
    assert len(hashes) == 10 and all(len(h) == 64 for h in hashes)


def test_later_sign_ins_ask_for_a_code_and_refuse_a_wrong_or_replayed_one(strict_app, factory):
    bureau = factory.user("bureau")
    secret, _codes = _enrol(strict_app.test_client(), bureau.email)
    client = strict_app.test_client()
    _password_step(client, bureau.email)
    wrong = CsrfClient(client).post_form("/login/second-step", {"code": "000000" if _code_for(secret) != "000000"
                                                                 else "111111"})
    assert wrong.status_code == 422
    assert client.get("/bureau/").status_code == 302
    # The code used at enrolment (same 30-second step) cannot sign in again.
    replay = CsrfClient(client).post_form("/login/second-step", {"code": _code_for(secret)})
    if replay.status_code == 422:
        good = CsrfClient(client).post_form("/login/second-step", {"code": _code_for(secret, 1)})
    else:  # the clock moved to the next step meanwhile: that code was new
        good = replay
    assert good.status_code == 302
    assert client.get("/bureau/").status_code == 200
    with strict_app.app_context():
        kinds = db.session.scalars(sa.select(AccountEvent.kind).where(AccountEvent.user_id == bureau.id)).all()
    assert "two_step_failed" in kinds and "two_step_enabled" in kinds


def test_a_recovery_code_signs_in_once(strict_app, factory):
    bureau = factory.user("bureau")
    _secret, codes = _enrol(strict_app.test_client(), bureau.email)
    first = strict_app.test_client()
    _password_step(first, bureau.email)
    assert CsrfClient(first).post_form("/login/second-step", {"code": codes[0]}).status_code == 302
    assert first.get("/bureau/").status_code == 200
    second = strict_app.test_client()
    _password_step(second, bureau.email)
    assert CsrfClient(second).post_form("/login/second-step", {"code": codes[0]}).status_code == 422


def test_the_second_step_must_follow_the_password(strict_app, factory):
    bureau = factory.user("bureau")
    secret, _codes = _enrol(strict_app.test_client(), bureau.email)
    client = strict_app.test_client()
    # No password step: the page sends the visitor back to sign in.
    assert client.get("/login/second-step").headers["Location"].endswith("/login")
    _password_step(client, bureau.email)
    with client.session_transaction() as session:
        session["_tanhui_pending"] = {**session["_tanhui_pending"], "at": time.time() - 301}
    assert client.get("/login/second-step").status_code == 302  # five minutes later: sign in again
    assert client.get("/bureau/").status_code == 302
    assert secret


def test_a_buyer_may_turn_two_step_on_and_off_from_the_account_page(strict_app, factory):
    buyer = factory.user("buyer")
    client = strict_app.test_client()
    assert _password_step(client, buyer.email).endswith("/buyers/")  # not required of buyers
    page = client.get("/account/two-step").get_data(as_text=True)
    secret = re.search(r'id="two-step-secret">([A-Z2-7]+)<', page).group(1)
    assert CsrfClient(client).post_form("/account/two-step", {"code": _code_for(secret)}).status_code == 200
    fresh = strict_app.test_client()
    assert _password_step(fresh, buyer.email).endswith("/login/second-step")
    off = CsrfClient(client).post_form("/account/", {"password": PASSWORD}, action="/account/two-step/disable")
    assert off.status_code == 302
    assert _password_step(strict_app.test_client(), buyer.email).endswith("/buyers/")


def test_bureau_staff_cannot_turn_the_required_second_step_off(strict_app, factory):
    bureau = factory.user("bureau")
    client = strict_app.test_client()
    _enrol(client, bureau.email)
    CsrfClient(client).post_form("/account/", {"password": PASSWORD}, action="/account/two-step/disable")
    with strict_app.app_context():
        assert db.session.get(User, bureau.id).two_step_enabled_at is not None


def test_the_bureau_turns_a_lost_second_step_off_and_the_user_enrols_again(strict_app, factory):
    bureau = factory.user("bureau")
    colleague = factory.user("bureau")
    _secret, _codes = _enrol(strict_app.test_client(), colleague.email)
    staff = strict_app.test_client()
    _enrol(staff, bureau.email)
    page = f"/bureau/users/{colleague.id}"
    CsrfClient(staff).post_form(page, {}, action=f"{page}/reset-two-step")
    with strict_app.app_context():
        assert db.session.get(User, colleague.id).two_step_enabled_at is None
        assert db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))
                                 .where(RecoveryCode.user_id == colleague.id)) == 0
    _enrol(strict_app.test_client(), colleague.email)  # a new secret, new codes


def test_the_cli_turns_a_second_step_off(strict_app, factory):
    bureau = factory.user("bureau")
    _enrol(strict_app.test_client(), bureau.email)
    result = strict_app.test_cli_runner().invoke(args=["users", "reset-two-step", "--email", bureau.email])
    assert result.exit_code == 0, result.output
    with strict_app.app_context():
        assert db.session.get(User, bureau.id).two_step_enabled_at is None


def test_setting_up_the_app_may_take_longer_than_typing_a_code(strict_app, factory):
    bureau = factory.user("bureau")
    client = strict_app.test_client()
    _password_step(client, bureau.email)
    with client.session_transaction() as session:
        session["_tanhui_pending"] = {**session["_tanhui_pending"], "at": time.time() - 600}
    assert client.get("/login/second-step").status_code == 200  # ten minutes to install an app
    with client.session_transaction() as session:
        session["_tanhui_pending"] = {**session["_tanhui_pending"], "at": time.time() - 901}
    assert client.get("/login/second-step").status_code == 302
