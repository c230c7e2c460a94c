"""The ledger: every movement of units is one balanced, append-only journal entry.

An entry moves ``units`` of one batch from one account to another and changes both balances in the
same transaction. A debit is a conditional UPDATE (``… WHERE units >= :n``), so a balance can never go
below zero even under concurrency: of two transactions racing for the last units, PostgreSQL makes
the second wait for the first and then re-checks the condition, and it finds nothing to take.
A CHECK constraint backs this up. Balances of a batch are always taken in a fixed order
(sorted by account name), so transactions that touch several never deadlock on each other.

Accounts of a batch: ``issuance`` (contra account, holds −quantity), ``available``, ``buffer``,
``retired``, ``cancelled``, ``pledged`` (frozen for green loans, opened with the first pledge), and for
each listing ``listed:<id>`` and ``reserved:<id>``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.core.db import utcnow
from marketplace.core.errors import InsufficientCredits
from marketplace.registry.models import CreditBatch, LedgerBalance, LedgerEntry, Listing, Pledge, SerialRange


def open_accounts(session: so.Session, batch_id: int, accounts) -> None:
    """Create zero balances (issuance, listing) so every later movement is a plain UPDATE."""
    for account in accounts:
        session.add(LedgerBalance(batch_id=batch_id, account=account, units=0))
    session.flush()


def _debit(session: so.Session, batch_id: int, account: str, units: int) -> bool:
    stmt = (sa.update(LedgerBalance)
            .where(LedgerBalance.batch_id == batch_id, LedgerBalance.account == account)
            .values(units=LedgerBalance.units - units))
    if account != "issuance":
        stmt = stmt.where(LedgerBalance.units >= units)
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount == 1


def _credit(session: so.Session, batch_id: int, account: str, units: int) -> None:
    result = session.execute(
        sa.update(LedgerBalance)
        .where(LedgerBalance.batch_id == batch_id, LedgerBalance.account == account)
        .values(units=LedgerBalance.units + units), execution_options={"synchronize_session": False})
    if result.rowcount != 1:  # pragma: no cover — accounts are opened with their batch or listing
        raise RuntimeError(f"ledger account {account} of batch {batch_id} is not open")


def move(session: so.Session, *, batch_id: int, from_account: str, to_account: str, units: int, kind: str,
         ref: str, actor_id: int | None = None, message=None) -> LedgerEntry:
    """Move units between two accounts of a batch, or raise InsufficientCredits and change nothing."""
    if units <= 0:
        raise ValueError("a ledger movement moves a positive number of units")
    # Lock order: by account name, so concurrent movements on the same batch cannot deadlock.
    first, second = sorted([(from_account, "debit"), (to_account, "credit")])
    for account, side in (first, second):
        if side == "debit":
            if not _debit(session, batch_id, account, units):
                raise InsufficientCredits(message or _l("Not enough credits are available for this quantity."),
                                          "quantity")
        else:
            _credit(session, batch_id, account, units)
    entry = LedgerEntry(batch_id=batch_id, from_account=from_account, to_account=to_account, units=units,
                        kind=kind, ref=ref, actor_id=actor_id)
    session.add(entry)
    session.flush()
    return entry


def balance(session: so.Session, batch_id: int, account: str) -> int:
    return session.scalar(sa.select(LedgerBalance.units).where(
        LedgerBalance.batch_id == batch_id, LedgerBalance.account == account)) or 0


def batch_balances(session: so.Session, batch_id: int) -> dict[str, int]:
    rows = session.execute(sa.select(LedgerBalance.account, LedgerBalance.units)
                           .where(LedgerBalance.batch_id == batch_id)).all()
    return dict(rows)


def summarise(balances: dict[str, int]) -> dict[str, int]:
    """A batch's balances folded for display: listing accounts summed into ``listed`` and ``reserved``."""
    return {
        "available": balances.get("available", 0), "buffer": balances.get("buffer", 0),
        "listed": sum(v for k, v in balances.items() if k.startswith("listed:")),
        "reserved": sum(v for k, v in balances.items() if k.startswith("reserved:")),
        "retired": balances.get("retired", 0), "cancelled": balances.get("cancelled", 0),
        "pledged": balances.get("pledged", 0),
    }


