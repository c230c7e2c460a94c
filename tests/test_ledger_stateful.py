"""A rule-based state machine over issue, list, reserve, release, retire, cancel, pledge and release a pledge, checking the
ledger's invariants (and the model's own accounting) after every step, on PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from marketplace.accounts.models import User
from marketplace.core.errors import InsufficientCredits
from marketplace.core.quantities import format_tonnes
from marketplace.extensions import db
from marketplace.registry import ledger, pledges
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, Listing, Pledge, Project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_orders = itertools.count(1)


@pytest.fixture
def machine_world(app, factory):
    seller = factory.user("seller")
    bureau = factory.user("bureau")
    project = factory.project(seller, bureau=bureau)
    return app, seller.id, bureau.id, project.id


def test_ledger_state_machine(machine_world):
    app, seller_id, bureau_id, project_id = machine_world
    days = itertools.count(0)

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.s = db.session
            self.batches: list[int] = []
            self.listings: list[int] = []
            self.orders: dict[str, int] = {}  # order ref → units held
            self.retired = 0
            self.pledges: list[int] = []

        def teardown(self):
            self.s.rollback()
            self.s.remove()
            self.ctx.pop()

        @rule(tonnes=st.integers(1, 50), extra=st.integers(0, 9_999))
        def issue(self, tonnes, extra):
            # One day of vintage per batch: never overlapping, always inside the crediting period.
            day = date.fromordinal(date(2020, 1, 1).toordinal() + next(days))
            batch = registry.issue_batch(
                self.s, self.s.get(Project, project_id), actor=self.s.get(User, bureau_id),
                quantity_units=tonnes * 10_000 + extra, vintage_start=day, vintage_end=day,
                verification_body="中环联合认证中心", report_reference="CEC")
            self.s.commit()
            self.batches.append(batch.id)

        @precondition(lambda self: self.batches)
        @rule(data=st.data(), share=st.integers(1, 100))
        def list_units(self, data, share):
            batch_id = data.draw(st.sampled_from(self.batches))
            available = ledger.balance(self.s, batch_id, "available")
            units = max(1, available * share // 100)
            try:
                listing = registry.create_listing(self.s, self.s.get(CreditBatch, batch_id),
                                                  actor=self.s.get(User, seller_id), units=units,
                                                  price_cny_per_tonne=30, min_order_units=1)
                self.s.commit()
                self.listings.append(listing.id)
            except InsufficientCredits:
                assert available < units
                self.s.rollback()

        @precondition(lambda self: self.listings)
        @rule(data=st.data(), units=st.integers(1, 300_000))
        def reserve(self, data, units):
            listing_id = data.draw(st.sampled_from(self.listings))
            before = ledger.listing_available_units(self.s, listing_id)
            ref = f"order:{next(_orders)}"
            try:
                ledger.reserve(self.s, listing=self.s.get(Listing, listing_id), units=units, order_ref=ref)
                self.s.commit()
                self.orders[ref] = units
                assert ledger.listing_available_units(self.s, listing_id) == before - units
            except InsufficientCredits:
                self.s.rollback()
                assert before < units

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def release(self, data):
            ref = data.draw(st.sampled_from(sorted(self.orders)))
            assert ledger.release(self.s, order_ref=ref) == self.orders.pop(ref)
            self.s.commit()
            assert ledger.release(self.s, order_ref=ref) == 0

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def retire(self, data):
            ref = data.draw(st.sampled_from(sorted(self.orders)))
            retirement = ledger.retire(self.s, order_ref=ref)
            self.s.commit()
            assert retirement.units == self.orders.pop(ref)
            self.retired += retirement.units
            assert ledger.retire(self.s, order_ref=ref).units == retirement.units  # idempotent

        @precondition(lambda self: self.batches)
        @rule(data=st.data(), units=st.integers(1, 100_000))
        def cancel(self, data, units):
            batch_id = data.draw(st.sampled_from(self.batches))
            buffer = ledger.balance(self.s, batch_id, "buffer")
            try:
                registry.report_loss(self.s, self.s.get(CreditBatch, batch_id), actor=self.s.get(User, bureau_id),
                                     kind="pests", units=units, reason="松材线虫病")
                self.s.commit()
            except InsufficientCredits:
                self.s.rollback()
                assert buffer < units

        @precondition(lambda self: self.listings)
        @rule(data=st.data())
        def withdraw(self, data):
            listing_id = data.draw(st.sampled_from(self.listings))
            registry.change_listing(self.s, self.s.get(Listing, listing_id), "withdraw",
                                    actor=self.s.get(User, seller_id))
            self.s.commit()
            self.listings.remove(listing_id)

        @precondition(lambda self: self.batches)
        @rule(data=st.data(), units=st.integers(1, 300_000))
        def pledge(self, data, units):
            batch_id = data.draw(st.sampled_from(self.batches))
            available = ledger.balance(self.s, batch_id, "available")
            try:
                made = pledges.pledge_units(
                    self.s, self.s.get(CreditBatch, batch_id), actor=self.s.get(User, bureau_id),
                    tonnes=format_tonnes(units), bank_name="龙泉农商银行", contract_reference=f"GL-{next(_orders)}",
                    loan_amount="100000.00", term_start=date(2026, 1, 1), term_end=date(2028, 12, 31))
                self.s.commit()
                self.pledges.append(made.id)
                assert ledger.balance(self.s, batch_id, "available") == available - units
            except InsufficientCredits:
                self.s.rollback()
                assert available < units

        @precondition(lambda self: self.pledges)
        @rule(data=st.data())
        def release_pledge(self, data):
            pledge_id = data.draw(st.sampled_from(self.pledges))
            self.pledges.remove(pledge_id)
            pledge = self.s.get(Pledge, pledge_id)
            before = ledger.balance(self.s, pledge.batch_id, "available")
            pledges.release(self.s, pledge, actor=self.s.get(User, bureau_id))
            self.s.commit()
            assert ledger.balance(self.s, pledge.batch_id, "available") == before + pledge.units

        @invariant()
        def ledger_holds(self):
            report = ledger.check_invariants(self.s)
            assert report.ok, report.problems
            total_retired = sum(ledger.balance(self.s, b, "retired") for b in self.batches)
            assert total_retired == self.retired

    LedgerMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None,
                                               suppress_health_check=list(HealthCheck))
    # Examples share the database: the invariants are global, and each example counts only its own batches.
    LedgerMachine.TestCase().runTest()
