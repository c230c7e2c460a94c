"""The ledger: balanced movements, reservations, retirement with serial ranges, and its invariants."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.errors import InsufficientCredits
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, LedgerBalance, Listing, SerialRange


def _check(app):
    with app.app_context():
        report = ledger.check_invariants(db.session)
        assert report.ok, report.problems
        return report


def test_issuance_splits_buffer_and_balances(app, factory):
    batch = factory.batch(tonnes="175.402")
    with app.app_context():
        balances = ledger.batch_balances(db.session, batch.id)
    assert batch.quantity_units == 1_754_020
    assert batch.buffer_units == 175_402  # 10 % exactly
    assert balances == {"issuance": -1_754_020, "available": 1_578_618, "buffer": 175_402, "retired": 0,
                        "cancelled": 0}
    assert batch.serial_end - batch.serial_start == batch.quantity_units
    _check(app)


def test_reserve_release_retire_cycle(app, factory):
    listing = factory.listing(tonnes="100")
    with app.app_context():
        row = db.session.get(Listing, listing.id)
        ledger.reserve(db.session, listing=row, units=400_000, order_ref="order:1")
        ledger.reserve(db.session, listing=row, units=100_000, order_ref="order:2")
        db.session.commit()
        assert ledger.listing_available_units(db.session, listing.id) == 500_000
        with pytest.raises(InsufficientCredits):
            ledger.reserve(db.session, listing=row, units=500_001, order_ref="order:3")
        db.session.rollback()
        assert ledger.release(db.session, order_ref="order:2") == 100_000
        assert ledger.release(db.session, order_ref="order:2") == 0  # idempotent
        retirement = ledger.retire(db.session, order_ref="order:1")
        db.session.commit()
        again = ledger.retire(db.session, order_ref="order:1")
        assert [(r.start, r.end) for r in again.ranges] == [(r.start, r.end) for r in retirement.ranges]
        assert retirement.units == 400_000
        (serial_range,) = retirement.ranges
        batch = db.session.get(CreditBatch, listing.batch_id)
        assert serial_range.start == batch.serial_start
        assert ledger.listing_available_units(db.session, listing.id) == 600_000
        assert ledger.balance(db.session, batch.id, "retired") == 400_000
    _check(app)


def test_withdraw_returns_unreserved_units(app, factory):
    listing = factory.listing(tonnes="10")
    with app.app_context():
        row = db.session.get(Listing, listing.id)
        ledger.reserve(db.session, listing=row, units=10_000, order_ref="order:9")
        seller = db.session.get(User, listing.batch.project.seller.id)
        registry.change_listing(db.session, row, "withdraw", actor=seller)
        db.session.commit()
        assert ledger.listing_available_units(db.session, listing.id) == 0
        assert ledger.release(db.session, order_ref="order:9") == 10_000
        db.session.commit()
        assert ledger.listing_available_units(db.session, listing.id) == 0
        assert ledger.balance(db.session, listing.batch_id, "available") == 9_000_000  # 900 t: all of it back
    _check(app)


def test_buffer_loss_cancels_serials_from_the_buffer_block(app, factory):
    batch = factory.batch(tonnes="100")
    bureau = factory.user("bureau")
    with app.app_context():
        row = db.session.get(CreditBatch, batch.id)
        loss = registry.report_loss(db.session, row, actor=db.session.get(User, bureau.id), kind="fire",
                                    units=50_000, reason="2024年山火")
        db.session.commit()
        rng = db.session.scalar(sa.select(SerialRange).where(SerialRange.ref == f"loss:{loss.id}"))
        assert rng.start == batch.serial_end - batch.buffer_units
        with pytest.raises(InsufficientCredits):
            registry.report_loss(db.session, row, actor=db.session.get(User, bureau.id), kind="fire",
                                 units=50_001, reason="too much")
        db.session.rollback()
    _check(app)


def test_check_finds_tampering(app, factory):
    factory.listing(tonnes="10")
    with app.app_context():
        db.session.execute(sa.update(LedgerBalance).where(LedgerBalance.account == "available")
                           .values(units=LedgerBalance.units + 1))
        db.session.commit()
        report = ledger.check_invariants(db.session)
    assert not report.ok
    assert any("sum to 1 units" in p for p in report.problems)
    assert any("journal gives" in p for p in report.problems)
