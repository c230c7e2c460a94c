"""Activity data by spreadsheet: the template a buyer downloads, and the upload that reads it back.

Uploads are .xlsx (read with openpyxl in read-only mode, so a huge file is streamed, never loaded)
or .csv. Every row is checked before anything is saved; problems are reported per row and column,
and one bad row means nothing is imported.

An upload is untrusted work for a web worker, so every import is bounded before and while it is read:
the upload's size, the archive's parts (how many, how large unpacked, how much smaller packed), the
rows (blank ones counted, so a sheet padded to a million rows stops at the cap), the columns, and the
time spent. A file past any bound is refused with a message in the reader's language; nothing is saved.
"""

from __future__ import annotations

import csv
import io
import re
import time as clock
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

import sqlalchemy.orm as so
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation

from marketplace.accounts.models import User
from marketplace.core.cells import neutralise_formula
from marketplace.core.errors import ValidationFailed
from marketplace.footprint.emission_factors import current_factors
from marketplace.footprint.models import CATEGORIES, ActivityLine
from marketplace.footprint.service import (
    ActivityInput,
    _add_valid,
    category_label,
    editable_event,
    unit_label,
    validate_activity,
)
from marketplace.footprint.sources import SOURCES

#: The columns of the template, in order. ``description`` and ``source`` may be left out of an upload (older
#: templates have no source column; a blank source is the one the factor names).
COLUMNS = ("category", "factor_code", "quantity", "description", "source")
REQUIRED_COLUMNS = COLUMNS[:3]
#: What each column is called in the template, by language. An upload may use either language's names or
#: the codes themselves (older templates), in any letter case.
COLUMN_NAMES = {
    "category": {"zh": "类别", "en": "Category"},
    "factor_code": {"zh": "排放因子", "en": "Emission factor"},
    "quantity": {"zh": "数量", "en": "Quantity"},
    "description": {"zh": "说明", "en": "Description"},
    "source": {"zh": "排放源", "en": "Emission source"},
}
#: A real event has dozens of lines; a cap keeps a runaway file from tying up a worker. Rows after the
#: header, blank ones included (openpyxl pads the rows a sheet skips; they are work all the same).
MAX_ROWS = 2000
#: Columns read; the template has four. A sheet declaring more is refused before it is read.
MAX_COLUMNS = 16
#: The template is about 10 kB; a real sheet of 2,000 rows some 100 kB.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
#: Unpacked, all the workbook's parts together, and any one part (a sheet, the shared strings, the styles).
MAX_UNPACKED_BYTES = 16 * 1024 * 1024
MAX_PART_BYTES = 8 * 1024 * 1024
#: The shared strings are loaded whole by openpyxl: their own, smaller cap.
MAX_SHARED_STRINGS_BYTES = 2 * 1024 * 1024
#: Spreadsheet XML packs 5–20 times; a part that unpacks more than this much larger is a bomb.
MAX_COMPRESSION_RATIO = 100
#: The ratio is checked on parts larger than this (tiny parts of repeated bytes pack very well, harmlessly).
RATIO_CHECKED_FROM_BYTES = 256 * 1024
MAX_PARTS = 64
#: Seconds one upload may spend being read: a request never holds a worker for longer than a few seconds.
MAX_READ_SECONDS = 3.0
#: Reported problems are capped too; the first ones are enough to fix the file.
MAX_REPORTED_ERRORS = 50
#: The activity sheet, by language; an upload's sheet of either name (or its first sheet) is read.
SHEET_NAMES = {"zh": "活动数据", "en": "activities"}
SHEET_NAME = SHEET_NAMES["en"]
FACTOR_SHEET_NAMES = {"zh": "排放因子", "en": "factors"}
SOURCE_SHEET_NAMES = {"zh": "排放源", "en": "sources"}


def column_label(column: str | None, language: str) -> str | None:
    """A column as the template names it in the reader's language (never its code)."""
    if column is None:
        return None
    names = COLUMN_NAMES.get(column)
    return names.get(language, names["en"]) if names else column


