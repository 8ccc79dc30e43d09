"""The CSV lines a run sends, built per record and packed into API calls within 楽楽明細's limits.

Records are streamed from the database in batches, so memory stays flat at 100,000 records. A record is the
unit: its 明細 lines (one CSV line per detail row, header values repeated) always travel in the same call.
A record that cannot be encoded in Windows-31J, lacks its 顧客コード or alone exceeds a limit is reported as
invalid and left out; it is never sent with a `?` in it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from ..core.text import control_character_problem
from ..databases.models import Field, Record
from ..extensions import db
from ..meisai import contract
from ..meisai.files import _CP932_LOOKALIKES

BATCH = 500


# A ZIP of stored (uncompressed) members: per member a local header and a central directory entry, each with
# the name, plus the end record. Exact for names without ZIP64 or extra fields, which is all we write.
ZIP_END_SIZE = 22


def zip_member_size(name: str, size: int) -> int:
    return 30 + 46 + 2 * len(name.encode("utf-8")) + size


@dataclass
class RecordLines:
    record_id: int
    data: bytes = b""  # encoded CSV lines, CRLF-terminated
    rows: int = 0
    problem: str = ""  # why the record cannot be sent
    pdf_name: str = ""  # member name in the ZIP (PDF modes)
    pdf_path: Path | None = None
    pdf_size: int = 0


@dataclass
class Chunk:
    """The records of one API call."""

    record_ids: list[int] = field(default_factory=list)
    line_records: list[int] = field(default_factory=list)  # one entry per CSV data line (or per PDF, PDF only)
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    rows: int = 0
    pdfs: list[tuple[str, Path]] = field(default_factory=list)
    zip_size: int = ZIP_END_SIZE



@dataclass(frozen=True, slots=True)
class Column:
    """What building lines reads of a Field, copied once per run: per-cell ORM attribute reads (and the
    is_detail property) cost more than the CSV encoding itself at 300,000 lines. `csv` is the field type's
    export of a value (fieldtypes.FieldKind.csv), bound once."""

    id: int
    key: str
    name: str
    csv: Callable[[object], str]
    is_detail: bool


def plain_columns(columns: Sequence[Field]) -> list[Column]:
    return [Column(f.id, f.key, f.name, f.kind.csv, f.is_detail) for f in columns]


def _text(value: object) -> str:
    return ("" if value is None else str(value)).translate(_CP932_LOOKALIKES)


def _encode_lines(rows: Sequence[Sequence[str]]) -> bytes:
    """All lines of a record with one writer and one encode (cp932 is stateless: same bytes as line by line)."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator=contract.CSV_LINE_END).writerows(rows)
    return buffer.getvalue().encode(contract.CSV_ENCODING)


def header_names(columns: Sequence[Field | Column]) -> list[str]:
    """The CSV header as sent: the columns' names."""
    return [_text(f.name) for f in columns]


def header_bytes(columns: Sequence[Field | Column]) -> bytes:
    return _encode_lines([header_names(columns)])


def cell_text(record: Record, column: Field | Column) -> str:
    """A header field's value as its CSV cell carries it (e.g. the 顧客コード 楽楽明細 receives)."""
    csv = column.csv if isinstance(column, Column) else column.kind.csv
    return _text(csv(record.data.get(column.key))).strip()


def unencodable(columns: Sequence[Field | Column], cells: Sequence[str]) -> str:
    for column, cell in zip(columns, cells, strict=True):
        for char in cell:
            try:
                char.encode(contract.CSV_ENCODING)
            except UnicodeEncodeError:
                return (f"項目「{column.name}」の文字「{char}」(U+{ord(char):04X})はWindows-31J(Shift_JIS)で"
                        "送信できません。別の文字に置き換えてください。")
    return "Windows-31J(Shift_JIS)で送信できない文字が含まれています。"


def record_lines(record: Record, columns: Sequence[Column], code_index: int | None) -> RecordLines:
    """A record's CSV lines: one per 明細 row (header values repeated) when the columns hold 明細 fields."""
    values, details = record.data, record.details
    header_cells = {f.id: _text(f.csv(values.get(f.key))) for f in columns if not f.is_detail}
    if code_index is not None and not header_cells.get(columns[code_index].id, "").strip():
        return RecordLines(record.id, problem="顧客コードが空です。顧客コードを入力してから送信してください。")
    if details and any(f.is_detail for f in columns):
        rows_cells = [[_text(f.csv(row.get(f.key))) if f.is_detail else header_cells[f.id]
                       for f in columns] for row in details]
    else:
        rows_cells = [["" if f.is_detail else header_cells[f.id] for f in columns]]
    try:
        data = _encode_lines(rows_cells)
    except UnicodeEncodeError:
        problem = next(unencodable(columns, cells) for cells in rows_cells if _has_unencodable(cells))
        return RecordLines(record.id, problem=problem)
    if _CONTROL_BYTES.search(data):
        return RecordLines(record.id, problem=_control_character_problem(columns, rows_cells))
    return RecordLines(record.id, data=data, rows=len(rows_cells))


