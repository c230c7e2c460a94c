"""The spreadsheets and printouts of settlement: the bank's batch-payment sheet, and the distribution
sheet for the village notice board (公示) as XLSX and PDF, in Chinese whatever the reader's language.

Amounts are written as exact decimals (2 places) from integer fen, and every sheet ends with a total row
equal to the journal. Text a user typed (names, banks) is guarded against spreadsheet formula injection.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import sqlalchemy.orm as so
from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from marketplace.accounts.models import Organisation
from marketplace.core.i18n import local_time
from marketplace.core.quantities import fen_to_cny
from marketplace.settlement.models import Distribution, PayoutBatch

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: The notice board is printed in Chinese (the village reads it), whatever the cooperative's language.
NOTICE_LOCALE = "zh_CN"


def _text(value) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _write(sheet, row: int, values: list, money_columns: set[int], bold: bool = False) -> None:
    for col, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=col)
        if col in money_columns and isinstance(value, int):
            cell.value = fen_to_cny(value)
            cell.number_format = "#,##0.00"
        elif isinstance(value, int):
            cell.value = value
        elif value is not None:
            cell.value = _text(value)
            cell.data_type = "s"
        if bold:
            cell.font = Font(bold=True)


def _book(title: str, header: list[str], rows: list[list], total: list, money_columns: set[int],
          caption: list[str] = ()) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    n = 1
    for line in caption:
        _write(sheet, n, [line], set(), bold=n == 1)
        n += 1
    if caption:
        n += 1
    _write(sheet, n, header, set(), bold=True)
    for row in rows:
        n += 1
        _write(sheet, n, row, money_columns)
    _write(sheet, n + 1, total, money_columns, bold=True)
    for col in range(1, len(header) + 1):
        sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width = 28
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- the bank's batch-payment sheet ------------------------------------------------------------------

def bank_batch_xlsx(batch: PayoutBatch) -> bytes:
    """One row per payout of the batch: payee account name, bank, account number, amount, reference."""
    with force_locale(NOTICE_LOCALE):
        header = [_("Payee account name"), _("Bank"), _("Account number"), _("Amount (CNY)"), _("Reference")]
        rows = [[p.account_name, p.bank_name, p.account_number, p.amount_fen, p.reference] for p in batch.payouts]
        total = [_("Total"), "", "", sum(p.amount_fen for p in batch.payouts), batch.reference]
        return _book(batch.reference, header, rows, total, {4})


# --- the notice-board sheet ------------------------------------------------------------------------

@dataclass
class NoticeBoard:
    title: str
    lines: list[str]
    header: list[str]
    rows: list[list] = field(default_factory=list)
    total: list = field(default_factory=list)


def notice_board(session: so.Session, distribution: Distribution) -> NoticeBoard:
    """The distribution sheet's content, in Chinese: who gets what, the rule, the totals."""
    organisation = session.get(Organisation, distribution.organisation_id)
    with force_locale(NOTICE_LOCALE):
        sheet = NoticeBoard(
            title=_("Carbon-sink income distribution notice"),
            lines=[
                organisation.name,
                _("Payout %(ref)s of ¥%(amount)s, paid on %(day)s (bank reference %(bank)s).",
                  ref=distribution.payout.reference, amount=f"{fen_to_cny(distribution.amount_fen):,}",
                  day=local_time(distribution.payout.decided_at, "%Y-%m-%d"), bank=distribution.payout.bank_reference),
                _("Rule: collective fund %(c)s %%, member households %(h)s %% by shares.",
                  c=distribution.collective_percent, h=distribution.households_percent),
                _("Collective fund: ¥%(amount)s.", amount=f"{fen_to_cny(distribution.collective_fen):,}"),
                _("Published on %(day)s. Questions to the cooperative within 7 days.",
                  day=local_time(distribution.created_at, "%Y-%m-%d")),
            ],
            header=[_("No."), _("Household"), _("Shares"), _("Amount (CNY)")])
        for number, line in enumerate(distribution.lines, start=1):
            sheet.rows.append([number, line.household.name, line.shares, line.amount_fen])
        sheet.total = [_("Households total"), "", sum(ln.shares for ln in distribution.lines),
                       sum(ln.amount_fen for ln in distribution.lines)]
    return sheet


def notice_board_xlsx(sheet: NoticeBoard) -> bytes:
    return _book(sheet.title, sheet.header, sheet.rows, sheet.total, {4}, caption=[sheet.title, *sheet.lines])


def notice_board_pdf(sheet: NoticeBoard) -> bytes:
    """A4, the CJK font, the same rows and total as the spreadsheet."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from marketplace.core.pdf_fonts import cjk_font

    font = cjk_font()
    heading = ParagraphStyle("h", fontName=font, fontSize=18, leading=24, alignment=1)
    body = ParagraphStyle("b", fontName=font, fontSize=10.5, leading=15)
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                                 bottomMargin=16 * mm, title=sheet.title)
    money = lambda v: f"{fen_to_cny(v):,}" if isinstance(v, int) else v  # noqa: E731
    data = [sheet.header] + [[r[0], r[1], r[2], money(r[3])] for r in sheet.rows] + [
        [sheet.total[0], "", sheet.total[2], money(sheet.total[3])]]
    table = Table(data, repeatRows=1, colWidths=[18 * mm, 70 * mm, 30 * mm, 45 * mm])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 10),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef5f1")),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT")]))
    from xml.sax.saxutils import escape

    story = [Paragraph(escape(sheet.title), heading), Spacer(1, 4 * mm)]
    story += [Paragraph(escape(line), body) for line in sheet.lines]
    story += [Spacer(1, 4 * mm), table]
    document.build(story)
    return out.getvalue()


