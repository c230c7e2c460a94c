"""A cooperative's monthly statement, read from the journal: opening balance, sales, fees, refunds,
payouts (less failed ones given back), closing balance, each line traceable to its order or payout.

Months are calendar months in the platform's time zone. A negative closing (a refund after a payout) is
the next month's opening: it is carried, not written off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.i18n import platform_zone
from marketplace.settlement import journal
from marketplace.settlement.models import MoneyEntry


def month_bounds(year: int, month: int, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the month in the platform zone, as aware datetimes."""
    zone = zone or platform_zone()
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start, end


@dataclass
class StatementLine:
    entry: MoneyEntry
    #: what the line did to the balance, in fen (negative: taken from it)
    change_fen: int
    #: the gross sale and the fee, for a sale
    gross_fen: int = 0
    fee_fen: int = 0


@dataclass
class Statement:
    organisation_id: int
    year: int
    month: int
    opening_fen: int = 0
    sales_fen: int = 0
    fees_fen: int = 0
    refunds_fen: int = 0
    payouts_fen: int = 0
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + self.sales_fen - self.fees_fen - self.refunds_fen - self.payouts_fen

    @property
    def period(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def _balance_before(session: so.Session, account: str, moment: datetime) -> int:
    signed = sa.case((MoneyEntry.credit_account == account, MoneyEntry.amount_fen), else_=-MoneyEntry.amount_fen)
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(
        sa.or_(MoneyEntry.credit_account == account, MoneyEntry.debit_account == account),
        MoneyEntry.created_at < moment)))


def statement(session: so.Session, organisation_id: int, year: int, month: int) -> Statement:
    """The cooperative's statement for one month."""
    start, end = month_bounds(year, month)
    account = journal.seller(organisation_id)
    result = Statement(organisation_id, year, month, opening_fen=_balance_before(session, account, start))
    entries = session.scalars(sa.select(MoneyEntry).where(
        MoneyEntry.seller_organisation_id == organisation_id, MoneyEntry.created_at >= start,
        MoneyEntry.created_at < end).order_by(MoneyEntry.id)).all()
    fees = {e.order_line_id: e.amount_fen for e in entries if e.kind == "fee"}
    for entry in entries:
        if account not in (entry.debit_account, entry.credit_account):
            continue
        change = entry.amount_fen if entry.credit_account == account else -entry.amount_fen
        line = StatementLine(entry, change)
        if entry.kind == "proceeds":
            line.fee_fen = fees.get(entry.order_line_id, 0)
            line.gross_fen = entry.amount_fen + line.fee_fen
            result.sales_fen += line.gross_fen
            result.fees_fen += line.fee_fen
        elif entry.kind == "refund":
            result.refunds_fen -= change
        elif entry.kind in ("payout", "payout_failed"):
            result.payouts_fen -= change
        result.lines.append(line)
    # A sale whose fee was zero has no fee entry; a sale with no proceeds (the fee took it all) has only a
    # fee entry: it is a sale and a fee of the same amount.
    for entry in entries:
        if entry.kind == "fee" and not any(ln.entry.order_line_id == entry.order_line_id and ln.entry.kind == "proceeds"
                                           for ln in result.lines):
            result.sales_fen += entry.amount_fen
            result.fees_fen += entry.amount_fen
    return result


def months_with_entries(session: so.Session, organisation_id: int) -> list[tuple[int, int]]:
    """Every month from the cooperative's first entry to this one, newest first."""
    first = session.scalar(sa.select(sa.func.min(MoneyEntry.created_at)).where(
        MoneyEntry.seller_organisation_id == organisation_id))
    if first is None:
        return []
    zone = platform_zone()
    first_local = first.astimezone(zone) if first.tzinfo else first.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    today = datetime.now(zone).date()
    months, cursor = [], date(first_local.year, first_local.month, 1)
    while cursor <= today:
        months.append((cursor.year, cursor.month))
        cursor = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)
    return list(reversed(months))
