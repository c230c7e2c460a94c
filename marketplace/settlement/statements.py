"""A cooperative's statements, read from the journal: opening balance, sales, fees, refunds, payouts (less
failed ones given back), closing balance, each line traceable to its order or payout.

A statement covers a period of the kind the platform setting ``STATEMENT_PERIOD`` names (``month`` or
``quarter``, calendar periods in the platform's time zone). Once its period has ended a statement is
*closed*: written to ``statements`` with its kind, start, end and figures, and never written again. The next
statement starts where the last closed one ended and ends with the period of the kind in force that contains
its start, so changing the setting never rewrites or overlaps a past statement (from months to quarters,
the first quarter may be short: February and March after a closed January). A negative closing (a refund
after a payout) is the next statement's opening: it is carried, not written off.

Statements not yet closed are computed the same way from the journal, so a cooperative sees its current
period as it goes; ``marketplace money close-statements`` (daily, from cron) or the money desk closes the
ended ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict
from marketplace.core.i18n import platform_zone
from marketplace.settlement import journal
from marketplace.settlement.models import STATEMENT_KINDS, MoneyEntry, StatementRecord

#: A period is closed this long after it ended, so that a payment written at its last second is in it.
CLOSE_AFTER = timedelta(hours=1)


def check_statement_settings(config) -> None:
    """Refuse to start with a statement period the platform does not know, naming the setting."""
    kind = config.get("STATEMENT_PERIOD", "month")
    if kind not in STATEMENT_KINDS:
        raise ValueError(f"STATEMENT_PERIOD must be one of {', '.join(STATEMENT_KINDS)}, not {kind!r}")


def period_kind() -> str:
    return current_app.config.get("STATEMENT_PERIOD", "month")


def period_containing(kind: str, day: date) -> tuple[date, date]:
    """[start, end) of the calendar period of this kind that contains the day."""
    first_month = day.month if kind == "month" else 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    months = 1 if kind == "month" else 3
    end_month = first_month + months
    end = date(day.year + (end_month > 12), (end_month - 1) % 12 + 1, 1)
    return start, end


def moment(day: date, zone: ZoneInfo | None = None) -> datetime:
    """Midnight at the start of the day in the platform zone, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=zone or platform_zone())




def period_label(kind: str, starts_on: date, ends_on: date) -> str:
    """``2026-03``, ``2026-Q1``; a period shorter than its kind (after a change of setting) by its dates."""
    if period_containing(kind, starts_on) == (starts_on, ends_on):
        if kind == "month":
            return f"{starts_on.year:04d}-{starts_on.month:02d}"
        return f"{starts_on.year:04d}-Q{(starts_on.month - 1) // 3 + 1}"
    return f"{starts_on.isoformat()} – {(ends_on - timedelta(days=1)).isoformat()}"


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
    kind: str
    starts_on: date
    #: the day after the last day of the period
    ends_on: date
    opening_fen: int = 0
    sales_fen: int = 0
    fees_fen: int = 0
    refunds_fen: int = 0
    payouts_fen: int = 0
    lines: list[StatementLine] = field(default_factory=list)
    #: the written statement, once its period was closed
    record: StatementRecord | None = None

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + self.sales_fen - self.fees_fen - self.refunds_fen - self.payouts_fen

    @property
    def period(self) -> str:
        return period_label(self.kind, self.starts_on, self.ends_on)

    @property
    def last_day(self) -> date:
        return self.ends_on - timedelta(days=1)

    @property
    def closed(self) -> bool:
        return self.record is not None

    @property
    def figures(self) -> dict[str, int]:
        return {"opening_fen": self.opening_fen, "sales_fen": self.sales_fen, "fees_fen": self.fees_fen,
                "refunds_fen": self.refunds_fen, "payouts_fen": self.payouts_fen, "closing_fen": self.closing_fen}


def _balance_before(session: so.Session, account: str, when: datetime) -> int:
    signed = sa.case((MoneyEntry.credit_account == account, MoneyEntry.amount_fen), else_=-MoneyEntry.amount_fen)
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(
        sa.or_(MoneyEntry.credit_account == account, MoneyEntry.debit_account == account),
        MoneyEntry.created_at < when)))


def compute(session: so.Session, organisation_id: int, kind: str, starts_on: date, ends_on: date | None,
            *, with_lines: bool = True) -> Statement:
    """The cooperative's statement for [starts_on, ends_on) from the journal (``ends_on`` None: until now)."""
    start = moment(starts_on)
    account = journal.seller(organisation_id)
    result = Statement(organisation_id, kind, starts_on, ends_on or period_containing(kind, starts_on)[1],
                       opening_fen=_balance_before(session, account, start))
    conditions = [MoneyEntry.seller_organisation_id == organisation_id, MoneyEntry.created_at >= start]
    if ends_on is not None:
        conditions.append(MoneyEntry.created_at < moment(ends_on))
    entries = session.scalars(sa.select(MoneyEntry).where(*conditions).order_by(MoneyEntry.id)).all()
    fees = {e.order_line_id: e.amount_fen for e in entries if e.kind == "fee"}
    with_proceeds = {e.order_line_id for e in entries if e.kind == "proceeds"}
    for entry in entries:
        if entry.kind == "fee" and entry.order_line_id not in with_proceeds:
            # A sale with no proceeds (the fee took it all) has only a fee entry: a sale and a fee of the same
            # amount. (A sale whose fee was zero has no fee entry.)
            result.sales_fen += entry.amount_fen
            result.fees_fen += entry.amount_fen
            continue
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
        if with_lines:
            result.lines.append(line)
    return result


