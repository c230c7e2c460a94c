"""The money side: every captured payment split exactly into seller proceeds and a platform fee in an
append-only journal; refunds reverse it; payouts, statements and household distributions stay within what
was there; `money check` proves it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.errors import Forbidden, InvalidTransition, ValidationFailed
from marketplace.core.quantities import parse_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.settlement import journal, money_check, payouts, shares, statements
from marketplace.settlement.models import MoneyEntry, Payout


@pytest.fixture
def world(factory):
    bureau = factory.user("bureau")
    cheap = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="30.00")
    dear = factory.listing(factory.batch(bureau=bureau), tonnes="500", price="33.33")
    buyer = factory.user("buyer")
    return {"bureau": bureau, "buyer": buyer, "cheap": cheap, "dear": dear,
            "seller": cheap.batch.project.seller, "other_seller": dear.batch.project.seller}


def _pay(session, world, tonnes: str, listing_id: int | None = None) -> Order:
    buyer = session.get(User, world["buyer"].id)
    order = orders.place_order(session, actor=buyer, units=parse_tonnes(tonnes), payment_method="bank_transfer",
                               beneficiary="测试", retirement_reason="测试", listing_id=listing_id)
    session.commit()
    orders.confirm_bank_transfer(session, order, actor=session.get(User, world["bureau"].id),
                                 reference=f"T-{order.id}")
    session.commit()
    return session.get(Order, order.id)


def _fee(session, world, percent="2", floor="0", ceiling=None):
    journal.set_fee_rule(session, actor=session.get(User, world["bureau"].id), percent=percent,
                         floor_cny=floor, ceiling_cny=ceiling)
    session.commit()


def _payee(session, seller):
    payouts.set_payee_account(session, actor=session.get(User, seller.id), account_name="龙泉市兰巨乡官埔垟村股份经济合作社",
                              bank_name="浙江龙泉农村商业银行兰巨支行", account_number="201000123456789")
    session.commit()


def test_a_payment_is_split_exactly_into_proceeds_per_line_and_the_fee(session, world):
    _fee(session, world, percent="3")
    # 600 t across both listings: 500 t at 30.00 (15,000.00) + 100 t at 33.33 (3,333.00) = 18,333.00
    order = _pay(session, world, "600")
    assert len(order.lines) == 2
    entries = session.scalars(sa.select(MoneyEntry).where(MoneyEntry.order_id == order.id)).all()
    captured = sum(e.amount_fen for e in entries if e.kind == "capture")
    fees = sum(e.amount_fen for e in entries if e.kind == "fee")
    proceeds = {e.seller_organisation_id: e.amount_fen for e in entries if e.kind == "proceeds"}
    assert captured == 1_833_300
    assert fees == 54_999  # 3 % of 18,333.00 = 549.99
    assert sum(proceeds.values()) + fees == captured
    assert journal.balance(session, journal.clearing(order.id)) == 0
    assert journal.balance(session, journal.seller(world["seller"].organisation_id)) == proceeds[
        world["seller"].organisation_id]
    assert money_check.check_invariants(session) == []


@pytest.mark.parametrize(("percent", "floor", "ceiling", "expected_fen"), [
    ("0", "0", None, 0),  # a platform that takes nothing
    ("1", "50.00", None, 5_000),  # 1 % of 300.00 is 3.00, raised to the floor
    ("10", "0", "20.00", 2_000),  # 30.00 lowered to the ceiling
])
def test_the_fee_follows_the_rule_with_floor_and_ceiling(session, world, percent, floor, ceiling, expected_fen):
    _fee(session, world, percent=percent, floor=floor, ceiling=ceiling)
    order = _pay(session, world, "10", listing_id=world["cheap"].id)
    fees = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MoneyEntry.amount_fen), 0)).where(
        MoneyEntry.order_id == order.id, MoneyEntry.kind == "fee"))
    assert fees == expected_fen
    assert money_check.check_invariants(session) == []


@pytest.mark.parametrize(("percent", "floor", "ceiling", "field"), [
    ("101", "0", None, "percent"), ("-1", "0", None, "percent"), ("2", "10.00", "5.00", "ceiling"),
    ("abc", "0", None, "percent"), ("2", "-3", None, "floor"),
])
def test_fee_rules_that_do_not_add_up_are_refused(session, world, percent, floor, ceiling, field):
    with pytest.raises(ValidationFailed) as refused:
        journal.set_fee_rule(session, actor=session.get(User, world["bureau"].id), percent=percent,
                             floor_cny=floor, ceiling_cny=ceiling)
    assert refused.value.field == field
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(journal.FeeRule)) == 0


def test_a_refund_reverses_the_split(session, world):
    _fee(session, world, percent="2")
    order = _pay(session, world, "100", listing_id=world["cheap"].id)
    seller_account = journal.seller(world["seller"].organisation_id)
    assert journal.balance(session, seller_account) == 294_000
    orders.cancel(session, order, actor=session.get(User, world["buyer"].id))
    session.commit()
    assert session.get(Order, order.id).status == "refunded"
    assert journal.balance(session, seller_account) == 0
    assert journal.balance(session, journal.FEES) == 0
    assert journal.balance(session, journal.BUYERS) == 0
    assert money_check.check_invariants(session) == []


def test_a_refund_after_payout_leaves_a_negative_balance_carried_into_the_statement(session, world):
    bureau = session.get(User, world["bureau"].id)
    seller = world["seller"]
    _payee(session, seller)
    kept = _pay(session, world, "10", listing_id=world["cheap"].id)  # 300.00, stays
    refunded = _pay(session, world, "20", listing_id=world["cheap"].id)  # 600.00, refunded after payout
    assert kept.status == refunded.status == "paid"
    batch = payouts.create_batch(session, actor=bureau, amounts={seller.organisation_id: 90_000})
    payouts.mark_paid(session, batch.payouts[0], actor=bureau, reference="ICBC-20261204-1")
    session.commit()
    orders.cancel(session, refunded, actor=session.get(User, world["buyer"].id))
    session.commit()
    assert journal.balance(session, journal.seller(seller.organisation_id)) == -60_000
    current, *_ = statements.statements_of(session, seller.organisation_id)
    sheet = statements.statement_starting(session, seller.organisation_id, current.starts_on)
    assert (sheet.sales_fen, sheet.fees_fen, sheet.refunds_fen, sheet.payouts_fen) == (90_000, 0, 60_000, 90_000)
    assert sheet.closing_fen == -60_000
    # The next sale first pays off what is owed.
    _pay(session, world, "30", listing_id=world["cheap"].id)
    assert journal.balance(session, journal.seller(seller.organisation_id)) == 30_000
    assert money_check.check_invariants(session) == []


def test_a_payout_larger_than_the_balance_changes_nothing(session, world):
    bureau = session.get(User, world["bureau"].id)
    seller = world["seller"]
    _payee(session, seller)
    _pay(session, world, "10", listing_id=world["cheap"].id)
    with pytest.raises(ValidationFailed) as refused:
        payouts.create_batch(session, actor=bureau, amounts={seller.organisation_id: 30_001})
    assert "30,000.00" not in str(refused.value.message) and "300.00" in str(refused.value.message)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Payout)) == 0
    with pytest.raises(Forbidden):
        payouts.create_batch(session, actor=session.get(User, seller.id), amounts={seller.organisation_id: 1})


def test_a_bank_reference_is_used_once_and_a_failed_payout_comes_back(session, world):
    bureau = session.get(User, world["bureau"].id)
    seller, other = world["seller"], world["other_seller"]
    _payee(session, seller)
    _payee(session, other)
    _pay(session, world, "510")  # 500 t cheap + 10 t dear
    batch = payouts.create_batch(session, actor=bureau, amounts={seller.organisation_id: 100_000,
                                                                  other.organisation_id: 20_000})
    session.commit()
    first, second = batch.payouts
    payouts.mark_paid(session, first, actor=bureau, reference="REF-1")
    payouts.mark_paid(session, first, actor=bureau, reference="REF-1")  # the same click again
    session.commit()
    with pytest.raises(ValidationFailed) as refused:
        payouts.mark_paid(session, second, actor=bureau, reference="REF-1")
    assert refused.value.field == "reference"
    session.rollback()
    assert session.get(Payout, second.id).status == "pending"
    payouts.mark_failed(session, session.get(Payout, second.id), actor=bureau, reason="账号有误")
    session.commit()
    with pytest.raises(InvalidTransition):
        payouts.mark_paid(session, session.get(Payout, second.id), actor=bureau, reference="REF-2")
    session.rollback()
    assert journal.balance(session, journal.seller(other.organisation_id)) == 33_330
    assert journal.balance(session, journal.cooperative(seller.organisation_id)) == 100_000
    assert money_check.check_invariants(session) == []


def test_households_share_a_payout_by_largest_remainder(session, world):
    bureau = session.get(User, world["bureau"].id)
    seller = world["seller"]
    coop = session.get(User, seller.id)
    _payee(session, seller)
    _pay(session, world, "10", listing_id=world["cheap"].id)
    batch = payouts.create_batch(session, actor=bureau, amounts={seller.organisation_id: 10_001})
    payouts.mark_paid(session, batch.payouts[0], actor=bureau, reference="REF-H")
    shares.set_rule(session, actor=coop, collective_percent="20", households_percent="80")
    shares.replace_households(session, actor=coop, text="王建国 1\n李秀英,1\n张伟 1\n")
    session.commit()
    distribution = shares.distribute(session, session.get(Payout, batch.payouts[0].id), actor=coop)
    session.commit()
    # 100.01 → collective 20.00 (2000.2 → 2000), households 80.01 → 26.67 + 26.67 + 26.67
    assert distribution.collective_fen == 2_000
    assert [line.amount_fen for line in distribution.lines] == [2_667, 2_667, 2_667]
    assert distribution.collective_fen + sum(line.amount_fen for line in distribution.lines) == 10_001
    again = shares.distribute(session, session.get(Payout, batch.payouts[0].id), actor=coop)
    assert again.id == distribution.id
    assert journal.balance(session, journal.cooperative(seller.organisation_id)) == 0
    assert money_check.check_invariants(session) == []


@pytest.mark.parametrize(("values", "texts"), [
    ({"collective_percent": "30", "households_percent": "80"}, "100 %"),
    ({"collective_percent": "10", "households_percent": "80"}, "100 %"),
])
def test_a_distribution_rule_must_add_up_to_100_percent(session, world, values, texts):
    with pytest.raises(ValidationFailed) as refused:
        shares.set_rule(session, actor=session.get(User, world["seller"].id), **values)
    assert refused.value.field == "households_percent"
    assert texts in str(refused.value.message)


def test_a_household_list_with_duplicates_is_refused(session, world):
    with pytest.raises(ValidationFailed) as refused:
        shares.replace_households(session, actor=session.get(User, world["seller"].id),
                                  text="王建国 2\n李秀英 1\n王建国 3\n")
    assert "王建国" in str(refused.value.message) and "3" in str(refused.value.message)
    session.rollback()
    assert shares.active_households(session, world["seller"].organisation_id) == []


def test_nothing_is_distributed_before_the_bank_paid(session, world):
    bureau = session.get(User, world["bureau"].id)
    seller = world["seller"]
    coop = session.get(User, seller.id)
    _payee(session, seller)
    _pay(session, world, "10", listing_id=world["cheap"].id)
    batch = payouts.create_batch(session, actor=bureau, amounts={seller.organisation_id: 10_000})
    shares.set_rule(session, actor=coop, collective_percent="100", households_percent="0")
    session.commit()
    with pytest.raises(InvalidTransition):
        shares.distribute(session, session.get(Payout, batch.payouts[0].id), actor=coop)


def test_the_largest_remainder_parts_always_sum_to_the_whole():
    assert journal.largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert journal.largest_remainder(7, [0, 5]) == [0, 7]
    assert journal.largest_remainder(0, [1, 2]) == [0, 0]
    for total in (1, 99, 1_000_003):
        for weights in ([3, 7, 11], [1], [5, 5, 5, 5, 1]):
            assert sum(journal.largest_remainder(total, weights)) == total


@pytest.mark.postgres
def test_the_money_journal_is_append_only_on_postgresql(session, world):
    _pay(session, world, "1", listing_id=world["cheap"].id)
    with pytest.raises(sa.exc.DBAPIError, match="money_entries is append-only"):
        session.execute(sa.update(MoneyEntry).values(amount_fen=1))
    session.rollback()
    with pytest.raises(sa.exc.DBAPIError, match="money_entries is append-only"):
        session.execute(sa.delete(MoneyEntry))
    session.rollback()


def test_money_check_command_reports_a_broken_journal(app, runner, world):
    with app.app_context():
        _pay(db.session, world, "1", listing_id=world["cheap"].id)
    result = runner.invoke(args=["money", "check"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        # A fee with no capture behind it (written behind the journal's back).
        journal.post(db.session, ref="fee:forged", kind="fee", debit="clearing:order:999999", credit=journal.FEES,
                     amount_fen=1)
        db.session.commit()
    result = runner.invoke(args=["money", "check"])
    assert result.exit_code == 1
    assert "FAILED" in result.output


@pytest.mark.parametrize(("settings", "named"), [
    ({"PLATFORM_FEE_PERCENT": "120"}, "PLATFORM_FEE_PERCENT"),
    ({"PLATFORM_FEE_FLOOR_FEN": 500, "PLATFORM_FEE_CEILING_FEN": "100"}, "PLATFORM_FEE_CEILING_FEN"),
    ({"PLATFORM_FEE_PERCENT": "abc"}, "PLATFORM_FEE_"),
])
def test_the_application_refuses_default_fee_settings_that_do_not_add_up(settings, named):
    # The check create_app runs (settlement.init_app); called directly, because a factory that stops half-way
    # would leave the shared OpenAPI document without the later features' calls.
    from marketplace.settlement import check_fee_settings

    with pytest.raises(ValueError, match=named):
        check_fee_settings({"PLATFORM_FEE_PERCENT": "0", "PLATFORM_FEE_FLOOR_FEN": 0, **settings})
    check_fee_settings({"PLATFORM_FEE_PERCENT": "2.5", "PLATFORM_FEE_FLOOR_FEN": 100, "PLATFORM_FEE_CEILING_FEN": "100"})
