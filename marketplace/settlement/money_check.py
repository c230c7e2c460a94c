"""``marketplace money check``: prove the money journal's invariants on a live database.

- the journal balances (double entry: all accounts together hold zero);
- per order and in total, payments captured = seller proceeds + fees + refunds; a settled order's
  clearing account is empty, its capture equals its amount, and only paid (or later, or refunded) orders
  have one;
- each cooperative's closed statements chain (each starts where the previous one ended and opens at its
  closing), their figures still equal the journal, and the open statement closes at the balance;
- payouts never exceed balances (replaying the journal, no payout leaves a balance below zero), and a
  payout's account holds its amount while pending and nothing once paid or failed;
- no distribution exceeds what was paid out (``cooperative:<organisation>`` never below zero), and a
  distribution's parts add up to its payout.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.quantities import fen
from marketplace.orders.models import Order
from marketplace.settlement import journal, statements
from marketplace.settlement.models import Distribution, DistributionLine, MoneyEntry, Payout

SETTLED_STATUSES = ("paid", "retiring", "completed", "refunded")


def check_invariants(session: so.Session) -> list[str]:
    """Problems found, as sentences; empty when every invariant holds."""
    problems: list[str] = []
    session.flush()
    entries = session.scalars(sa.select(MoneyEntry).order_by(MoneyEntry.id)).all()
    running: dict[str, int] = defaultdict(int)
    for entry in entries:
        running[entry.debit_account] -= entry.amount_fen
        running[entry.credit_account] += entry.amount_fen
        if entry.kind == "payout" and running[entry.debit_account] < 0:
            problems.append(f"payout entry {entry.id} left {entry.debit_account} at {running[entry.debit_account]} fen")
        if entry.kind == "distribution" and running[entry.debit_account] < 0:
            problems.append(f"distribution entry {entry.id} left {entry.debit_account} at "
                            f"{running[entry.debit_account]} fen: more distributed than paid out")
    if sum(running.values()) != 0:
        problems.append(f"the journal does not balance: {sum(running.values())} fen")

    # Per order: captured = proceeds + fees + refunds.
    per_order: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        if entry.order_id is None:
            continue
        sums = per_order[entry.order_id]
        if entry.kind == "capture":
            sums["captured"] += entry.amount_fen
        elif entry.kind == "proceeds":
            sums["proceeds"] += entry.amount_fen
        elif entry.kind == "fee":
            sums["fees"] += entry.amount_fen
        elif entry.kind == "refund":
            if entry.credit_account == journal.BUYERS:
                sums["refunds"] += entry.amount_fen
            elif entry.debit_account == journal.FEES:
                sums["fees"] -= entry.amount_fen
            else:
                sums["proceeds"] -= entry.amount_fen
    totals = defaultdict(int)
    for order_id, sums in per_order.items():
        for key, value in sums.items():
            totals[key] += value
        if sums["captured"] != sums["proceeds"] + sums["fees"] + sums["refunds"]:
            problems.append(f"order {order_id}: captured {sums['captured']} ≠ proceeds {sums['proceeds']} + fees "
                            f"{sums['fees']} + refunds {sums['refunds']}")
    for account, held in running.items():
        if account.startswith("clearing:") and held != 0:
            problems.append(f"{account}: {held} fen left in clearing")
    if totals["captured"] != totals["proceeds"] + totals["fees"] + totals["refunds"]:
        problems.append(f"in total: captured {totals['captured']} ≠ proceeds {totals['proceeds']} + fees "
                        f"{totals['fees']} + refunds {totals['refunds']}")
    for order_id, status, amount in session.execute(sa.select(Order.id, Order.status, Order.amount_cny)):
        sums = per_order.get(order_id)
        if status in SETTLED_STATUSES:
            if not sums or sums["captured"] != fen(amount):
                problems.append(f"order {order_id} ({status}): captured {sums['captured'] if sums else 0} fen, "
                                f"its amount is {fen(amount)}")
            elif (status == "refunded") != (sums["refunds"] > 0):
                problems.append(f"order {order_id} ({status}): refunds {sums['refunds']} fen")
        elif sums:
            problems.append(f"order {order_id} ({status}) has money entries")

    # Payouts.
    for payout in session.scalars(sa.select(Payout).order_by(Payout.id)):
        held = running.get(journal.in_transit(payout.id), 0)
        expected = payout.amount_fen if payout.status == "pending" else 0
        if held != expected:
            problems.append(f"payout {payout.id} ({payout.status}) holds {held} fen, expected {expected}")

    # Distributions.
    parts = dict(session.execute(sa.select(DistributionLine.distribution_id, sa.func.sum(DistributionLine.amount_fen))
                                 .group_by(DistributionLine.distribution_id)).all())
    for distribution, payout_amount, payout_status in session.execute(
            sa.select(Distribution, Payout.amount_fen, Payout.status).join(Payout, Payout.id == Distribution.payout_id)):
        total = distribution.collective_fen + int(parts.get(distribution.id) or 0)
        if total != distribution.amount_fen or distribution.amount_fen > payout_amount or payout_status != "paid":
            problems.append(f"distribution {distribution.id}: parts {total} fen, amount {distribution.amount_fen}, "
                            f"payout {payout_amount} ({payout_status})")

    # Statements: the closed ones chain (each starts where the previous ended and opens at its closing), each
    # one's figures still equal the journal, and the statement open now closes at the journal's balance.
    for account, balance in running.items():
        if not account.startswith("seller:"):
            continue
        organisation_id = int(account.split(":", 1)[1])
        previous = None
        for record in statements.closed_statements(session, organisation_id):
            label = statements.period_label(record.period_kind, record.starts_on, record.ends_on)
            if previous is not None and (record.starts_on != previous.ends_on or record.opening_fen != previous.closing_fen):
                problems.append(f"{account}: statement {label} starts {record.starts_on} at {record.opening_fen} fen, "
                                f"the previous one ended {previous.ends_on} at {previous.closing_fen}")
            recomputed = statements.compute(session, organisation_id, record.period_kind, record.starts_on,
                                            record.ends_on, with_lines=False).figures
            written = {key: getattr(record, key) for key in recomputed}
            if written != recomputed:
                problems.append(f"{account}: statement {label} says {written}, the journal {recomputed}")
            previous = record
        kind = previous.period_kind if previous else statements.STATEMENT_KINDS[0]
        start = previous.ends_on if previous else None
        if start is None:
            first = statements.first_entry_day(session, organisation_id)
            start = statements.period_containing(kind, first)[0] if first else None
        if start is None:
            continue
        current = statements.compute(session, organisation_id, kind, start, None, with_lines=False)
        if previous is not None and current.opening_fen != previous.closing_fen:
            problems.append(f"{account}: the open statement from {start} opens at {current.opening_fen} fen, "
                            f"the last closed one closed at {previous.closing_fen}")
        if current.closing_fen != balance:
            problems.append(f"{account}: the open statement from {start} closes at {current.closing_fen} fen, "
                            f"the journal holds {balance}")
    return problems