def closed_statements(session: so.Session, organisation_id: int) -> list[StatementRecord]:
    """The cooperative's closed statements, oldest first."""
    return list(session.scalars(sa.select(StatementRecord).where(StatementRecord.organisation_id == organisation_id)
                                .order_by(StatementRecord.starts_on)))


def first_entry_day(session: so.Session, organisation_id: int) -> date | None:
    first = session.scalar(sa.select(sa.func.min(MoneyEntry.created_at)).where(
        MoneyEntry.seller_organisation_id == organisation_id))
    if first is None:
        return None
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    return first.astimezone(platform_zone()).date()


def _next_start(session: so.Session, organisation_id: int, kind: str, last: StatementRecord | None) -> date | None:
    if last is not None:
        return last.ends_on
    first = first_entry_day(session, organisation_id)
    return None if first is None else period_containing(kind, first)[0]


def _today(now: datetime | None) -> date:
    return (now or utcnow()).astimezone(platform_zone()).date()


def statements_of(session: so.Session, organisation_id: int, *, now: datetime | None = None,
                  kind: str | None = None) -> list[Statement]:
    """Every statement of the cooperative, newest first: the closed ones as written, then those not yet closed
    (up to the current period) under the setting in force."""
    kind = kind or period_kind()
    records = closed_statements(session, organisation_id)
    result = [_from_record(r) for r in records]
    start = _next_start(session, organisation_id, kind, records[-1] if records else None)
    today = _today(now)
    while start is not None and start <= today:
        end = period_containing(kind, start)[1]
        result.append(compute(session, organisation_id, kind, start, end, with_lines=False))
        start = end
    return list(reversed(result))


def _from_record(record: StatementRecord) -> Statement:
    return Statement(record.organisation_id, record.period_kind, record.starts_on, record.ends_on,
                     opening_fen=record.opening_fen, sales_fen=record.sales_fen, fees_fen=record.fees_fen,
                     refunds_fen=record.refunds_fen, payouts_fen=record.payouts_fen, record=record)


def statement_starting(session: so.Session, organisation_id: int, starts_on: date, *,
                       now: datetime | None = None) -> Statement | None:
    """The statement (closed or not) that starts on the day, with its lines; None if there is none."""
    for sheet in statements_of(session, organisation_id, now=now):
        if sheet.starts_on == starts_on:
            full = compute(session, organisation_id, sheet.kind, sheet.starts_on, sheet.ends_on)
            full.record = sheet.record
            return full
    return None


def close_due(session: so.Session, organisation_id: int, *, now: datetime | None = None,
              kind: str | None = None) -> list[StatementRecord]:
    """Close (write) the cooperative's statements whose period has ended, under the setting in force; safe to
    repeat (the organisation's row is locked, and a closed statement is never written again)."""
    kind = kind or period_kind()
    now = now or utcnow()
    session.scalar(sa.select(Organisation.id).where(Organisation.id == organisation_id).with_for_update())
    last = session.scalar(sa.select(StatementRecord).where(StatementRecord.organisation_id == organisation_id)
                          .order_by(StatementRecord.starts_on.desc()).limit(1))
    start = _next_start(session, organisation_id, kind, last)
    written = []
    while start is not None:
        end = period_containing(kind, start)[1]
        if moment(end) + CLOSE_AFTER > now:
            break
        sheet = compute(session, organisation_id, kind, start, end, with_lines=False)
        if last is not None and sheet.opening_fen != last.closing_fen:
            # Entries written into a closed period: nothing is closed over it; `money check` names it.
            raise Conflict(_l("The journal before %(day)s no longer equals the last closed statement: run the "
                              "money check.", day=start.isoformat()))
        last = StatementRecord(organisation_id=organisation_id, period_kind=kind, starts_on=start, ends_on=end,
                               closed_at=now, **sheet.figures)
        session.add(last)
        written.append(last)
        start = end
    session.flush()
    return written


def sellers_with_entries(session: so.Session) -> list[int]:
    return sorted(session.scalars(sa.select(MoneyEntry.seller_organisation_id).where(
        MoneyEntry.seller_organisation_id.is_not(None)).distinct()))


def close_all_due(session: so.Session, *, now: datetime | None = None, kind: str | None = None) -> int:
    """Close every cooperative's ended periods; the number of statements written."""
    return sum(len(close_due(session, organisation_id, now=now, kind=kind))
               for organisation_id in sellers_with_entries(session))


def parse_start(text: str) -> date | None:
    """A statement's first day from a URL: ``YYYY-MM-DD``, or ``YYYY-MM`` for the first of the month."""
    text = str(text or "")
    if len(text) == 7:
        text += "-01"
    if len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if 2000 <= day.year <= 2100 else None
