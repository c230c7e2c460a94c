"""The dashboards' tables, built once and rendered three ways: on the page, as CSV and as XLSX.

A table holds raw values (text, integer units, integer fen, counts), never formatted strings, so the
page, the CSV and the spreadsheet show the same figures by construction; each medium formats them
through core/quantities.py. Text from users (organisation, project and village names) is
guarded against spreadsheet formula injection in both exports.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.styles import Font

from marketplace.core.cells import FORMULA_TRIGGERS, neutralise_formula  # noqa: F401 — the guard, in core for every writer
from marketplace.core.i18n import local_time
from marketplace.core.quantities import fen, fen_to_cny, format_cny, format_tonnes, units_to_decimal
from marketplace.stats.figures import Figures, fold_periods

#: Column kinds: text, tonnes (integer units), cny (integer fen), count.
KINDS = ("text", "tonnes", "cny", "count")


@dataclass
class Column:
    label: object
    kind: str = "text"


@dataclass
class Table:
    key: str
    title: object
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    #: per row: "" or a level name ("county", "township") for subtotal rows of a hierarchy
    row_levels: list[str] = field(default_factory=list)
    total: list | None = None
    #: on the page, at most this many rows (the CSV and XLSX downloads have them all); a hierarchy with
    #: more rows than this shows its subtotal rows only. None: every row.
    screen_limit: int | None = None

    def add(self, values: list, level: str = "") -> None:
        self.rows.append(values)
        self.row_levels.append(level)

    def on_screen(self) -> list[tuple[list, str]]:
        """(values, level) of the rows the page shows: the first ones of the download's, in its order."""
        rows = list(zip(self.rows, self.row_levels, strict=True))
        if self.screen_limit is None or len(rows) <= self.screen_limit:
            return rows
        if any(level for _values, level in rows):
            rows = [row for row in rows if row[1]]
        return rows[:self.screen_limit]


def cell_text(value, kind: str) -> str:
    """The exact text of a value, as written to CSV (4 places for tonnes, 2 for yuan)."""
    if value is None:
        return ""
    if kind == "tonnes":
        return format_tonnes(int(value))
    if kind == "cny":
        return format_cny(fen_to_cny(int(value)))
    if kind == "count":
        return str(int(value))
    return neutralise_formula(str(value))


