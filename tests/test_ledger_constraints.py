"""The database itself refuses what the ledger must never contain (PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.registry.models import LedgerBalance, LedgerEntry, Listing, SerialRange

pytestmark = pytest.mark.postgres


def _retired_listing(app, factory):
    listing = factory.listing(tonnes="10")
    with app.app_context():
        ledger.reserve(db.session, listing=db.session.get(Listing, listing.id), units=1000, order_ref="order:1")
        retirement = ledger.retire(db.session, order_ref="order:1")
        db.session.commit()
        (rng,) = retirement.ranges
        return listing, rng.batch_id, rng.start, rng.end


def test_overlapping_ranges_are_refused(app, factory):
    _listing, batch_id, start, end = _retired_listing(app, factory)
    with app.app_context(), pytest.raises(IntegrityError, match="ex_serial_ranges_no_overlap"):
        db.session.add(SerialRange(batch_id=batch_id, start=start + 10, end=end + 10, kind="retirement",
                                   ref="order:2"))
        db.session.commit()


def test_the_same_order_cannot_retire_twice_in_a_batch(app, factory):
    _listing, batch_id, _start, end = _retired_listing(app, factory)
    with app.app_context(), pytest.raises(IntegrityError, match="uq_serial_ranges_ref_batch"):
        db.session.add(SerialRange(batch_id=batch_id, start=end, end=end + 5, kind="retirement", ref="order:1"))
        db.session.commit()


def test_negative_balances_are_refused(app, factory):
    listing = factory.listing(tonnes="10")
    with app.app_context(), pytest.raises(IntegrityError, match="ck_ledger_balances_not_negative"):
        db.session.execute(sa.update(LedgerBalance).where(LedgerBalance.account == f"listed:{listing.id}")
                           .values(units=-1))
        db.session.commit()


@pytest.mark.parametrize("statement", [
    sa.update(LedgerEntry).values(units=LedgerEntry.units + 1),
    sa.delete(LedgerEntry),
    sa.delete(SerialRange),
])
def test_journal_and_ranges_are_append_only(app, factory, statement):
    _retired_listing(app, factory)
    with app.app_context(), pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(statement)
        db.session.commit()


@pytest.mark.parametrize(("statement", "table", "operation"), [
    (sa.update(SerialRange).values(end=SerialRange.end + 1), "serial_ranges", "UPDATE"),
    (sa.delete(SerialRange), "serial_ranges", "DELETE"),
    (sa.update(LedgerEntry).values(units=LedgerEntry.units + 1), "ledger_entries", "UPDATE"),
])
def test_the_refusal_names_the_table_it_guards(app, factory, statement, table, operation):
    _retired_listing(app, factory)
    with app.app_context(), pytest.raises(DBAPIError, match=rf"\b{table} is append-only \({operation} refused\)"):
        db.session.execute(statement)
        db.session.commit()


def test_serial_blocks_of_batches_cannot_overlap(app, factory):
    batch = factory.batch(tonnes="10")
    with app.app_context(), pytest.raises(IntegrityError, match="ex_credit_batches_no_overlap"):
        db.session.execute(sa.text(
            "INSERT INTO credit_batches (project_id, vintage_start, vintage_end, quantity_units, buffer_units, "
            "serial_start, serial_end, next_serial, next_buffer_serial, verification_body, report_reference, "
            "issued_by_id, issued_at) SELECT project_id, vintage_start, vintage_end, quantity_units, 0, "
            "serial_start + 1, serial_end + 1, serial_start + 1, serial_end + 1, 'x', 'y', issued_by_id, "
            "issued_at FROM credit_batches WHERE id = :id"), {"id": batch.id})
        db.session.commit()