def batch_summaries(session: so.Session, batch_ids) -> dict[int, dict[str, int]]:
    ids = list(batch_ids)
    grouped: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for batch_id, account, units in session.execute(
                sa.select(LedgerBalance.batch_id, LedgerBalance.account, LedgerBalance.units)
                .where(LedgerBalance.batch_id.in_(ids))):
            grouped[batch_id][account] = units
    return {i: summarise(b) for i, b in grouped.items()}


def listing_available_units(session: so.Session, listing_id: int) -> int:
    return session.scalar(sa.select(LedgerBalance.units).where(
        LedgerBalance.account == f"listed:{listing_id}")) or 0


def _listing_balances(session: so.Session, listing_ids, prefix: str) -> dict[int, int]:
    ids = list(listing_ids)
    if not ids:
        return {}
    rows = session.execute(sa.select(LedgerBalance.account, LedgerBalance.units).where(
        LedgerBalance.account.in_([f"{prefix}:{i}" for i in ids]))).all()
    found = {int(account.split(":")[1]): units for account, units in rows}
    return {i: found.get(i, 0) for i in ids}


def listings_available_units(session: so.Session, listing_ids) -> dict[int, int]:
    """Units still on sale per listing (its ``listed:`` balance), in one query."""
    return _listing_balances(session, listing_ids, "listed")


def listings_reserved_units(session: so.Session, listing_ids) -> dict[int, int]:
    """Units held by unpaid or unretired orders per listing (its ``reserved:`` balance), in one query."""
    return _listing_balances(session, listing_ids, "reserved")


# --- reservations and retirement (orders call these) --------------------------------------------

RESERVE_REFUSED = _l("Only part of this quantity is still available on the listing; choose a smaller quantity.")

_BALANCES = LedgerBalance.__table__
_ENTRIES = LedgerEntry.__table__
INSERT_ENTRIES = sa.insert(_ENTRIES)
#: One listing line's two balance changes as prepared statements: the conditional debit (the only gate
#: against overselling) and the credit. Core, on the session's connection: no ORM state to synchronise.
_RESERVE_DEBIT = (sa.update(_BALANCES)
                  .where(_BALANCES.c.batch_id == sa.bindparam("b_batch"), _BALANCES.c.account == sa.bindparam("b_from"),
                         _BALANCES.c.units >= sa.bindparam("b_units"))
                  .values(units=_BALANCES.c.units - sa.bindparam("b_units")))
_RESERVE_CREDIT = (sa.update(_BALANCES)
                   .where(_BALANCES.c.batch_id == sa.bindparam("b_batch"), _BALANCES.c.account == sa.bindparam("b_to"))
                   .values(units=_BALANCES.c.units + sa.bindparam("b_units")))

def reserving(*ctes: sa.CTE, returning=()) -> sa.Update:
    """PostgreSQL: one line's reservation as one statement (parameters b_batch, b_from, b_to, b_units),
    with other data-modifying ``ctes`` run in it and ``returning`` columns (no row = refused).

    The debit is a CTE and the credit's WHERE needs the batch id it returns, so the debit runs (and
    locks ``listed:``, or finds too few units and returns nothing) before the credit can look at
    ``reserved:``: the same lock order as two statements, in one round trip. EXPLAIN shows the CTE
    as the InitPlan feeding the credit's index condition. 0 rows updated = the debit refused (the
    reserved account always exists with its listing)."""
    debit = _RESERVE_DEBIT.returning(_BALANCES.c.batch_id).cte("debit")
    stmt = (sa.update(_BALANCES)
            .where(_BALANCES.c.batch_id == sa.select(debit.c.batch_id).scalar_subquery(),
                   _BALANCES.c.account == sa.bindparam("b_to"))
            .values(units=_BALANCES.c.units + sa.bindparam("b_units"))
            .add_cte(debit, *ctes))
    return stmt.returning(*returning) if returning else stmt


def reserve_params(batch_id: int, listing_id: int, units: int) -> dict:
    return {"b_batch": batch_id, "b_from": f"listed:{listing_id}", "b_to": f"reserved:{listing_id}",
            "b_units": units}


_RESERVE_BOTH = reserving()