def to_csv(table: Table) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese names correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise_formula(str(c.label)) for c in table.columns])
    for row in table.rows:
        writer.writerow([cell_text(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
    if table.total is not None:
        writer.writerow([cell_text(v, c.kind) for v, c in zip(table.total, table.columns, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(tables: list[Table]) -> bytes:
    """One sheet per table. Numbers are exact decimals with fixed places; text is always text."""
    book = Workbook()
    book.remove(book.active)
    used = set()
    for table in tables:
        title = _sheet_title(str(table.title), used)
        sheet = book.create_sheet(title)
        sheet.append([str(c.label) for c in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        rows = [*table.rows, *([table.total] if table.total is not None else [])]
        for n, row in enumerate(rows, start=2):
            for col, (value, column) in enumerate(zip(row, table.columns, strict=True), start=1):
                _write_cell(sheet.cell(row=n, column=col), value, column.kind)
            if table.total is not None and n == len(rows) + 1:
                for cell in sheet[n]:
                    cell.font = Font(bold=True)
        for col, column in enumerate(table.columns, start=1):
            sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width = (
                36 if column.kind == "text" else 18)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_cell(cell, value, kind: str) -> None:
    if value is None:
        return
    if kind == "tonnes":
        cell.value = units_to_decimal(int(value))
        cell.number_format = "#,##0.0000"
    elif kind == "cny":
        cell.value = fen_to_cny(int(value))
        cell.number_format = "#,##0.00"
    elif kind == "count":
        cell.value = int(value)
    else:
        # Set as a string cell explicitly: openpyxl would otherwise store "=…" as a formula.
        cell.value = str(value)
        cell.data_type = "s"


def _sheet_title(title: str, used: set) -> str:
    for bad in "[]:*?/\\":
        title = title.replace(bad, " ")
    base = title[:28] or "Sheet"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base[:25]} {n}", n + 1
    used.add(candidate)
    return candidate


# --- the dashboards' tables ---------------------------------------------------------------------

def _figure_columns(*, orders: bool = True) -> list[Column]:
    cols = [Column(_l("Sold (t)"), "tonnes"), Column(_l("Retired (t)"), "tonnes"),
            Column(_l("Revenue (CNY)"), "cny")]
    if orders:
        cols.append(Column(_l("Orders completed"), "count"))
    return cols


def _figures(f, *, orders: bool = True) -> list:
    values = [f.sold_units, f.retired_units, f.revenue_fen]
    if orders:
        values.append(f.orders_completed)
    return values


def totals_table(summary) -> Table:
    t = Table("totals", _l("Cumulative totals"), [Column(_l("Figure")), Column(_l("Quantity (t)"), "tonnes"),
                                                    Column(_l("Amount (CNY)"), "cny"), Column(_l("Count"), "count")])
    f = summary.totals
    t.add([_l("Sold"), f.sold_units, None, None])
    t.add([_l("Credits retired"), f.retired_units, None, None])
    t.add([_l("Revenue"), None, f.revenue_fen, None])
    t.add([_l("Revenue to villages (all revenue goes to the selling cooperative)"), None, f.revenue_fen, None])
    t.add([_l("Orders completed"), None, None, f.orders_completed])
    t.add([_l("Neutralised events"), None, None, f.events])
    t.add([_l("Buyers"), None, None, summary.buyers])
    return t


def by_buyer_table(summary) -> Table:
    t = Table("by_buyer", _l("By buyer organisation"), [Column(_l("Buyer")), *_figure_columns()])
    for org, f in summary.by_buyer:
        t.add([org.name, *_figures(f)])
    t.total = [_l("Total"), *_figures(summary.totals)]
    return t


def by_village_table(summary) -> Table:
    """County › township › village, with subtotal rows for counties and townships."""
    t = Table("by_village", _l("By county › township › village"),
              [Column(_l("County")), Column(_l("Township")), Column(_l("Village")), *_figure_columns(orders=False)])
    tree: dict = {}
    for village, f in summary.by_village:
        county, township = village.county or "—", village.township or "—"
        tree.setdefault(county, {}).setdefault(township, []).append((village.name, f))

    for county, townships in tree.items():
        county_total = Figures()
        for villages in townships.values():
            for _name, f in villages:
                county_total.add(f)
        t.add([county, "", "", *_figures(county_total, orders=False)], "county")
        for township, villages in townships.items():
            township_total = Figures()
            for _name, f in villages:
                township_total.add(f)
            t.add([county, township, "", *_figures(township_total, orders=False)], "township")
            for name, f in villages:
                t.add([county, township, name, *_figures(f, orders=False)])
    t.total = [_l("Total"), "", "", *_figures(summary.totals, orders=False)]
    return t


def by_period_table(summary, period: str) -> Table:
    titles = {"month": _l("By month"), "quarter": _l("By quarter"), "year": _l("By year")}
    labels = {"month": _l("Month"), "quarter": _l("Quarter"), "year": _l("Year")}
    t = Table(f"by_{period}", titles[period], [Column(labels[period]), *_figure_columns()])
    rows = summary.by_month if period == "month" else fold_periods(summary.by_month, period)
    for key, f in rows:
        t.add([key, *_figures(f)])
    t.total = [_l("Total"), *_figures(summary.totals)]
    return t


def by_project_table(summary) -> Table:
    t = Table("by_project", _l("By project and vintage"),
              [Column(_l("Project")), Column(_l("Village")), Column(_l("Vintage"), "count"),
               *_figure_columns(orders=False)])
    for project, vintage, f in summary.by_project:
        t.add([project.name, project.village, vintage, *_figures(f, orders=False)])
    t.total = [_l("Total"), "", None, *_figures(summary.totals, orders=False)]
    return t


def inventory_table(inv) -> Table:
    t = Table("inventory", _l("Inventory and buffer pool"), [Column(_l("Account")), Column(_l("Quantity (t)"),
                                                                                            "tonnes")])
    for label, units in ((_l("Issued"), inv.issued), (_l("Not yet listed"), inv.available),
                         (_l("Listed, on sale"), inv.listed), (_l("Reserved by open orders"), inv.reserved),
                         (_l("Credits retired"), inv.retired), (_l("Buffer pool"), inv.buffer),
                         (_l("Buffer cancelled for losses"), inv.cancelled)):
        t.add([label, units])
    return t


STATUS_LABELS = {"pending_payment": _l("awaiting payment"), "paid": _l("paid"), "retiring": _l("retiring"),
                 "completed": _l("completed"), "cancelled": _l("cancelled"), "expired": _l("expired"),
                 "refunded": _l("refunded")}


def orders_table(key: str, title, orders) -> Table:
    t = Table(key, title, [Column(_l("Order")), Column(_l("Buyer")), Column(_l("Beneficiary")),
                           Column(_l("Status")), Column(_l("Quantity (t)"), "tonnes"),
                           Column(_l("Amount (CNY)"), "cny"), Column(_l("Placed (Beijing time)"))])
    for order in orders:
        # The platform's wall-clock time, like the pages: a spreadsheet has no zone of its own.
        t.add([f"#{order.id}", order.buyer.name, order.beneficiary,
               STATUS_LABELS.get(order.status, order.status), order.quantity_units,
               fen(order.amount_cny), local_time(order.created_at)])
    return t
