"""The platform operator the bureau delegates its settlement work to: a user of an ``operator`` organisation.
The bureau grants the role (creating the user, or enabling them again) and revokes it (disabling them), each on
the account audit log with who did it; the operator makes payout batches, exports the bank's sheet and records
payouts paid or failed (each on its own audit log), but gets 403 for the bureau's other work and 404 for other
organisations' objects."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import AccountEvent, Organisation, User
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.orders import service as orders
from marketplace.settlement import money_check, payouts
from marketplace.settlement.models import Payout, PayoutBatch
from tests.conftest import CsrfClient
from tests.factories import PASSWORD


def _as(app, user):
    form = CsrfClient(app.test_client())
    answer = form.post_form("/login", {"email": user.email, "password": PASSWORD})
    assert answer.status_code == 302
    return form, answer


def _events(app, user_id: int) -> list[tuple[str, int | None, str]]:
    with app.app_context():
        return [(e.kind, e.actor_id, e.detail) for e in db.session.scalars(
            sa.select(AccountEvent).where(AccountEvent.user_id == user_id).order_by(AccountEvent.id))]


@pytest.fixture
def paid_world(app, factory):
    bureau = factory.user("bureau")
    listing = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    seller = listing.batch.project.seller
    with app.app_context():
        for n in (1, 2):
            order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("10"),
                                       payment_method="bank_transfer", beneficiary="测试", retirement_reason="测试",
                                       listing_id=listing.id)
            db.session.commit()
            orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference=f"T-{n}")
            db.session.commit()
        payouts.set_payee_account(db.session, actor=db.session.get(User, seller.id), account_name="官埔垟村股份经济合作社",
                                  bank_name="龙泉农商银行兰巨支行", account_number="201000123456789")
        event = footprint.create_event(db.session, db.session.get(User, buyer.id), name="年会", starts_on=date(2026, 5, 1),
                                       ends_on=date(2026, 5, 2), location="丽水")
        db.session.commit()
        event_id = event.id
    return {"bureau": bureau, "buyer": buyer, "seller": seller, "listing": listing, "event_id": event_id}


def test_users_create_with_the_operator_role(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--email", "op@example.cn", "--password", PASSWORD,
                                 "--org", "丽水市生态产品运营有限公司", "--role", "operator"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "op@example.cn"))
        assert user.role == "operator" and user.organisation.kind == "operator"
        user_id = user.id
    assert _events(app, user_id) == [("operator_granted", None, "command line")]
    # the organisation is an operator: a bureau user cannot be added to it
    refused = runner.invoke(args=["users", "create", "--email", "b@example.cn", "--password", PASSWORD,
                                  "--org", "丽水市生态产品运营有限公司", "--role", "bureau"])
    assert refused.exit_code == 2 and "operator" in refused.output


def test_the_bureau_grants_and_revokes_the_operator_role(app, factory):
    bureau = factory.user("bureau")
    desk, _answer = _as(app, bureau)
    from marketplace.accounts.credit_code import complete_credit_code

    made = desk.post_form("/bureau/organisations", {"kind": "operator", "name": "丽水两山运营公司",
                                                    "credit_code": complete_credit_code("91331100MA2A00001")})
    assert made.status_code == 302
    with app.app_context():
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == "丽水两山运营公司"))
        assert org.kind == "operator"
        org_id = org.id
    page = f"/bureau/organisations/{org_id}"
    assert desk.post_form(page, {"email": "ops@example.cn", "password": PASSWORD, "display_name": "运营"}).status_code == 302
    with app.app_context():
        operator_id = db.session.scalar(sa.select(User.id).where(User.email == "ops@example.cn"))
    assert _events(app, operator_id) == [("operator_granted", bureau.id, "")]

    operator = type("U", (), {"email": "ops@example.cn"})
    ops, answer = _as(app, operator)
    assert answer.headers["Location"].endswith("/bureau/money/")  # the operator's home is the money desk
    assert ops.client.get("/bureau/money/").status_code == 200
    user_page = f"/bureau/users/{operator_id}"
    assert "data-field=\"operator-role\"" in desk.client.get(user_page).get_data(as_text=True)
    assert desk.post_form(user_page, {"active": "0"}, action=f"/bureau/users/{operator_id}/active").status_code == 302
    kinds = [(kind, actor) for kind, actor, _detail in _events(app, operator_id)]
    assert ("operator_revoked", bureau.id) in kinds and ("disabled", bureau.id) in kinds
    # the revoked operator's session has ended
    assert ops.client.get("/bureau/money/").status_code == 302
    assert desk.post_form(user_page, {"active": "1"}, action=f"/bureau/users/{operator_id}/active").status_code == 302
    assert [kind for kind, _actor, _detail in _events(app, operator_id)][-1] == "operator_granted"


def test_the_operator_pays_out_and_every_step_is_on_its_audit_log(app, factory, paid_world):
    operator = factory.user("operator")
    ops, _answer = _as(app, operator)
    org_id = paid_world["seller"].organisation_id
    made = ops.post_form("/bureau/money/", {f"amount_{org_id}": "100.00"}, action="/bureau/money/batches")
    assert made.status_code == 302
    with app.app_context():
        batch = db.session.scalar(sa.select(PayoutBatch).order_by(PayoutBatch.id.desc()))
        batch_id, payout_id, reference = batch.id, batch.payouts[0].id, batch.reference
        assert batch.created_by_id == operator.id
    sheet = ops.client.get(f"/bureau/money/batches/{batch_id}.xlsx")
    assert sheet.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert any("201000123456789" in [str(c) for c in row] for row in rows)
    page = f"/bureau/money/batches/{batch_id}"
    # a payout larger than the balance: refused, nothing changed
    too_much = ops.post_form("/bureau/money/", {f"amount_{org_id}": "9999.00"}, action="/bureau/money/batches")
    assert too_much.status_code == 422
    assert ops.post_form(page, {f"p{payout_id}-reference": "NB-OP-1"},
                         action=f"/bureau/money/payouts/{payout_id}/paid").status_code == 302
    second = ops.post_form("/bureau/money/", {f"amount_{org_id}": "50.00"}, action="/bureau/money/batches")
    assert second.status_code == 302
    with app.app_context():
        failed_id = db.session.scalar(sa.select(Payout.id).order_by(Payout.id.desc()))
    assert ops.post_form(page, {f"p{failed_id}-reason": "户名不符"},
                         action=f"/bureau/money/payouts/{failed_id}/failed").status_code == 302
    # a bank reference used before: refused
    with app.app_context():
        third = payouts.create_batch(db.session, actor=db.session.get(User, operator.id), amounts={org_id: 1_000})
        db.session.commit()
        third_id = third.payouts[0].id
    reused = ops.post_form(page, {f"p{third_id}-reference": "NB-OP-1"}, action=f"/bureau/money/payouts/{third_id}/paid")
    assert reused.status_code == 422
    kinds = [(kind, actor, detail) for kind, actor, detail in _events(app, operator.id)]
    assert [k for k, _a, _d in kinds if k.startswith("payout")] == ["payout_batch_created", "payout_paid",
                                                                    "payout_batch_created", "payout_failed",
                                                                    "payout_batch_created"]
    assert all(actor == operator.id for _k, actor, _d in kinds if _k.startswith("payout"))
    assert any(reference in detail for _k, _a, detail in kinds)
    with app.app_context():
        assert db.session.get(Payout, third_id).status == "pending"
        assert money_check.check_invariants(db.session) == []


def test_the_operator_gets_403_outside_the_desk_and_404_for_others_objects(app, factory, paid_world):
    operator = factory.user("operator")
    ops, _answer = _as(app, operator)
    project_id = paid_world["listing"].batch.project.id
    for url in (f"/bureau/projects/{project_id}", "/bureau/organisations", f"/bureau/users/{paid_world['bureau'].id}",
                "/bureau/pledges/", "/bureau/orders", "/sellers/money/", "/buyers/events"):
        assert ops.client.get(url).status_code == 403, url
    assert ops.post_form("/bureau/money/", {"percent": "5"}, action="/bureau/money/fee-rule").status_code == 403
    token = factory.token(operator)
    event = ops.client.get(f"/api/v1/events/{paid_world['event_id']}", headers={"Authorization": f"Bearer {token}"})
    assert event.status_code == 404
    owner = factory.token(paid_world["buyer"])  # the same call of its owner answers
    assert ops.client.get(f"/api/v1/events/{paid_world['event_id']}",
                          headers={"Authorization": f"Bearer {owner}"}).status_code == 200
    # a statement of an organisation that has none
    assert ops.client.get(f"/bureau/money/statements/{operator.organisation_id}/2026-01-01").status_code == 404
