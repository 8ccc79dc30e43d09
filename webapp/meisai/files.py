"""The files an import sends: the CSV in Windows-31J (cp932) as the contract wants it, and the PDF ZIP."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import contract
from .errors import MeisaiCsvEncodingError

# Characters that JIS-based input (macOS, some web forms) produces where Windows-31J has a look-alike code
# point. Windows itself maps them this way; without it a 〜 in a customer name would fail the whole record.
_CP932_LOOKALIKES = str.maketrans(
    {
        "\u301c": "\uff5e",  # WAVE DASH → FULLWIDTH TILDE
        "\u2016": "\u2225",  # DOUBLE VERTICAL LINE → PARALLEL TO
        "\u2212": "\uff0d",  # MINUS SIGN → FULLWIDTH HYPHEN-MINUS
        "\u00a2": "\uffe0",  # CENT SIGN
        "\u00a3": "\uffe1",  # POUND SIGN
        "\u00ac": "\uffe2",  # NOT SIGN
        "\u2014": "\u2015",  # EM DASH → HORIZONTAL BAR
    }
)


@dataclass(frozen=True)
class EncodingProblem:
    """A cell that Windows-31J cannot represent (row 1 is the header)."""

    row: int
    column: str
    value: str
    char: str


def _cell(value: object) -> str:
    if value is None:
        return ""
    return str(value).translate(_CP932_LOOKALIKES)


def find_encoding_problems(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[EncodingProblem]:
    """Every cell that cannot be encoded, for previews and per-record errors (empty when all is well)."""
    problems = []
    for row_number, row in enumerate([header, *rows], start=1):
        for index, value in enumerate(row):
            text = _cell(value)
            try:
                text.encode(contract.CSV_ENCODING)
            except UnicodeEncodeError as exc:
                column = header[index] if index < len(header) else f"列{index + 1}"
                problems.append(EncodingProblem(row_number, column, text, text[exc.start]))
    return problems


def build_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The CSV bytes of one import: a header row, every field double-quoted, CRLF, Windows-31J.

    Raises ``MeisaiCsvEncodingError`` naming the first cell that Windows-31J cannot represent (never a ``?``).
    """
    rows = list(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator=contract.CSV_LINE_END)
    writer.writerow([_cell(v) for v in header])
    writer.writerows([_cell(v) for v in row] for row in rows)
    try:
        return buffer.getvalue().encode(contract.CSV_ENCODING)
    except UnicodeEncodeError:
        problem = find_encoding_problems(header, rows)[0]
        raise MeisaiCsvEncodingError(
            f"row {problem.row} column {problem.column!r}: U+{ord(problem.char):04X} is not in Windows-31J",
            row=problem.row,
            column=problem.column,
            value=problem.value,
            char=problem.char,
        ) from None


def build_pdf_zip(pdfs: Iterable[tuple[str, bytes]]) -> bytes:
    """A ZIP of ``(member name, PDF bytes)``; name members with ``contract.pdf_member_name``.

    PDFs are already compressed, so members are stored: deflating them again costs time and saves nothing.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in pdfs:
            archive.writestr(name, data)
    return buffer.getvalue()
