"""The money journal: entries, balances, and the settlement of every captured payment.

A captured payment (an order marked paid: card or bank transfer) is recorded in the same transaction as
``buyers → clearing:order:<id>`` and split at once, per order line, into the line's seller proceeds
(``clearing → seller:<organisation>``) and its part of the platform fee (``clearing → platform:fees``).
A refund (paid → refunded) writes each of those entries back in reverse, then ``clearing → buyers``.
The split is exact in fen: the fee is shared among the lines by largest remainder, so the parts always
add up to what the buyer paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core.access import Actor
from marketplace.core.errors import Forbidden, ValidationFailed
from marketplace.core.quantities import CNY, DecimalInput, fen, parse_decimal
from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import Listing
from marketplace.settlement.models import FeeRule, MoneyEntry

BUYERS = "buyers"
FEES = "platform:fees"


def clearing(order_id: int) -> str:
    return f"clearing:order:{order_id}"


def seller(organisation_id: int) -> str:
    return f"seller:{organisation_id}"


def in_transit(payout_id: int) -> str:
    return f"payout:{payout_id}"


def cooperative(organisation_id: int) -> str:
    return f"cooperative:{organisation_id}"


def collective(organisation_id: int) -> str:
    return f"collective:{organisation_id}"


def household(household_id: int) -> str:
    return f"household:{household_id}"


def post(session: so.Session, *, ref: str, kind: str, debit: str, credit: str, amount_fen: int, **links) -> None:
    """Append one entry (nothing for a zero amount). ``ref`` is unique: the same fact twice is refused by
    the database."""
    if amount_fen == 0:
        return
    if amount_fen < 0:
        debit, credit, amount_fen = credit, debit, -amount_fen
    session.add(MoneyEntry(ref=ref, kind=kind, debit_account=debit, credit_account=credit,
                           amount_fen=amount_fen, **links))


def balance(session: so.Session, account: str) -> int:
    """What the account received minus what it gave, in fen (flushes pending entries first)."""
    session.flush()
    received = sa.select(sa.func.coalesce(sa.func.sum(MoneyEntry.amount_fen), 0)).where(
        MoneyEntry.credit_account == account).scalar_subquery()
    given = sa.select(sa.func.coalesce(sa.func.sum(MoneyEntry.amount_fen), 0)).where(
        MoneyEntry.debit_account == account).scalar_subquery()
    return int(session.scalar(sa.select(received - given)))


def balances(session: so.Session, prefix: str = "") -> dict[str, int]:
    """Every account's balance (those starting with ``prefix``)."""
    session.flush()
    totals: dict[str, int] = {}
    for column, sign in ((MoneyEntry.credit_account, 1), (MoneyEntry.debit_account, -1)):
        stmt = sa.select(column, sa.func.sum(MoneyEntry.amount_fen)).group_by(column)
        if prefix:
            stmt = stmt.where(column.startswith(prefix, autoescape=True))
        for account, amount in session.execute(stmt):
            totals[account] = totals.get(account, 0) + sign * int(amount)
    return totals


# --- fees -----------------------------------------------------------------------------------------------

def current_fee_rule(session: so.Session) -> tuple[Decimal, int, int | None]:
    """(percent, floor in fen, ceiling in fen or None): the newest rule the bureau set, else the settings."""
    rule = session.scalar(sa.select(FeeRule).order_by(FeeRule.id.desc()).limit(1))
    if rule is not None:
        return Decimal(rule.percent), rule.floor_fen, rule.ceiling_fen
    config = current_app.config
    ceiling = config.get("PLATFORM_FEE_CEILING_FEN")
    return (Decimal(str(config.get("PLATFORM_FEE_PERCENT", "0"))), int(config.get("PLATFORM_FEE_FLOOR_FEN", 0)),
            None if ceiling in (None, "") else int(ceiling))


FEE_PERCENT = DecimalInput(
    places=2, integer_digits=3, maximum=Decimal(100), allow_zero=True,
    malformed=_l("Enter a percentage with at most 2 decimal places, e.g. 2 or 1.5."),
    missing=_l("Enter a percentage."), negative=_l("A percentage cannot be negative."),
    too_precise=_l("At most 2 decimal places."), too_large=_l("A percentage is at most 100."))
MONEY_OR_ZERO = replace(CNY, allow_zero=True, negative=_l("An amount cannot be negative."))