def reserve_entries(moves, *, order_ref: str, actor_id: int | None, now) -> list[dict]:
    """The journal rows (``ledger_entries`` values) of reserving ``moves``: (batch_id, listing_id, units)."""
    return [{"batch_id": batch_id, "from_account": f"listed:{listing_id}", "to_account": f"reserved:{listing_id}",
             "units": units, "kind": "reserve", "ref": order_ref, "actor_id": actor_id, "created_at": now}
            for batch_id, listing_id, units in moves]


def reserve_balances(connection: sa.Connection, moves, *, message=None) -> None:
    """listed → reserved balances for (batch_id, listing_id, units) moves, in the global lock order (batch,
    listing; per listing ``listed:`` before ``reserved:``, as :func:`move` sorts them): one statement per
    line on PostgreSQL (``_RESERVE_BOTH``), a debit and a credit elsewhere. The caller writes the
    journal rows (:func:`reserve_entries`) in the same transaction. InsufficientCredits if any listing has
    fewer units; the caller then rolls the transaction back (a line debited before stays in it)."""
    for batch_id, listing_id, units in sorted(moves, key=lambda m: (m[0], m[1])):
        if units <= 0:
            raise ValueError("a ledger movement moves a positive number of units")
        params = reserve_params(batch_id, listing_id, units)
        if connection.dialect.name == "postgresql":
            if connection.execute(_RESERVE_BOTH, params).rowcount != 1:
                raise InsufficientCredits(message or RESERVE_REFUSED, "quantity")
            continue
        if connection.execute(_RESERVE_DEBIT, params).rowcount != 1:
            raise InsufficientCredits(message or RESERVE_REFUSED, "quantity")
        if connection.execute(_RESERVE_CREDIT, params).rowcount != 1:  # pragma: no cover — opened with the listing
            raise RuntimeError(f"ledger account reserved:{listing_id} of batch {batch_id} is not open")


def reserve(session: so.Session, *, listing: Listing, units: int, order_ref: str,
            actor_id: int | None = None) -> None:
    """listed → reserved for an order; InsufficientCredits if the listing has fewer units (nothing written)."""
    session.flush()  # what the session holds goes first, as an autoflush would
    connection = session.connection()
    moves = [(listing.batch_id, listing.id, units)]
    reserve_balances(connection, moves)
    connection.execute(INSERT_ENTRIES, reserve_entries(moves, order_ref=order_ref, actor_id=actor_id,
                                                            now=utcnow()))


def lock_order(key: tuple[int, str]) -> tuple[int, int]:
    """The one order in which every operation touches listing accounts: batch, then listing id.

    Reserving, releasing and retiring several lines in this order means two transactions never wait
    for each other in a cycle (no deadlocks)."""
    batch_id, account = key
    return batch_id, int(account.split(":")[1])


def outstanding_reservations(session: so.Session, order_ref: str) -> dict[tuple[int, str], int]:
    """(batch_id, reserved account) → units still reserved for the order."""
    held: dict[tuple[int, str], int] = defaultdict(int)
    entries = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.ref == order_ref)
                              .order_by(LedgerEntry.id)).all()
    for e in entries:
        if e.to_account.startswith("reserved:"):
            held[(e.batch_id, e.to_account)] += e.units
        if e.from_account.startswith("reserved:"):
            held[(e.batch_id, e.from_account)] -= e.units
    return {key: units for key, units in held.items() if units > 0}


def release(session: so.Session, *, order_ref: str, actor_id: int | None = None) -> int:
    """reserved → listed for everything an order still holds; idempotent (returns units released).

    Units of a withdrawn listing go back to the batch's available account instead."""
    released = 0
    for (batch_id, reserved_account), units in sorted(outstanding_reservations(session, order_ref).items(),
                                                       key=lambda item: lock_order(item[0])):
        listing_id = int(reserved_account.split(":")[1])
        move(session, batch_id=batch_id, from_account=reserved_account, to_account=f"listed:{listing_id}",
             units=units, kind="release", ref=order_ref, actor_id=actor_id)
        status = session.scalar(sa.select(Listing.status).where(Listing.id == listing_id))
        if status == "withdrawn":
            move(session, batch_id=batch_id, from_account=f"listed:{listing_id}", to_account="available",
                 units=units, kind="unlist", ref=f"listing:{listing_id}", actor_id=actor_id)
        released += units
    return released