def _language(language: str) -> str:
    return "zh" if language == "zh" else "en"


@dataclass(frozen=True)
class RowError:
    row: int | None  # the spreadsheet's row number (1 = header); None for the whole file
    column: str | None
    message: str


class SpreadsheetRejected(ValidationFailed):
    """The upload could not be imported. ``errors`` lists every problem found; nothing was saved."""

    def __init__(self, errors: list[RowError]):
        super().__init__(_l("The spreadsheet was not imported; nothing was saved. Fix these problems and upload it again."),
                         "file", code="spreadsheet_rejected")
        self.errors = errors


def _file_error(message) -> SpreadsheetRejected:
    return SpreadsheetRejected([RowError(None, None, str(message))])


# --- template ----------------------------------------------------------------------------------------

def activity_template(session: so.Session, language: str) -> bytes:
    """An .xlsx in the reader's language: the activity columns with drop-downs for category and factor
    (by name), the current factors, and how to fill it in."""
    language = _language(language)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET_NAMES[language]
    sheet.append([column_label(c, language) for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDE", (16, 36, 16, 48, 36), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    factors = current_factors(session)
    listing = workbook.create_sheet(FACTOR_SHEET_NAMES[language])
    listing.append([_("Name"), column_label("category", language), _("Unit"), _("kg CO2e per unit"), _("Source"),
                    _("Year"), _("Code")])
    for cell in listing[1]:
        cell.font = Font(bold=True)
    for factor in factors:
        # Names and sources are typed by the bureau: text a spreadsheet would run is neutralised, as in exports.
        listing.append([neutralise_formula(str(text)) for text in (factor.name(language), category_label(factor.category),
                                                                  unit_label(factor.unit))]
                       + [str(factor.kgco2e_per_unit.normalize()), neutralise_formula(str(factor.source or "")),
                          factor.year, neutralise_formula(factor.code)])
    listing.column_dimensions["A"].width = 36
    listing.column_dimensions["E"].width = 40
    listing.column_dimensions["G"].width = 32

    sources = workbook.create_sheet(SOURCE_SHEET_NAMES[language])
    sources.append([_("Name"), column_label("category", language), _("Accounting basis"), _("Code")])
    for cell in sources[1]:
        cell.font = Font(bold=True)
    for source in SOURCES:
        sources.append([str(source.name), category_label(source.category), str(source.basis), source.code])
    for letter, width in zip("ABCD", (36, 16, 60, 24), strict=True):
        sources.column_dimensions[letter].width = width

    category_names = [category_label(c) for c in CATEGORIES]
    categories = DataValidation(type="list", formula1='"' + ",".join(category_names) + '"', allow_blank=True,
                                showErrorMessage=True, errorTitle=_("Category"),
                                error=_("Choose a category from the list."))
    codes = DataValidation(type="list", formula1=f"='{listing.title}'!$A$2:$A${len(factors) + 1}",
                           allow_blank=True, showErrorMessage=True, errorTitle=_("Emission factor"),
                           error=_("Choose an emission factor from the list."))
    source_list = DataValidation(type="list", formula1=f"='{sources.title}'!$A$2:$A${len(SOURCES) + 1}",
                                 allow_blank=True, showErrorMessage=True, errorTitle=_("Emission source"),
                                 error=_("Choose an emission source from the list."))
    sheet.add_data_validation(categories)
    sheet.add_data_validation(codes)
    sheet.add_data_validation(source_list)
    categories.add(f"A2:A{MAX_ROWS + 1}")
    codes.add(f"B2:B{MAX_ROWS + 1}")
    source_list.add(f"E2:E{MAX_ROWS + 1}")

    notes = workbook.create_sheet(_("How to fill in"))
    names = {c: column_label(c, language) for c in COLUMNS}
    for line in (
        _("One activity per row on the sheet “%(sheet)s”; keep the first row as it is.", sheet=sheet.title),
        _("%(column)s: choose from the drop-down list: %(list)s.", column=names["category"],
          list=", ".join(category_names)),
        _("%(column)s: choose from the drop-down list (the names on the sheet “%(sheet)s”); it must belong to the "
          "row's category.", column=names["factor_code"], sheet=listing.title),
        _("%(column)s: activity data in the factor's unit (see the sheet “%(sheet)s”), a positive number with at "
          "most 4 decimal places.", column=names["quantity"], sheet=listing.title),
        _("%(column)s: optional, at most 300 characters.", column=names["description"]),
        _("%(column)s: optional, the guideline's emission source under the row's category (the sheet “%(sheet)s” "
          "lists them with their accounting basis); left blank, the one the factor names.",
          column=names["source"], sheet=sources.title),
        _("Names in Chinese or English are both accepted, and so are the codes of earlier templates."),
        _("Type values, not formulas; do not merge cells; at most %(n)d rows.", n=MAX_ROWS),
    ):
        notes.append([line])
    notes.column_dimensions["A"].width = 120

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- reading -----------------------------------------------------------------------------------------

def _header_aliases() -> dict[str, str]:
    aliases = {}
    for column in COLUMNS:
        aliases[column] = column
        for name in COLUMN_NAMES[column].values():
            aliases[name.lower()] = column
    return aliases


def _check_header(header: list, language: str = "zh") -> tuple[list[RowError], dict[str, int]]:
    aliases = _header_aliases()
    names = [str(h).strip().lower() if h is not None else "" for h in header]
    while names and not names[-1]:
        names.pop()
    columns = [aliases.get(n, "") for n in names]
    errors = []
    expected = ", ".join(column_label(c, language) for c in COLUMNS)
    missing = [column_label(c, language) for c in REQUIRED_COLUMNS if c not in columns]
    unexpected = [header[i] or "?" for i, c in enumerate(columns) if not c]
    if missing:
        errors.append(RowError(1, None, _("Missing columns: %(list)s. Use the template's first row: %(columns)s.",
                                          list=", ".join(missing), columns=expected)))
    if unexpected:
        errors.append(RowError(1, None, _("Unexpected columns: %(list)s. Use the template's first row: %(columns)s.",
                                          list=", ".join(str(u) for u in unexpected), columns=expected)))
    if len(set(columns)) != len(columns) and not unexpected:
        errors.append(RowError(1, None, _("A column appears twice in the first row.")))
    return errors, {column: i for i, column in enumerate(columns) if column}


def _cell_text(value) -> str | None:
    """A spreadsheet cell as the text it shows, or None when the cell holds a date or a boolean."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, datetime | date | time):
        return None
    if isinstance(value, float):
        # Excel keeps numbers as doubles; the shortest representation is what the user typed.
        return repr(value) if value != int(value) or abs(value) >= 1e16 else str(int(value))
    if isinstance(value, int | Decimal):
        return str(value)
    return str(value).strip()


def _rows_to_activities(rows, positions: dict[str, int]) -> tuple[list[tuple[int, ActivityInput]], list[RowError]]:
    activities, errors = [], []
    for row_number, values, formula_columns in rows:
        if formula_columns:
            errors.extend(RowError(row_number, column, _("Formulas are not accepted; type the value."))
                          for column in formula_columns)
            continue
        cells = {}
        bad = False
        for column in COLUMNS:
            position = positions.get(column)
            raw = values[position] if position is not None and position < len(values) else None
            text = _cell_text(raw)
            if text is None:
                errors.append(RowError(row_number, column, _("Enter plain text or a number here, not a date.")))
                bad = True
            cells[column] = text
        if not bad:
            activities.append((row_number, ActivityInput(cells["category"], cells["factor_code"], cells["quantity"],
                                                         cells["description"], cells["source"])))
    return activities, errors


def _is_blank(values) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _too_many_rows() -> SpreadsheetRejected:
    return _file_error(_("Too many rows: at most %(n)d rows after the header, blank ones included. Delete the "
                         "empty rows below your data, or split the file.", n=MAX_ROWS))


def _too_many_columns() -> SpreadsheetRejected:
    return _file_error(_("Too many columns: at most %(n)d. Use the template's columns only.", n=MAX_COLUMNS))


def _too_slow() -> SpreadsheetRejected:
    return _file_error(_("The spreadsheet took too long to read. Copy your rows into the template and upload "
                         "that."))


class _Deadline:
    """Raises the "took too long" refusal once MAX_READ_SECONDS have passed since it was made."""

    def __init__(self):
        self.ends_at = clock.monotonic() + MAX_READ_SECONDS

    def check(self) -> None:
        if clock.monotonic() > self.ends_at:
            raise _too_slow()


def _check_archive(data: bytes) -> None:
    """Refuse an .xlsx whose archive is a bomb before openpyxl opens it: the sizes its directory declares
    (Python's zipfile never unpacks more than an entry declares, and checks its CRC) bound all later work."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _file_error(_("This is not a readable .xlsx workbook. Download the template and use that.")) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_PARTS:
            raise _file_error(_("The workbook has too many parts to be the template."))
        total = 0
        for entry in entries:
            total += entry.file_size
            limit = MAX_SHARED_STRINGS_BYTES if entry.filename.lower().endswith("sharedstrings.xml") else MAX_PART_BYTES
            ratio_bomb = (entry.file_size > RATIO_CHECKED_FROM_BYTES
                          and entry.file_size > MAX_COMPRESSION_RATIO * max(entry.compress_size, 1))
            if entry.file_size > limit or total > MAX_UNPACKED_BYTES or ratio_bomb:
                raise _file_error(_("The workbook unpacks to far more data than an activity sheet holds (%(name)s). "
                                    "Copy your rows into the template and upload that.", name=entry.filename[:60]))


_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"(?:[A-Z]+[0-9]+:)?([A-Z]{1,3})([0-9]{1,7})\"")


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _check_declared_size(data: bytes, worksheet_path: str | None) -> None:
    """A sheet's ``<dimension ref="A1:XFD1048576"/>`` is what openpyxl pads every row to: refuse a sheet that
    declares more rows or columns than an upload may have, before reading a row."""
    if not worksheet_path:
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(worksheet_path.lstrip("/")) as fh:
        head = fh.read(4096)
    match = _DIMENSION.search(head)
    if match is None:
        return
    if int(match.group(2)) > MAX_ROWS + 1:
        raise _too_many_rows()
    if _column_number(match.group(1)) > MAX_COLUMNS:
        raise _too_many_columns()


def _xlsx_rows(data: bytes):
    """Header and rows of the first sheet (or the one named "activities"), streaming, within the bounds."""
    deadline = _Deadline()
    _check_archive(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 — openpyxl raises many kinds for a file that is not a workbook
        raise _file_error(_("This is not a readable .xlsx workbook. Download the template and use that.")) from None
    try:
        named = [name for name in SHEET_NAMES.values() if name in workbook.sheetnames]
        sheet = workbook[named[0]] if named else workbook.worksheets[0]
        _check_declared_size(data, getattr(sheet, "_worksheet_path", None))
        deadline.check()
        # Explicit bounds, never the sheet's own dimension: one row past the cap is read to notice it.
        iterator = sheet.iter_rows(min_row=1, max_row=MAX_ROWS + 2, max_col=MAX_COLUMNS + 1)
        header_cells = next(iterator, None)
        if header_cells is None:
            raise _file_error(_("The spreadsheet is empty."))
        header = [c.value for c in header_cells]
        if len(header) > MAX_COLUMNS and header[MAX_COLUMNS] is not None:
            raise _too_many_columns()
        header = header[:MAX_COLUMNS]
        rows = []
        for row_number, cells in enumerate(iterator, start=2):
            deadline.check()
            if row_number > MAX_ROWS + 1:
                raise _too_many_rows()
            if len(cells) > MAX_COLUMNS and getattr(cells[MAX_COLUMNS], "value", None) is not None:
                raise _too_many_columns()
            cells = cells[:MAX_COLUMNS]
            values = [c.value for c in cells]
            if _is_blank(values):
                continue
            formulas = [COLUMNS[i] if i < len(COLUMNS) else f"#{i + 1}" for i, c in enumerate(cells)
                        if getattr(c, "data_type", None) == "f"
                        or (isinstance(c.value, str) and c.value.startswith("="))]
            rows.append((row_number, values, formulas))
        deadline.check()
        if _has_merged_cells(data, getattr(sheet, "_worksheet_path", None)):
            raise _file_error(_("The sheet has merged cells. Unmerge them so every row has its own values."))
        return header, rows
    finally:
        workbook.close()


def _has_merged_cells(data: bytes, worksheet_path: str | None) -> bool:
    """Read-only worksheets do not expose merged ranges, so look for them in the sheet's XML."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [worksheet_path.lstrip("/")] if worksheet_path else [
            n for n in archive.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        for name in names:
            tail = b""
            with archive.open(name) as fh:
                while chunk := fh.read(1 << 16):
                    if b"<mergeCell " in tail + chunk or b"<mergeCell>" in tail + chunk:
                        return True
                    tail = chunk[-16:]
    return False


def _csv_rows(data: bytes):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _file_error(_("The CSV file is neither UTF-8 nor GB18030 text."))
    deadline = _Deadline()
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            raise _file_error(_("The spreadsheet is empty."))
        if len(header) > MAX_COLUMNS:
            raise _too_many_columns()
        rows, count = [], 0
        for values in reader:
            deadline.check()
            count += 1
            if count > MAX_ROWS:
                raise _too_many_rows()
            if len(values) > MAX_COLUMNS:
                raise _too_many_columns()
            if _is_blank(values):
                continue
            formulas = [COLUMNS[i] if i < len(COLUMNS) else f"#{i + 1}" for i, v in enumerate(values)
                        if v.strip().startswith("=")]
            rows.append((reader.line_num, values, formulas))
    except csv.Error:
        raise _file_error(_("The CSV file could not be read.")) from None
    return header, rows


def read_activity_sheet(filename: str, data: bytes, language: str = "zh"
                        ) -> tuple[list[tuple[int, ActivityInput]], list[RowError]]:
    """Parse an upload: (row number, activity) pairs and the row problems found so far.

    Raises SpreadsheetRejected for problems with the whole file (type, columns, size, merged cells)."""
    name = (filename or "").lower()
    if len(data) > MAX_UPLOAD_BYTES:
        raise _file_error(_("The file is larger than %(size)s; an activity sheet is far smaller. Upload the "
                            "template with your rows.", size=f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB"))
    if name.endswith(".xlsx"):
        header, rows = _xlsx_rows(data)
    elif name.endswith(".csv"):
        header, rows = _csv_rows(data)
    else:
        raise _file_error(_("Upload the template as .xlsx or .csv."))
    errors, positions = _check_header(header, _language(language))
    if errors:
        raise SpreadsheetRejected(errors)
    if not rows:
        raise _file_error(_("The spreadsheet has no activity rows."))
    activities, errors = _rows_to_activities(rows, positions)
    return activities, errors


class _Names:
    """Category and factor as people type them: the code, or the name in Chinese or English."""

    def __init__(self, session: so.Session):
        self.categories: dict[str, str] = {}
        for code in CATEGORIES:
            self.categories[code] = code
            for locale in ("zh_CN", "en"):
                with force_locale(locale):
                    self.categories[category_label(code).strip().lower()] = code
        self.sources: dict[str, str] = {}
        for source in SOURCES:
            self.sources[source.code] = source.code
            for locale in ("zh_CN", "en"):
                with force_locale(locale):
                    self.sources[str(source.name).strip().lower()] = source.code
        self.factors: dict[str, list] = {}
        for factor in current_factors(session):
            for key in {factor.code.lower(), factor.name_zh.strip().lower(), factor.name_en.strip().lower()}:
                self.factors.setdefault(key, []).append(factor)

    def category(self, text) -> str | None:
        return self.categories.get(str(text or "").strip().lower())

    def source(self, text) -> str | None:
        """The source's code ("" when the cell is blank), or None for a name that is none of them."""
        typed = str(text or "").strip().lower()
        return self.sources.get(typed) if typed else ""

    def factors_named(self, text) -> list:
        return self.factors.get(str(text or "").strip().lower(), [])


def _resolve(names: _Names, row_number: int, activity: ActivityInput, language: str
             ) -> tuple[ActivityInput | None, list[RowError]]:
    """The row with its category and factor as codes, or what is wrong, said by name (never a code)."""
    errors = []
    category = names.category(activity.category)
    if category is None:
        shown = str(activity.category or "").strip()
        errors.append(RowError(row_number, "category", (
            _("Unknown category “%(value)s”. Choose one of: %(list)s.", value=shown[:40],
              list=", ".join(category_label(c) for c in CATEGORIES)) if shown else
            _("Choose a category: %(list)s.", list=", ".join(category_label(c) for c in CATEGORIES)))))
    typed = str(activity.factor_code or "").strip()
    candidates = names.factors_named(typed)
    factor = None
    if not typed:
        errors.append(RowError(row_number, "factor_code", _("Choose an emission factor from the drop-down list.")))
    elif not candidates:
        errors.append(RowError(row_number, "factor_code", _(
            "Unknown or retired emission factor “%(value)s”. Choose one from the drop-down list (the sheet "
            "“%(sheet)s” lists them).", value=typed[:64], sheet=FACTOR_SHEET_NAMES[language])))
    elif category is not None:
        matching = [f for f in candidates if f.category == category]
        if len(matching) == 1:
            factor = matching[0]
        elif not matching:
            errors.append(RowError(row_number, "factor_code", _(
                "The emission factor “%(value)s” belongs to %(factor_category)s, not %(category)s.",
                value=typed[:64], factor_category=category_label(candidates[0].category),
                category=category_label(category))))
        else:
            errors.append(RowError(row_number, "factor_code", _(
                "Several emission factors of this category are called “%(value)s”; choose one from the drop-down "
                "list.", value=typed[:64])))
    source = names.source(activity.source)
    if source is None:
        errors.append(RowError(row_number, "source", _(
            "Unknown emission source “%(value)s”. Choose one from the drop-down list (the sheet “%(sheet)s” lists "
            "them).", value=str(activity.source).strip()[:64], sheet=SOURCE_SHEET_NAMES[language])))
    if errors or factor is None:
        return None, errors
    return ActivityInput(category, factor.code, activity.quantity, activity.description, source), []


def import_activity_sheet(session: so.Session, actor: User, event_id, filename: str, data: bytes,
                          language: str = "zh") -> list[ActivityLine]:
    """Add every row of an upload as an activity line of the event; all rows or none. Problems are said in
    ``language`` with the template's column names."""
    language = _language(language)
    event = editable_event(session, actor, event_id)
    activities, errors = read_activity_sheet(filename, data, language)
    names = _Names(session)
    valid = []
    for row_number, typed in activities:
        activity, problems = _resolve(names, row_number, typed, language)
        errors.extend(problems)
        if activity is None:
            continue
        try:
            valid.append(validate_activity(session, activity))
        except ValidationFailed as exc:
            errors.append(RowError(row_number, exc.field, str(exc.message)))
    if errors:
        errors.sort(key=lambda e: (e.row or 0, COLUMNS.index(e.column) if e.column in COLUMNS else 9))
        raise SpreadsheetRejected([RowError(e.row, column_label(e.column, language), e.message)
                                   for e in errors[:MAX_REPORTED_ERRORS]])
    lines = [_add_valid(session, event, v) for v in valid]
    session.flush()
    return lines
