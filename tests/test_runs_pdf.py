"""帳票データ(PDF) and 帳票データ(PDF+CSV): the emulator's documents carry the right PDF of the right customer."""

import zipfile

import pytest
import requests
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    PDF_CSV_SETTING,
    PDF_SETTING,
    execute,
    field_named,
    latest_run,
    menu_named,
    records_of,
    setting_named,
)
from sqlalchemy import select

from webapp.core.files import files_root
from webapp.extensions import db
from webapp.meisai import contract
from webapp.runs import export
from webapp.runs.models import CallStatus, RecordStatus, RunRecord
from webapp.runs.operations import preview_run, start_run


def customers_first(app):
    with app.app_context():
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        assert execute(run.id).status == "completed"


def sent_records(run_id):
    ids = {rr.record_id for rr in db.session.execute(select(RunRecord).where(RunRecord.run_id == run_id)).scalars()}
    return [r for r in records_of("請求書") if r.id in ids]


def emulator_pdf(emulator, document_id):
    response = requests.get(f"{emulator.root_url}demo/backadmin/documents/{document_id}/pdf", timeout=10)
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("setting_name", [PDF_CSV_SETTING, PDF_SETTING])
def test_pdf_modes_deliver_each_records_own_pdf(app, demo, setting_name):
    customers_first(app)
    with app.app_context():
        run = start_run(setting_named(setting_name), menu_named(INVOICE_MENU), executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "completed", run.error_message
        call = run.calls[0]
        kinds = [f["content_type"] for f in call.files]
        if setting_name == PDF_CSV_SETTING:
            assert kinds == [contract.ZIP_CONTENT_TYPE, contract.CSV_CONTENT_TYPE]
        else:
            assert kinds == [contract.ZIP_CONTENT_TYPE]
        pdf_field = field_named("請求書", "請求書PDF")
        code, number = field_named("請求書", "顧客コード"), field_named("請求書", "請求番号")
        documents = demo.current_documents()
        sent = sent_records(run.id)
        assert len(documents) == len(sent) > 0
        for record in sent:
            document = documents[record.data[number.key]]
            assert document["customerCode"] == record.data[code.key]
            assert document["pdfName"] == f"{record.data[code.key]}_{record.data[number.key]}.pdf"
            stored = (files_root() / record.data[pdf_field.key]["path"]).read_bytes()
            assert emulator_pdf(demo, document["id"]) == stored  # the very bytes generated for that record
        with zipfile.ZipFile(files_root() / call.files[0]["path"]) as archive:
            assert len(archive.namelist()) == len(sent)
            assert call.files[0]["size"] == (files_root() / call.files[0]["path"]).stat().st_size


def test_zip_is_split_at_the_size_limit_keeping_csv_rows_with_their_pdf(app, demo, monkeypatch):
    customers_first(app)
    with app.app_context():
        # The demo PDFs are ~50 KiB: a 300 KiB limit forces several calls (same rule as at 3 MB).
        limit = 300 * 1024
        real_pack = export.pack
        monkeypatch.setattr(export, "pack", lambda lines, header, **kw: real_pack(lines, header, max_bytes=limit))
        run = start_run(setting_named(PDF_CSV_SETTING), menu_named(INVOICE_MENU), executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "completed", run.error_message
        assert len(run.calls) > 1
        for call in run.calls:
            zip_info, csv_info = call.files
            assert zip_info["size"] <= limit and csv_info["size"] <= limit
            with zipfile.ZipFile(files_root() / zip_info["path"]) as archive:
                pdf_numbers = {name.rsplit("_", 1)[1][:-4] for name in archive.namelist()}
            csv_text = (files_root() / csv_info["path"]).read_bytes().decode("cp932")
            csv_numbers = {line.split('","')[1] for line in csv_text.splitlines()[1:]}
            assert pdf_numbers == csv_numbers  # each record's rows and PDF travel together
            assert call.status == CallStatus.COMPLETE
        assert len(demo.current_documents()) == sum(c.record_count for c in run.calls)
        assert all(d["pdfSize"] > 0 for d in demo.current_documents().values())


def test_record_whose_pdf_cannot_be_named_is_reported_not_skipped(app, demo):
    customers_first(app)
    with app.app_context():
        menu = menu_named(INVOICE_MENU)
        first = records_of("請求書")
        code = field_named("請求書", "顧客コード")
        victim = next(r for r in first if r.data.get(field_named("請求書", "連携ステータス").key) == "未連携")
        victim.data = {**victim.data, code.key: "C_0001"}
        db.session.commit()
        preview = preview_run(setting_named(PDF_SETTING), menu)
        assert any(rid == victim.id and "「_」" in message for rid, message in preview.problems)
        run = start_run(setting_named(PDF_SETTING), menu, executor_id=None, enqueue=False)
        run = execute(run.id)
        assert run.status == "partial"
        problem = db.session.execute(select(RunRecord).where(RunRecord.run_id == run.id,
                                                             RunRecord.record_id == victim.id)).scalar_one()
        assert problem.status == RecordStatus.INVALID and "紐付けられません" in problem.message


def test_preview_lists_the_pdf_names(app, demo, login):
    with app.app_context():
        url = f"/menus/{menu_named(INVOICE_MENU).id}/integrations/{setting_named(PDF_CSV_SETTING).id}/preview"
    body = login("user").post(url, data={}).get_data(as_text=True)
    assert "ZIPにまとめて送信" in body and ".pdf" in body
    with app.app_context():
        assert latest_run() is None
