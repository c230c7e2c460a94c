"""Text written into a spreadsheet cell (CSV or XLSX) that a spreadsheet program must not run as a formula."""

from __future__ import annotations

#: A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Prefix an apostrophe to text a spreadsheet would evaluate (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text
