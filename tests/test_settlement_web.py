"""The money pages and the public benefit ledger, through the HTTP client: the cooperative records its bank
account, rule and households; the bureau pays a batch out, exports the bank's spreadsheet and records the
bank's reference; the cooperative distributes and prints the notice-board sheet; the public page and JSON
equal the journal to the fen."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from marketplace.accounts.models import User
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.settlement import journal, money_check, public_benefit
from marketplace.settlement.models import Distribution, Payout, PayoutBatch
from tests.conftest import CsrfClient
from tests.factories import PASSWORD


@pytest.fixture
def paid_world(app, factory):
    bureau = factory.user("bureau")
    listing = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    buyer = factory.user("buyer")
    with app.app_context():
        journal.set_fee_rule(db.session, actor=db.session.get(User, bureau.id), percent="2", floor_cny="0")
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes("175.402"),
                                   payment_method="bank_transfer", beneficiary="丽水市生态环境局",
                                   retirement_reason="零碳会议", listing_id=listing.id)
        db.session.commit()
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference="ICBC-1")
        db.session.commit()
    return {"bureau": bureau, "seller": listing.batch.project.seller, "buyer": buyer, "listing": listing}


def _as(app, user):
    form = CsrfClient(app.test_client())
    assert form.post_form("/login", {"email": user.email, "password": PASSWORD}).status_code == 302
    return form


def test_money_flows_from_payment_to_the_village_notice_board(app, client, paid_world):
    seller, bureau = paid_world["seller"], paid_world["bureau"]
    # 175.402 t × 30.00 = 5,262.06; fee 2 % = 105.24; proceeds 5,156.82
    coop = _as(app, seller)
    page = "/sellers/money/"
    assert "5156.82" in coop.client.get(page).get_data(as_text=True)
    assert coop.post_form(page, {"account_name": "官埔垟村股份经济合作社", "bank_name": "龙泉农商银行兰巨支行",
                                 "account_number": "201000123456789"}, action="/sellers/money/payee").status_code == 302
    refused = coop.post_form(page, {"collective_percent": "30", "households_percent": "80"},
                             action="/sellers/money/rule")
    assert refused.status_code == 422 and "100" in refused.get_data(as_text=True)
    assert coop.post_form(page, {"collective_percent": "20", "households_percent": "80"},
                          action="/sellers/money/rule").status_code == 302
    duplicate = coop.post_form(page, {"households": "王建国 3\n李秀英 2\n王建国 1"}, action="/sellers/money/households")
    assert duplicate.status_code == 422 and "王建国" in duplicate.get_data(as_text=True)
    assert coop.post_form(page, {"households": "王建国 3\n李秀英 2\n张伟 2"},
                          action="/sellers/money/households").status_code == 302

    desk = _as(app, bureau)
    org = seller.organisation_id
    too_much = desk.post_form("/bureau/money/", {f"amount_{org}": "5156.83"}, action="/bureau/money/batches")
    assert too_much.status_code == 422 and "5,156.82" in too_much.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Payout).count() == 0
    made = desk.post_form("/bureau/money/", {f"amount_{org}": "5156.82"}, action="/bureau/money/batches")
    assert made.status_code == 302
    with app.app_context():
        batch = db.session.query(PayoutBatch).one()
        payout_id, batch_id = batch.payouts[0].id, batch.id
    sheet = desk.client.get(f"/bureau/money/batches/{batch_id}.xlsx")
    assert sheet.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "收款户名" and len(rows[0]) == 5
    assert rows[1][0] == "官埔垟村股份经济合作社" and rows[1][2] == "201000123456789"
    assert str(rows[-1][3]) == "5156.82"
    batch_page = f"/bureau/money/batches/{batch_id}"
    assert desk.post_form(batch_page, {f"p{payout_id}-reference": "NB-20261204-001"},
                          action=f"/bureau/money/payouts/{payout_id}/paid").status_code == 302

    coop = _as(app, seller)
    with app.app_context():
        from marketplace.settlement import statements

        current, *_ = statements.statements_of(db.session, org)
    statement = coop.client.get(f"/sellers/money/statements/{current.starts_on.isoformat()}").get_data(as_text=True)
    assert 'data-field="opening">¥0.00' in statement and 'data-field="closing">¥0.00' in statement
    assert "5262.06" in statement and "105.24" in statement  # the sale and its fee, then the payout
    assert coop.client.get("/sellers/money/statements/2026-13").status_code == 404
    money = coop.client.get(page).get_data(as_text=True)
    assert 'data-payout-status="paid"' in money and "NB-20261204-001" in money
    distributed = coop.post_form(page, {}, action=f"/sellers/money/payouts/{payout_id}/distribute")
    assert distributed.status_code == 302
    distribution_url = distributed.headers["Location"]
    notice = coop.client.get(distribution_url).get_data(as_text=True)
    assert "王建国" in notice and "公示" in notice
    with app.app_context():
        distribution = db.session.query(Distribution).one()
        household_total = sum(line.amount_fen for line in distribution.lines)
        assert distribution.collective_fen + household_total == 515_682
    xlsx = coop.client.get(distribution_url + ".xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(values_only=True))
    assert str(rows[-1][3]) == f"{household_total / 100:.2f}"
    pdf = coop.client.get(distribution_url + ".pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    # The public ledger: masked nowhere needed (no names), equal to the journal.
    public = client.get("/villages").get_data(as_text=True)
    assert "5156.82" in public and f"{household_total / 100:.2f}" in public
    village_page = client.get(re.search(r'href="(/villages/\d+)"', public).group(1)).get_data(as_text=True)
    assert "王**" in village_page and "王建国" not in village_page and "李秀英" not in village_page
    answer = client.get("/api/v1/public/villages").get_json()
    (village,) = [v for v in answer["items"] if v["sold_tonnes"] != "0.0000"]
    assert set(village) == {"code", "name", "township", "county", "sold_tonnes", "received_cny", "paid_out_cny",
                            "distributed_cny", "households"}
    assert village == {**village, "sold_tonnes": "175.4020", "received_cny": "5156.82", "paid_out_cny": "5156.82",
                       "distributed_cny": f"{household_total / 100:.2f}", "households": 3}
    with app.app_context():
        assert public_benefit.household_distributions_fen(db.session) == household_total
        assert money_check.check_invariants(db.session) == []


def test_a_reused_bank_reference_is_a_form_error(app, client, factory, paid_world):
    seller, bureau = paid_world["seller"], paid_world["bureau"]
    with app.app_context():
        from marketplace.settlement import payouts

        payouts.set_payee_account(db.session, actor=db.session.get(User, seller.id), account_name="合作社",
                                  bank_name="银行", account_number="1234")
        b = payouts.create_batch(db.session, actor=db.session.get(User, bureau.id),
                                 amounts={seller.organisation_id: 100})
        first = b.payouts[0].id
        b2 = payouts.create_batch(db.session, actor=db.session.get(User, bureau.id),
                                  amounts={seller.organisation_id: 100})
        second, batch2 = b2.payouts[0].id, b2.id
        payouts.mark_paid(db.session, db.session.get(Payout, first), actor=db.session.get(User, bureau.id),
                          reference="SAME-REF")
        db.session.commit()
    desk = _as(app, bureau)
    answer = desk.post_form(f"/bureau/money/batches/{batch2}", {f"p{second}-reference": "SAME-REF"},
                            action=f"/bureau/money/payouts/{second}/paid")
    assert answer.status_code == 422
    assert re.search(r'class="error"[^>]*>[^<]*(already|已)', answer.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Payout, second).status == "pending"


def test_another_cooperative_cannot_see_a_distribution(app, client, factory, paid_world):
    other = factory.user("seller")
    other_coop = _as(app, other)
    assert other_coop.client.get("/sellers/money/distributions/1").status_code == 404
    assert other_coop.client.get("/sellers/money/").status_code == 200


def test_the_village_benefit_call_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/public/villages"]["get"]
    schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    items = document["components"]["schemas"][schema_ref]["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[1]
    assert set(document["components"]["schemas"][items]["properties"]) == {
        "code", "name", "township", "county", "sold_tonnes", "received_cny", "paid_out_cny", "distributed_cny",
        "households"}
    assert client.get("/api/v1/public/villages", query_string={"county": "abc"}).status_code == 422