@dataclass
class Retirement:
    ranges: list[SerialRange] = field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(r.units for r in self.ranges)


def _take_serials(session: so.Session, batch_id: int, units: int, *, buffer: bool) -> int:
    """Advance the batch's serial cursor by ``units``; returns the first serial of the block taken."""
    column = CreditBatch.next_buffer_serial if buffer else CreditBatch.next_serial
    limit = CreditBatch.serial_end if buffer else CreditBatch.serial_end - CreditBatch.buffer_units
    row = session.execute(
        sa.update(CreditBatch).where(CreditBatch.id == batch_id, column + units <= limit)
        .values({column: column + units}).returning(column),
        execution_options={"synchronize_session": False}).first()
    if row is None:  # pragma: no cover — the ledger balance was checked first
        raise InsufficientCredits(_l("The batch has no serial numbers left for this quantity."))
    return row[0] - units


def retire(session: so.Session, *, order_ref: str, actor_id: int | None = None) -> Retirement:
    """reserved → retired for everything the order holds, with one serial range per batch.

    Idempotent: if the order is already retired, its ranges are returned and nothing moves. The
    unique (ref, batch) constraint and the no-overlap constraint make a double retirement fail."""
    existing = session.scalars(sa.select(SerialRange).where(SerialRange.ref == order_ref,
                                                            SerialRange.kind == "retirement")
                               .order_by(SerialRange.batch_id)).all()
    if existing:
        return Retirement(list(existing))
    per_batch: dict[int, int] = defaultdict(int)
    for (batch_id, reserved_account), units in sorted(outstanding_reservations(session, order_ref).items(),
                                                       key=lambda item: lock_order(item[0])):
        move(session, batch_id=batch_id, from_account=reserved_account, to_account="retired", units=units,
             kind="retire", ref=order_ref, actor_id=actor_id)
        per_batch[batch_id] += units
    result = Retirement()
    for batch_id, units in sorted(per_batch.items()):
        start = _take_serials(session, batch_id, units, buffer=False)
        serial_range = SerialRange(batch_id=batch_id, start=start, end=start + units, kind="retirement",
                                   ref=order_ref)
        session.add(serial_range)
        result.ranges.append(serial_range)
    session.flush()
    return result


def cancel_buffer(session: so.Session, *, batch_id: int, units: int, ref: str,
                  actor_id: int | None = None) -> SerialRange:
    """buffer → cancelled, with the serial range cancelled (a reported loss)."""
    move(session, batch_id=batch_id, from_account="buffer", to_account="cancelled", units=units, kind="cancel",
         ref=ref, actor_id=actor_id, message=_l("The buffer pool of this batch holds fewer units."))
    start = _take_serials(session, batch_id, units, buffer=True)
    serial_range = SerialRange(batch_id=batch_id, start=start, end=start + units, kind="cancellation", ref=ref)
    session.add(serial_range)
    session.flush()
    return serial_range


# --- invariants ---------------------------------------------------------------------------------

