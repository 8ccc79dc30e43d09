"""Cells of CSV files that people open in Excel (the CSV export of record lists, when it comes).

A cell beginning with =, +, - or @ is read by Excel as a formula (CSV injection: `=HYPERLINK(...)`,
`=cmd|' /C calc'!A0`, `@SUM(...)`); so is one beginning with a tab or CR after Excel trims it. With the
option on, such a cell is written with a leading apostrophe, which Excel shows as text and does not print.
Plain numbers stay numbers: -1,200 is an amount, not a formula, and accountants sum it.

Never used for the files sent to 楽楽明細: those stay exactly as the records say (webapp/meisai/files.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def escape_formula(value: str) -> str:
    """`value` made safe to open in a spreadsheet: a leading apostrophe when it would start a formula."""
    if value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return ESCAPE + value
    return value


def spreadsheet_row(values: Iterable[str], *, escape_formulas: bool) -> list[str]:
    """One CSV row's cells; `escape_formulas` is the export's option (off: the values exactly as stored)."""
    cells = [value if isinstance(value, str) else str(value) for value in values]
    return [escape_formula(cell) for cell in cells] if escape_formulas else cells
