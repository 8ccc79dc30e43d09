"""Which 顧客コード this installation has registered in each 楽楽明細 (by base URL), from what its runs sent.

A 顧客データ run adds the codes of the records 楽楽明細 imported, read from the very CSV files it sent; a 帳票
preview asks which of its records' codes were never sent to its 楽楽明細 (楽楽明細 refuses a 帳票 whose
customer it does not know).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from sqlalchemy import select

from ..core.clock import utcnow
from ..core.files import files_root
from ..extensions import db
from ..meisai import contract
from .models import CallStatus, RecordStatus, Run, RunRecord, SentCustomerCode

BATCH = 500


def _insert_new(rows: list[dict]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a code sent again, or by two runs at once, keeps its first row."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(SentCustomerCode).on_conflict_do_nothing(index_elements=["base_url", "code"])
    for start in range(0, len(rows), BATCH):
        db.session.execute(statement, rows[start:start + BATCH])


def record_sent_codes(run: Run, base_url: str) -> int:
    """Add the 顧客コード of the run's imported records (status OK) to the ledger of `base_url`; returns how many
    codes the run carried. Safe to repeat (a resumed run)."""
    now = utcnow()
    carried = 0
    for call in run.calls:
        if call.status not in (CallStatus.COMPLETE, CallStatus.ROW_ERRORS):
            continue
        csv_file = next((f for f in call.files if f["content_type"] == contract.CSV_CONTENT_TYPE), None)
        path = files_root() / csv_file["path"] if csv_file else None
        if path is None or not path.is_file():
            continue
        imported = set(db.session.execute(
            select(RunRecord.record_id).where(RunRecord.run_id == run.id, RunRecord.call_index == call.index,
                                              RunRecord.status == RecordStatus.OK)
        ).scalars())
        reader = csv.reader(io.StringIO(path.read_bytes().decode(contract.CSV_ENCODING), newline=""))
        header = next(reader, [])
        if contract.CUSTOMER_CODE not in header:
            continue
        position = header.index(contract.CUSTOMER_CODE)
        codes = {row[position].strip() for record_id, row in zip(call.line_records, reader, strict=False)
                 if record_id in imported and len(row) > position and row[position].strip()}
        carried += len(codes)
        _insert_new([{"base_url": base_url, "code": code, "run_id": run.id, "sent_at": now} for code in codes])
    return carried


def never_sent(base_url: str, codes: Iterable[str]) -> set[str]:
    """The codes among `codes` that no successful 顧客データ run sent to `base_url`."""
    wanted = list(dict.fromkeys(codes))
    known: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        known.update(db.session.execute(
            select(SentCustomerCode.code).where(SentCustomerCode.base_url == base_url,
                                                SentCustomerCode.code.in_(wanted[start:start + BATCH]))
        ).scalars())
    return set(wanted) - known