@dataclass
class CheckReport:
    batches: int = 0
    entries: int = 0
    ranges: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariants(session: so.Session, progress=None) -> CheckReport:
    """Prove the ledger's invariants on the live database; every failure is described, none hidden.

    1. each batch's balances sum to zero and its issuance account holds exactly −quantity;
    2. no balance is negative (but issuance);
    3. every balance equals the replay of its journal entries;
    4. the retired and cancelled balances equal the serial ranges retired and cancelled;
    5. no two ranges overlap, and every range lies inside its batch's block (tradable part for
       retirements, buffer part for cancellations);
    6. no two batches' serial blocks overlap;
    7. each batch's ``pledged`` balance equals the units of its active pledges.
    """
    report = CheckReport()
    batches = session.scalars(sa.select(CreditBatch).order_by(CreditBatch.id)).all()
    report.batches = len(batches)
    balances: dict[int, dict[str, int]] = defaultdict(dict)
    for batch_id, account, units in session.execute(
            sa.select(LedgerBalance.batch_id, LedgerBalance.account, LedgerBalance.units)):
        balances[batch_id][account] = units
    replay: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for batch_id, from_account, to_account, units in session.execute(
            sa.select(LedgerEntry.batch_id, LedgerEntry.from_account, LedgerEntry.to_account, LedgerEntry.units)
            .execution_options(yield_per=10_000)):
        replay[batch_id][from_account] -= units
        replay[batch_id][to_account] += units
        report.entries += 1
    ranges: dict[int, list[SerialRange]] = defaultdict(list)
    for serial_range in session.scalars(sa.select(SerialRange).order_by(SerialRange.batch_id, SerialRange.start)):
        ranges[serial_range.batch_id].append(serial_range)
        report.ranges += 1

    pledged: dict[int, int] = defaultdict(int)
    for batch_id, units in session.execute(sa.select(Pledge.batch_id, sa.func.sum(Pledge.units))
                                           .where(Pledge.status == "active").group_by(Pledge.batch_id)):
        pledged[batch_id] = int(units)

    previous_end, previous_id = None, None
    for batch in sorted(batches, key=lambda b: b.serial_start):
        if previous_end is not None and batch.serial_start < previous_end:
            report.problems.append(f"batch {batch.id}: serial block overlaps batch {previous_id}")
        previous_end, previous_id = batch.serial_end, batch.id

    for n, batch in enumerate(batches, 1):
        if progress:
            progress(n, len(batches))
        acc = balances.get(batch.id, {})
        if acc.get("issuance") != -batch.quantity_units:
            report.problems.append(f"batch {batch.id}: issuance account holds {acc.get('issuance')}, "
                                   f"expected {-batch.quantity_units}")
        total = sum(acc.values())
        if total != 0:
            report.problems.append(f"batch {batch.id}: accounts sum to {total} units, not 0 "
                                   f"(issued {batch.quantity_units})")
        for account, units in sorted(acc.items()):
            if units < 0 and account != "issuance":
                report.problems.append(f"batch {batch.id}: account {account} is negative ({units})")
        replayed = {k: v for k, v in replay.get(batch.id, {}).items() if v != 0}
        stored = {k: v for k, v in acc.items() if v != 0}
        for account in sorted(set(replayed) | set(stored)):
            if replayed.get(account, 0) != stored.get(account, 0):
                report.problems.append(f"batch {batch.id}: balance {account} is {stored.get(account, 0)} "
                                       f"but the journal gives {replayed.get(account, 0)}")
        batch_ranges = ranges.get(batch.id, [])
        retired = sum(r.units for r in batch_ranges if r.kind == "retirement")
        cancelled = sum(r.units for r in batch_ranges if r.kind == "cancellation")
        if retired != acc.get("retired", 0):
            report.problems.append(f"batch {batch.id}: {acc.get('retired', 0)} units retired in the ledger "
                                   f"but {retired} in serial ranges")
        if cancelled != acc.get("cancelled", 0):
            report.problems.append(f"batch {batch.id}: {acc.get('cancelled', 0)} units cancelled in the ledger "
                                   f"but {cancelled} in serial ranges")
        if pledged.get(batch.id, 0) != acc.get("pledged", 0):
            report.problems.append(f"batch {batch.id}: {acc.get('pledged', 0)} units pledged in the ledger "
                                   f"but {pledged.get(batch.id, 0)} in active pledges")
        tradable_end = batch.serial_end - batch.buffer_units
        last_end = None
        for r in batch_ranges:
            low, high = (tradable_end, batch.serial_end) if r.kind == "cancellation" else (batch.serial_start,
                                                                                           tradable_end)
            if r.start < low or r.end > high:
                report.problems.append(f"batch {batch.id}: {r.kind} range [{r.start}, {r.end}) for {r.ref} "
                                       f"lies outside [{low}, {high})")
            if last_end is not None and r.start < last_end:
                report.problems.append(f"batch {batch.id}: range [{r.start}, {r.end}) for {r.ref} overlaps "
                                       f"another; a unit would be retired twice")
            last_end = max(last_end or r.end, r.end)
    for batch_id in sorted(set(balances) - {b.id for b in batches}):
        report.problems.append(f"balances exist for unknown batch {batch_id}")
    return report

