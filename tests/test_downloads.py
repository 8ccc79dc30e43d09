"""Run files and record files: one charset in Content-Type, `Cache-Control: no-store`, the bytes exactly as
stored and sent; and the spreadsheet-safe cells a record-list CSV export can opt into."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from run_helpers import CUSTOMER_MENU, CUSTOMER_SETTING, execute, menu_named, setting_named
from werkzeug.datastructures import FileStorage

from webapp.core.spreadsheet import escape_formula, spreadsheet_row
from webapp.extensions import db


def charsets(content_type: str) -> list[str]:
    return [part.split("=", 1)[1] for part in content_type.split(";")[1:] if part.strip().lower().startswith("charset=")]


def test_a_run_file_downloads_byte_exact_with_one_charset_and_no_store(app, demo, login):
    from webapp.runs.operations import start_run

    with app.app_context():
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "completed"
        info = run.calls[0].files[0]
        stored = (Path(app.config["FILES_DIR"]) / info["path"]).read_bytes()
        run_id, index = run.id, run.calls[0].index
    response = login("user").get(f"/runs/{run_id}/calls/{index}/files/0")
    assert response.status_code == 200
    assert response.data == stored == received_by(demo)[0] and len(stored) == info["size"]
    assert "C00001" in stored.decode("cp932")
    assert response.headers["Content-Type"] == "text/csv; charset=Windows-31J"
    assert charsets(response.headers["Content-Type"]) == ["Windows-31J"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def received_by(emulator) -> list[bytes]:
    """The bytes of every file the emulator received, in order."""
    from sqlalchemy import select

    from meisai_emulator.models import ImportFile

    with emulator.app.extensions["meisai_emulator"].store.session() as session:
        paths = session.scalars(select(ImportFile.path).order_by(ImportFile.id)).all()
    return [(emulator.data_dir / path).read_bytes() for path in paths]


def upload(app, sample, data: bytes, filename: str, content_type: str) -> str:
    from webapp.databases.models import Field, Record
    from webapp.databases.operations import store_upload

    with app.app_context():
        record = db.session.get(Record, sample["record"])
        target = db.session.get(Field, sample["fields"]["添付"])
        value = store_upload(record, target, FileStorage(io.BytesIO(data), filename=filename, content_type=content_type))
        record.data = {**record.data, target.key: value}
        db.session.commit()
    return f"/records/{sample['record']}/files/{sample['fields']['添付']}"


@pytest.mark.parametrize("data,declared,expected", [
    ("顧客コード,顧客名\r\nC001,株式会社青葉\r\n".encode("cp932"), "text/csv", "text/csv; charset=Windows-31J"),
    ("顧客コード,顧客名\nC001,株式会社青葉\n".encode(), "text/csv", "text/csv; charset=utf-8"),
    ("メモ".encode("utf-16"), "text/plain", "application/octet-stream"),
    (b"%PDF-1.4 binary \xff\xfe", "application/pdf", "application/pdf"),
], ids=["cp932-csv", "utf8-csv", "not-text", "pdf"])
def test_an_uploaded_file_downloads_byte_exact_with_at_most_one_charset(app, login, sample, data, declared, expected):
    url = upload(app, sample, data, "添付ファイル", declared)
    response = login("plain").get(url)
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Type"] == expected
    assert len(charsets(response.headers["Content-Type"])) <= 1
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("declared,expected", [
    ("text/csv; charset=Windows-31J", "text/csv; charset=Windows-31J"),
    ("TEXT/CSV; Charset=UTF-8", "text/csv; charset=UTF-8"),
    ("application/zip", "application/zip"),
    (None, "application/octet-stream"),
])
def test_a_declared_charset_is_kept_once(tmp_path, declared, expected):
    from webapp.core.downloads import content_type_for

    path = tmp_path / "f"
    path.write_bytes("請求".encode("cp932"))
    assert content_type_for(path, declared) == expected


def test_a_generated_pdf_is_sent_without_a_charset_and_not_cached(app, login, sample):
    url = f"/records/{sample['record']}/documents/{sample['fields']['請求書PDF']}"
    for suffix, disposition in (("", "attachment;"), ("?inline=1", "inline;")):
        response = login("plain").get(url + suffix)
        assert response.status_code == 200 and response.data[:5] == b"%PDF-"
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Disposition"].startswith(disposition)
    with app.app_context():
        from webapp.databases.models import Field, Record

        record = db.session.get(Record, sample["record"])
        stored = record.data[db.session.get(Field, sample["fields"]["請求書PDF"]).key]
        path = Path(app.config["FILES_DIR"]) / stored["path"]
    assert login("plain").get(url).data == path.read_bytes()


@pytest.mark.parametrize("value,escaped", [
    ("=HYPERLINK(\"http://evil.example/\",\"請求書\")", "'=HYPERLINK(\"http://evil.example/\",\"請求書\")"),
    ("+81-3-1234-5678", "'+81-3-1234-5678"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("-1,200", "-1,200"),
    ("-1200.50", "-1200.50"),
    ("+100", "+100"),
    ("株式会社=青葉", "株式会社=青葉"),
    ("C00001", "C00001"),
    ("", ""),
])
def test_escape_formula_guards_cells_that_would_start_a_formula(value, escaped):
    assert escape_formula(value) == escaped


def test_spreadsheet_rows_escape_only_with_the_option_and_survive_csv_round_trip():
    row = ["C00001", "=1+1", "-1,200", "@担当", 1100]
    assert spreadsheet_row(row, escape_formulas=False) == ["C00001", "=1+1", "-1,200", "@担当", "1100"]
    escaped = spreadsheet_row(row, escape_formulas=True)
    assert escaped == ["C00001", "'=1+1", "-1,200", "'@担当", "1100"]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(escaped)
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == escaped


def test_files_sent_to_meisai_are_never_escaped():
    """The wire CSV keeps a value like =SUM(...) exactly: escaping is for spreadsheets, not for 楽楽明細."""
    from webapp.meisai import build_csv

    data = build_csv(["顧客コード", "備考"], [["C00001", "=SUM(A1)"]])
    assert "=SUM(A1)".encode("cp932") in data and b"'=SUM" not in data