# Control characters other than tab and line breaks (which multi-line text keeps): 楽楽明細 refuses the whole file
# for one, and inputs refuse them since, so only data stored before can hold them. In cp932 such bytes are never
# part of a two-byte character, so the encoded lines are searched at once.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_problem(columns: Sequence[Column], rows_cells: Sequence[Sequence[str]]) -> str:
    names = (column.name for cells in rows_cells for column, cell in zip(columns, cells, strict=True)
             if control_character_problem(cell, multiline=True))
    name = next(names, "")
    return (f"項目「{name}」に" if name else "") + ("制御文字(NULなど、画面に見えない特殊な文字)が含まれているため"
                                                 "送信できません。レコードを編集して、その文字を取り除いてください。")


def _has_unencodable(cells: Sequence[str]) -> bool:
    try:
        "".join(cells).encode(contract.CSV_ENCODING)
    except UnicodeEncodeError:
        return True
    return False


# The PDF's name carries the 帳票No (MEISAI_API.md: {顧客コード}_{帳票No}.pdf). It is read from the first of these
# fields the DB has; without one the name is {顧客コード}.pdf and 楽楽明細 numbers the document itself.
DOCUMENT_NO_FIELD_NAMES = ("帳票No", "請求番号", "納品番号", "伝票番号")


def named_field(fields: Sequence[Field], names: Sequence[str]) -> Field | None:
    by_name = {f.name: f for f in fields if not f.is_detail}
    return next((by_name[n] for n in names if n in by_name), None)


def pdf_member(record: Record, code_field: Field, number_field: Field | None) -> tuple[str, str]:
    """(member name, problem) of a record's PDF in the ZIP."""
    code = str(record.data.get(code_field.key) or "").strip()
    number = str(record.data.get(number_field.key) or "").strip() if number_field else ""
    if not code:
        return "", "顧客コードが空です。顧客コードを入力してから送信してください。"
    if any(c in code for c in "_/\\"):
        return "", f"顧客コード「{code}」に「_」「/」が含まれるため、PDFを顧客に紐付けられません。"
    if any(c in number for c in "/\\"):
        return "", f"帳票No「{number}」に「/」が含まれるため、PDFのファイル名にできません。"
    return contract.pdf_member_name(code, number or None), ""


def customer_code_index(columns: Sequence[Field | Column]) -> int | None:
    for index, column in enumerate(columns):
        if column.name == contract.CUSTOMER_CODE and not column.is_detail:
            return index
    return None


def stream_records(record_ids: Iterable[int]) -> Iterator[Record]:
    """Records in the given order, loaded BATCH at a time (deleted records are skipped)."""
    batch: list[int] = []

    def flush(ids):
        loaded = {r.id: r for r in db.session.execute(select(Record).where(Record.id.in_(ids))).scalars()}
        for record_id in ids:
            if record_id in loaded:
                yield loaded[record_id]

    for record_id in record_ids:
        batch.append(record_id)
        if len(batch) >= BATCH:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def pack(lines: Iterable[RecordLines], header: bytes, max_rows: int = contract.MAX_ROWS_PER_FILE,
         max_bytes: int = contract.MAX_FILE_BYTES) -> Iterator[Chunk | RecordLines]:
    """Chunks within the limits, in record order; records that cannot be sent are yielded as they come.

    Every file of a call stays within both limits: the CSV (header included) and, in the PDF modes, the ZIP.
    A record's CSV lines and its PDF always travel in the same call.
    """
    chunk = Chunk(parts=[header], size=len(header))
    for item in lines:
        if item.problem:
            yield item
            continue
        pdf_bytes = zip_member_size(item.pdf_name, item.pdf_size) if item.pdf_name else 0
        if item.rows > max_rows or len(header) + len(item.data) > max_bytes or ZIP_END_SIZE + pdf_bytes > max_bytes:
            item.problem = (f"このレコードだけで1回の送信の上限({max_rows:,}行・{max_bytes // 1024 // 1024}MB)を"
                            "超えるため送信できません。明細行やPDFを分けてください。")
            yield item
            continue
        if chunk.record_ids and (chunk.rows + item.rows > max_rows or chunk.size + len(item.data) > max_bytes
                                 or chunk.zip_size + pdf_bytes > max_bytes):
            yield chunk
            chunk = Chunk(parts=[header], size=len(header))
        chunk.record_ids.append(item.record_id)
        chunk.line_records.extend([item.record_id] * item.rows)
        chunk.parts.append(item.data)
        chunk.size += len(item.data)
        chunk.rows += item.rows
        if item.pdf_name:
            chunk.pdfs.append((item.pdf_name, item.pdf_path))
            chunk.zip_size += pdf_bytes
    if chunk.record_ids:
        yield chunk