def set_fee_rule(session: so.Session, *, actor: Actor, percent, floor_cny, ceiling_cny=None) -> FeeRule:
    """The platform's fee from now on (bureau only). A blank ceiling means none; a ceiling below the
    floor does not add up and is refused."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau sets the platform fee."))
    percent = parse_decimal(percent, FEE_PERCENT, "percent")
    floor_fen = fen(parse_decimal(floor_cny if floor_cny not in (None, "") else "0", MONEY_OR_ZERO, "floor"))
    ceiling_fen = None
    if ceiling_cny not in (None, ""):
        ceiling_fen = fen(parse_decimal(ceiling_cny, MONEY_OR_ZERO, "ceiling"))
        if ceiling_fen < floor_fen:
            raise ValidationFailed(_l("The ceiling (¥%(ceiling)s) is below the floor (¥%(floor)s): the rule does "
                                      "not add up.", ceiling=f"{ceiling_fen / 100:.2f}", floor=f"{floor_fen / 100:.2f}"),
                                   "ceiling")
        if ceiling_fen == 0 and percent > 0:
            raise ValidationFailed(_l("A ceiling of zero makes the percentage meaningless: set the percentage to 0 "
                                      "or raise the ceiling."), "ceiling")
    rule = FeeRule(percent=percent, floor_fen=floor_fen, ceiling_fen=ceiling_fen, created_by_id=actor.id)
    session.add(rule)
    session.flush()
    return rule


def fee_for(amount_fen: int, percent: Decimal, floor_fen: int, ceiling_fen: int | None) -> int:
    """The fee on an order of ``amount_fen``: percent rounded half-up to the fen, raised to the floor,
    lowered to the ceiling, and never more than the order itself."""
    fee = int((Decimal(amount_fen) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    fee = max(fee, floor_fen)
    if ceiling_fen is not None:
        fee = min(fee, ceiling_fen)
    return min(fee, amount_fen)


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` in whole fen, the parts summing to ``total`` exactly:
    each part rounded down, then the fen left over go one each to the largest remainders (ties to the
    earlier weight)."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return parts


# --- an order is paid, or refunded ------------------------------------------------------------------------

def _lines(session: so.Session, order_id: int) -> list[tuple[OrderLine, int]]:
    """The order's lines with their seller organisation, in id order."""

    return list(session.execute(
        sa.select(OrderLine, Listing.seller_organisation_id).join(Listing, Listing.id == OrderLine.listing_id)
        .where(OrderLine.order_id == order_id).order_by(OrderLine.id)).all())


def settle_order(session: so.Session, order: Order) -> bool:
    """Record the order's captured payment and split it. False (nothing written) if already settled."""
    if session.scalar(sa.select(MoneyEntry.id).where(MoneyEntry.ref == f"capture:order:{order.id}")):
        return False
    lines = _lines(session, order.id)
    line_fen = [fen(line.amount_cny) for line, _seller in lines]
    total = sum(line_fen)
    fee_total = fee_for(total, *current_fee_rule(session))
    line_fees = largest_remainder(fee_total, line_fen)
    post(session, ref=f"capture:order:{order.id}", kind="capture", debit=BUYERS, credit=clearing(order.id),
         amount_fen=total, order_id=order.id)
    for (line, seller_id), amount, line_fee in zip(lines, line_fen, line_fees, strict=True):
        links = {"order_id": order.id, "order_line_id": line.id, "seller_organisation_id": seller_id}
        post(session, ref=f"proceeds:line:{line.id}", kind="proceeds", debit=clearing(order.id),
             credit=seller(seller_id), amount_fen=amount - line_fee, **links)
        post(session, ref=f"fee:line:{line.id}", kind="fee", debit=clearing(order.id), credit=FEES,
             amount_fen=line_fee, **links)
    session.flush()
    return True


def refund_order(session: so.Session, order: Order) -> bool:
    """Reverse the order's split and give the payment back. False if it was never settled or is already
    reversed."""
    entries = session.scalars(sa.select(MoneyEntry).where(
        MoneyEntry.order_id == order.id, MoneyEntry.kind.in_(("capture", "proceeds", "fee")))
        .order_by(MoneyEntry.id)).all()
    if not entries or session.scalar(sa.select(MoneyEntry.id).where(
            MoneyEntry.ref == f"refund:order:{order.id}")):
        return False
    # The sellers' rows are locked (in id order, as payouts lock them) so a reversal and a payout on one
    # balance never interleave: the journal's order is then the order in which balances really moved.
    sellers = sorted({e.seller_organisation_id for e in entries if e.seller_organisation_id is not None})
    if sellers:
        session.execute(sa.select(Organisation.id).where(Organisation.id.in_(sellers)).order_by(Organisation.id)
                        .with_for_update())
    captured = 0
    for entry in entries:
        if entry.kind == "capture":
            captured += entry.amount_fen
            continue
        post(session, ref=f"reversal:{entry.ref}", kind="refund", debit=entry.credit_account,
             credit=entry.debit_account, amount_fen=entry.amount_fen, order_id=order.id,
             order_line_id=entry.order_line_id, seller_organisation_id=entry.seller_organisation_id)
    post(session, ref=f"refund:order:{order.id}", kind="refund", debit=clearing(order.id), credit=BUYERS,
         amount_fen=captured, order_id=order.id)
    session.flush()
    return True


def settle_unsettled(session: so.Session) -> int:
    """Settle every paid (or later) order that has no capture yet: orders paid before the journal existed,
    and refunded ones reversed at once. Returns how many were settled."""
    settled = 0
    captured = sa.select(MoneyEntry.order_id).where(MoneyEntry.kind == "capture")
    for order in session.scalars(sa.select(Order).where(
            Order.status.in_(("paid", "retiring", "completed", "refunded")), Order.id.not_in(captured))
            .order_by(Order.id)):
        settled += settle_order(session, order)
        if order.status == "refunded":
            refund_order(session, order)
    return settled


def on_order_paid(_sender=None, *, session: so.Session, order: Order) -> None:
    """The orders feature's ``order_paid`` signal: the split is written in the same transaction."""
    settle_order(session, order)


def on_order_refunded(_sender=None, *, session: so.Session, order: Order) -> None:
    """The orders feature's ``order_refunded`` signal: the split is reversed in the same transaction."""
    refund_order(session, order)


def entries_for(session: so.Session, accounts: Iterable[str]) -> list[MoneyEntry]:
    accounts = list(accounts)
    return list(session.scalars(sa.select(MoneyEntry).where(
        sa.or_(MoneyEntry.debit_account.in_(accounts), MoneyEntry.credit_account.in_(accounts)))
        .order_by(MoneyEntry.id)))
