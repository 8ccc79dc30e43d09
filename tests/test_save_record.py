"""save_record: the one way records are saved from input (the record form today; CSV import and bulk update next).

It checks the values against the DB's fields, stores uploads and regenerates PDFs whose inputs changed, and only
flushes: the caller commits, and stored files follow the transaction (a rolled-back save leaves no file behind, a
replaced file goes once the save is committed). The other operations of databases/, integrations/ and auth/ flush
too.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage

from webapp.core.errors import DomainError
from webapp.databases.models import Database, Record
from webapp.databases.operations import RecordChanges, save_record
from webapp.extensions import db


def key(sample, name: str) -> str:
    return str(sample["fields"][name])


def upload(text: str, name: str = "見積書.txt") -> FileStorage:
    return FileStorage(io.BytesIO(text.encode()), filename=name, content_type="text/plain")


def stored_path(app, value: dict) -> Path:
    return Path(app.config["FILES_DIR"]) / value["path"]


def test_required_values_are_checked_for_every_caller(app, sample, users):
    """A CSV row or a bulk update gets the form's rule and message, on the input the form would show it."""
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        with pytest.raises(DomainError) as refused:
            save_record(database, None, RecordChanges(data={key(sample, "請求金額"): 1200}), users["plain"])
        assert [(p.field, p.message) for p in refused.value.problems] == [
            (f"f{sample['fields']['請求番号']}", "必須項目です。入力してください。")]
        record = db.session.get(Record, sample["record"])
        with pytest.raises(DomainError, match="必須項目です"):
            save_record(database, record, RecordChanges(data={key(sample, "請求番号"): None}), users["plain"])
        db.session.rollback()
        assert db.session.get(Record, sample["record"]).data[key(sample, "請求番号")] == "INV-0001"


def test_values_people_do_not_type_are_refused(app, sample, users):
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        record = db.session.get(Record, sample["record"])
        with pytest.raises(DomainError, match="入力できる項目ではありません"):
            save_record(database, record, RecordChanges(data={key(sample, "請求書PDF"): {"path": "x"}}), None)


def test_a_save_that_is_not_committed_leaves_no_uploaded_file(app, sample, users):
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        saved = save_record(database, None, RecordChanges(
            data={key(sample, "請求番号"): "INV-0200"}, uploads={key(sample, "添付"): upload("見積")}), users["plain"])
        written = stored_path(app, saved.record.data[key(sample, "添付")])
        assert written.read_text() == "見積"
        db.session.rollback()
        assert not written.exists()
        assert db.session.query(Record).count() == 1


def test_a_replaced_file_is_removed_once_the_save_is_committed(app, sample, users):
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        record = db.session.get(Record, sample["record"])
        first = save_record(database, record, RecordChanges(uploads={key(sample, "添付"): upload("版1")}), None)
        db.session.commit()
        old = stored_path(app, first.record.data[key(sample, "添付")])
        save_record(database, record, RecordChanges(uploads={key(sample, "添付"): upload("版2", "見積書v2.txt")}), None)
        new = stored_path(app, record.data[key(sample, "添付")])
        assert old.exists() and new.exists()  # until the commit, the stored record still names the old file
        db.session.commit()
        assert not old.exists() and new.read_text() == "版2"
        save_record(database, record, RecordChanges(cleared={key(sample, "添付")}), None)
        db.session.commit()
        assert not new.exists() and record.data[key(sample, "添付")] is None


def test_a_required_file_is_checked_like_any_required_value(app, sample, users):
    with app.app_context():
        target = db.session.get(Database, sample["database"]).fields
        next(f for f in target if f.name == "添付").required = True
        db.session.commit()
        database = db.session.get(Database, sample["database"])
        record = db.session.get(Record, sample["record"])
        with pytest.raises(DomainError) as refused:
            save_record(database, record, RecordChanges(data={key(sample, "請求番号"): "INV-0001"}), None)
        assert [(p.field, p.message) for p in refused.value.problems] == [
            (f"f{sample['fields']['添付']}", "必須項目です。ファイルを選んでください。")]


def test_the_pdf_follows_the_values_it_prints(app, sample, users):
    """PDFs made stale by a save are made anew in it; the old file goes with the commit."""
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        record = db.session.get(Record, sample["record"])
        save_record(database, record, RecordChanges(data={key(sample, "請求番号"): "INV-0001"}), None)
        db.session.commit()
        first = record.data[key(sample, "請求書PDF")]
        assert stored_path(app, first).exists() and first["name"].endswith(".pdf")
        save_record(database, record, RecordChanges(data={key(sample, "請求番号"): "INV-0001"}), None)
        assert record.data[key(sample, "請求書PDF")] == first  # nothing it prints changed: not made again
        save_record(database, record, RecordChanges(
            data={key(sample, "請求番号"): "INV-0001"}, details=[{key(sample, "品名"): "封筒", key(sample, "数量"): 9}]),
            None)
        second = record.data[key(sample, "請求書PDF")]
        assert second["path"] != first["path"]
        db.session.commit()
        assert stored_path(app, second).exists() and not stored_path(app, first).exists()


def test_blank_detail_rows_are_dropped_and_too_many_refused(app, sample, users):
    from webapp.databases.operations import DETAIL_ROWS_MAX

    with app.app_context():
        database = db.session.get(Database, sample["database"])
        record = db.session.get(Record, sample["record"])
        rows = [{key(sample, "品名"): "用紙", key(sample, "数量"): 1}, {key(sample, "品名"): "", key(sample, "数量"): None}]
        save_record(database, record, RecordChanges(details=rows), None)
        assert record.details == rows[:1]
        with pytest.raises(DomainError, match=f"明細は{DETAIL_ROWS_MAX}行まで"):
            save_record(database, record, RecordChanges(details=rows[:1] * (DETAIL_ROWS_MAX + 1)), None)


def test_operations_leave_the_commit_to_their_caller(app, users):
    """A view, job or CLI command makes several operations one unit: nothing is kept unless it commits."""
    from webapp.auth.models import User
    from webapp.auth.operations import create_user
    from webapp.core.audit import AuditEntry
    from webapp.databases.operations import FieldSpec, MenuSpec, add_field, create_database, create_menu

    with app.app_context():
        database = create_database("備品")
        target = add_field(database, FieldSpec("品名", "text"))
        create_menu(database, MenuSpec(name="備品一覧", column_field_ids=[target.id]))
        create_user("newcomer", "Kobe-pass-2026")
        audited = db.session.query(AuditEntry).count()
        db.session.rollback()
        assert db.session.query(Database).filter_by(name="備品").count() == 0
        assert db.session.query(User).filter_by(username="newcomer").count() == 0
        assert db.session.query(AuditEntry).count() < audited
