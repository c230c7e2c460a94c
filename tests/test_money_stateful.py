"""A rule-based state machine over pay, refund, pay out, mark paid, fail a payout and distribute, checking
`money check`'s invariants (and the model's own accounting of each cooperative) after every step, on
PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from marketplace.accounts.models import User
from marketplace.core.errors import ValidationFailed
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.settlement import journal, money_check, payouts, shares
from marketplace.settlement.models import Payout

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_references = itertools.count(1)


@pytest.fixture
def money_world(app, factory):
    bureau = factory.user("bureau")
    buyer = factory.user("buyer")
    with app.app_context():
        journal.set_fee_rule(db.session, actor=db.session.get(User, bureau.id), percent="2.5", floor_cny="1.00",
                             ceiling_cny="500.00")
        db.session.commit()

    def cooperatives():
        """Two new cooperatives with a listing each, a bank account, a rule and households: each example
        starts from zero balances of its own (the journal cannot be emptied between examples)."""
        listings = [factory.listing(factory.batch(bureau=bureau, tonnes="20000"), tonnes="10000", price=price)
                    for price in ("30.00", "41.37")]
        sellers = [listing.batch.project.seller for listing in listings]
        with app.app_context():
            for seller in sellers:
                coop = db.session.get(User, seller.id)
                payouts.set_payee_account(db.session, actor=coop, account_name="合作社", bank_name="农商银行",
                                          account_number="6200000000001")
                shares.set_rule(db.session, actor=coop, collective_percent="20", households_percent="80")
                shares.replace_households(db.session, actor=coop, text="王建国 3\n李秀英 2\n张伟 1\n")
            db.session.commit()
        return [s.id for s in sellers], [s.organisation_id for s in sellers], [listing.id for listing in listings]

    return app, bureau.id, buyer.id, cooperatives


def test_money_state_machine(money_world):
    app, bureau_id, buyer_id, cooperatives = money_world

    class MoneyMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.seller_user_ids, self.seller_org_ids, self.listing_ids = cooperatives()
            self.ctx = app.app_context()
            self.ctx.push()
            self.s = db.session
            self.paid_orders: list[int] = []
            self.pending_payouts: list[int] = []
            self.paid_payouts: list[int] = []
            self.expected = dict.fromkeys(self.seller_org_ids, 0)
            self.undistributed = dict.fromkeys(self.seller_org_ids, 0)

        def teardown(self):
            self.s.rollback()
            self.s.remove()
            self.ctx.pop()

        def bureau(self):
            return self.s.get(User, bureau_id)

        @rule(tonnes=st.integers(1, 200), extra=st.integers(0, 9_999), which=st.integers(0, 1))
        def pay(self, tonnes, extra, which):
            order = orders.place_order(self.s, actor=self.s.get(User, buyer_id), units=tonnes * 10_000 + extra,
                                       payment_method="bank_transfer", beneficiary="测试", retirement_reason="测试",
                                       listing_id=self.listing_ids[which])
            self.s.commit()
            orders.confirm_bank_transfer(self.s, order, actor=self.bureau(), reference=f"B{next(_references)}")
            self.s.commit()
            self.paid_orders.append(order.id)
            for entry in journal.entries_for(self.s, [journal.seller(org) for org in self.seller_org_ids]):
                if entry.order_id == order.id and entry.kind == "proceeds":
                    self.expected[entry.seller_organisation_id] += entry.amount_fen

        @precondition(lambda self: self.paid_orders)
        @rule(data=st.data())
        def refund(self, data):
            order_id = data.draw(st.sampled_from(self.paid_orders))
            self.paid_orders.remove(order_id)
            order = self.s.get(Order, order_id)
            before = {org: journal.balance(self.s, journal.seller(org)) for org in self.seller_org_ids}
            proceeds = {}
            for entry in journal.entries_for(self.s, [journal.seller(org) for org in self.seller_org_ids]):
                if entry.order_id == order_id and entry.kind == "proceeds":
                    proceeds[entry.seller_organisation_id] = proceeds.get(entry.seller_organisation_id, 0) + entry.amount_fen
            orders.cancel(self.s, order, actor=self.s.get(User, buyer_id))
            self.s.commit()
            orders.cancel(self.s, self.s.get(Order, order_id), actor=self.s.get(User, buyer_id))  # again: nothing
            self.s.commit()
            for org in self.seller_org_ids:
                self.expected[org] -= proceeds.get(org, 0)
                assert journal.balance(self.s, journal.seller(org)) == before[org] - proceeds.get(org, 0)

        @rule(which=st.integers(0, 1), share=st.integers(1, 120))
        def pay_out(self, which, share):
            org = self.seller_org_ids[which]
            balance = journal.balance(self.s, journal.seller(org))
            amount = max(1, balance * share // 100)
            try:
                batch = payouts.create_batch(self.s, actor=self.bureau(), amounts={org: amount})
            except ValidationFailed:
                self.s.rollback()
                assert amount > balance
                return
            self.s.commit()
            assert amount <= balance
            self.expected[org] -= amount
            self.pending_payouts.append(batch.payouts[0].id)

        @precondition(lambda self: self.pending_payouts)
        @rule(data=st.data())
        def mark_paid(self, data):
            payout_id = data.draw(st.sampled_from(self.pending_payouts))
            self.pending_payouts.remove(payout_id)
            payout = payouts.mark_paid(self.s, self.s.get(Payout, payout_id), actor=self.bureau(),
                                       reference=f"P{next(_references)}")
            self.s.commit()
            self.undistributed[payout.seller_organisation_id] += payout.amount_fen
            self.paid_payouts.append(payout_id)

        @precondition(lambda self: self.pending_payouts)
        @rule(data=st.data())
        def fail_payout(self, data):
            payout_id = data.draw(st.sampled_from(self.pending_payouts))
            self.pending_payouts.remove(payout_id)
            payout = payouts.mark_failed(self.s, self.s.get(Payout, payout_id), actor=self.bureau(), reason="户名不符")
            self.s.commit()
            self.expected[payout.seller_organisation_id] += payout.amount_fen

        @precondition(lambda self: self.paid_payouts)
        @rule(data=st.data())
        def distribute(self, data):
            payout_id = data.draw(st.sampled_from(self.paid_payouts))
            self.paid_payouts.remove(payout_id)
            payout = self.s.get(Payout, payout_id)
            coop = self.s.get(User, self.seller_user_ids[self.seller_org_ids.index(payout.seller_organisation_id)])
            distribution = shares.distribute(self.s, payout, actor=coop)
            self.s.commit()
            assert distribution.collective_fen + sum(line.amount_fen for line in distribution.lines) == payout.amount_fen
            self.undistributed[payout.seller_organisation_id] -= payout.amount_fen

        @invariant()
        def money_holds(self):
            assert money_check.check_invariants(self.s) == []
            for org in self.seller_org_ids:
                assert journal.balance(self.s, journal.seller(org)) == self.expected[org]
                assert journal.balance(self.s, journal.cooperative(org)) == self.undistributed[org] >= 0

    MoneyMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None,
                                              suppress_health_check=list(HealthCheck))
    MoneyMachine.TestCase().runTest()
