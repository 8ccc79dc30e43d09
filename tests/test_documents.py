"""自動生成ファイル: PDFs generated from records by the 請求書 / 納品書 templates.

What a user notices: the PDF says the right things (addressee, number, every 明細 line, totals by tax rate),
Japanese text is embedded so any viewer shows it, the PDF follows the record's changes but not unrelated
ones, 再生成 and the bulk job work, and a broken template never costs a record save.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update

from webapp.databases.models import Field, Record
from webapp.extensions import db

BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent / "webapp" / "documents" / "templates_pdf"


# ---- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture
def invoices(app, users):
    """A 請求書 DB shaped like the demo's, with an autofile field using the 請求書 template."""
    from webapp.databases.operations import FieldSpec, MenuSpec, add_field, create_database, create_menu

    with app.app_context():
        database = create_database("請求書", "")
        specs = [
            FieldSpec("請求番号", "text", required=True),
            FieldSpec("取引先", "text"),
            FieldSpec("担当者名", "text"),
            FieldSpec("請求日", "date"),
            FieldSpec("支払期限", "date"),
            FieldSpec("件名", "text"),
            FieldSpec("連携ステータス", "select", options=["未連携", "連携済"]),
            FieldSpec("備考", "textarea"),
            FieldSpec("請求書PDF", "autofile", settings={"template": "invoice"}),
            FieldSpec("品名", "text", placement="detail"),
            FieldSpec("数量", "number", placement="detail"),
            FieldSpec("単価", "number", placement="detail"),
            FieldSpec("金額", "number", placement="detail"),
            FieldSpec("税率", "select", placement="detail", options=["10%", "8%"]),
        ]
        fields = {spec.name: add_field(database, spec) for spec in specs}
        menu = create_menu(database, MenuSpec(name="請求書一覧", column_field_ids=[fields["請求番号"].id]))
        db.session.commit()
        return {"database": database.id, "menu": menu.id, "fields": {n: f.id for n, f in fields.items()}}


def attr(invoices, name: str) -> str:
    return f"f{invoices['fields'][name]}"


LINES = [  # 品名, 数量, 単価, 税率
    ("トナーカートリッジ", "2", "12800", "10%"),
    ("お茶 500ml×24本", "3", "2880", "8%"),
    ("保守サービス(月額)", "1", "30000", "10%"),
]


def invoice_form(invoices, lines=LINES, **overrides) -> dict:
    data = {
        attr(invoices, "請求番号"): "INV-2026-0042",
        attr(invoices, "取引先"): "株式会社青葉商事",
        attr(invoices, "請求日"): "2026-04-30",
        attr(invoices, "支払期限"): "2026-05-31",
        attr(invoices, "件名"): "4月分 ご請求",
        attr(invoices, "連携ステータス"): "未連携",
        "action": "save",
    }
    for index, (item, quantity, price, rate) in enumerate(lines):
        data[f"details-{index}-{attr(invoices, '品名')}"] = item
        data[f"details-{index}-{attr(invoices, '数量')}"] = quantity
        data[f"details-{index}-{attr(invoices, '単価')}"] = price
        data[f"details-{index}-{attr(invoices, '税率')}"] = rate
    data.update(overrides)
    return data


def create_invoice(user, invoices, **kwargs) -> int:
    response = user.post(f"/dbs/{invoices['database']}/records/new", data=invoice_form(invoices, **kwargs))
    assert response.status_code == 302, response.get_data(as_text=True)[-800:]
    return int(re.search(r"/records/(\d+)", response.location).group(1))


def pdf_value(app, record_id: int, invoices) -> dict | None:
    with app.app_context():
        return db.session.get(Record, record_id).data.get(str(invoices["fields"]["請求書PDF"]))


def stored_path(app, value: dict) -> Path:
    return Path(app.config["FILES_DIR"]) / value["path"]


def text_of(pdf: bytes | Path) -> str:
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---- content --------------------------------------------------------------------------------------------


def test_saving_a_record_generates_its_invoice_pdf(app, login, invoices):
    record_id = create_invoice(login("plain"), invoices)
    value = pdf_value(app, record_id, invoices)
    assert value["name"] == "INV-2026-0042.pdf"
    assert value["content_type"] == "application/pdf"
    assert value["path"].startswith(f"records/{invoices['database']}/{record_id}/")
    path = stored_path(app, value)
    assert path.is_file() and path.stat().st_size == value["size"]  # under FILES_DIR, not in the row
    text = text_of(path)
    flat = compact(text)
    assert "株式会社青葉商事御中" in flat
    assert "INV-2026-0042" in text
    assert "2026年4月30日" in text and "2026年5月31日" in text
    assert "4月分 ご請求" in text
    for item, quantity, price, rate in LINES:
        amount = int(quantity) * int(price)
        assert re.search(rf"{re.escape(item)}\s+{quantity}\s+¥{int(price):,}\s+¥{amount:,}\s+{rate}", text), item
    assert "8%※" in text  # 軽減税率 marked
    # 10%: 25,600 + 30,000 = 55,600 → tax 5,560; 8%: 8,640 → tax 691 (691.2 rounded down).
    assert "¥55,600" in text and "¥5,560" in text
    assert "¥8,640" in text and "¥691" in text
    assert "¥64,240" in flat and "¥70,491" in flat  # 小計, 合計
    assert "T1234567890123" in text  # the issuer's 登録番号 from _company.toml
    assert "お振込先" in text


def test_tax_is_rounded_down_once_per_rate_not_per_line(app, login, invoices):
    # Per line, 10% of ¥105 is ¥10.5 and 8% of ¥199 is ¥15.92: rounding each line would give ¥30 + ¥30.
    lines = [("部品A", "1", "105", "10%")] * 3 + [("食品B", "1", "199", "8%")] * 2
    record_id = create_invoice(login("plain"), invoices, lines=lines)
    text = text_of(stored_path(app, pdf_value(app, record_id, invoices)))
    flat = compact(text)
    assert "10%対象¥315¥31" in flat  # 31.5 → 31
    assert "8%対象※¥398¥31" in flat  # 31.84 → 31
    assert "合計(税込)¥775" in flat  # 713 + 62
    assert "¥773" not in flat


def test_amount_is_quantity_times_unit_price_unless_given(app, users, invoices):
    from webapp.databases.operations import new_record
    from webapp.documents.operations import pdf_bytes

    f = {name: str(fid) for name, fid in invoices["fields"].items()}
    with app.app_context():
        database = db.session.get(Field, invoices["fields"]["請求書PDF"]).database
        record = new_record(database, {f["請求番号"]: "INV-9"}, [
            {f["品名"]: "値引き", f["金額"]: -1000, f["税率"]: "10%"},
            {f["品名"]: "作業費", f["数量"]: 1.5, f["単価"]: 3000},  # no 税率: the template's 10%
            {f["品名"]: "(摘要のみの行)"},
        ], None)
        db.session.commit()
        text = text_of(pdf_bytes(record, db.session.get(Field, invoices["fields"]["請求書PDF"])))
    assert "-¥1,000" in text
    assert re.search(r"作業費\s+1\.5\s+¥3,000\s+¥4,500\s+10%", text)
    assert "(摘要のみの行)" in text
    assert "¥3,500" in text and "¥350" in text and "¥3,850" in text


def test_addressee_honorifics(app):
    from types import SimpleNamespace

    from webapp.databases.fieldtypes import kind_of
    from webapp.documents.content import build_content
    from webapp.documents.document_templates import load_template

    def field(i, name):
        return SimpleNamespace(id=i, key=str(i), name=name, field_type="text", kind=kind_of("text"))

    header = [field(1, "取引先"), field(2, "部署名"), field(3, "担当者名")]
    with app.app_context():
        template = load_template("invoice")

    def lines(company="", department="", person=""):
        data = {"1": company, "2": department, "3": person}
        return build_content(template, header, [], data, [], 1).addressee

    assert lines("株式会社青葉商事") == ["株式会社青葉商事 御中"]
    assert lines("山田 太郎") == ["山田 太郎 様"]
    assert lines("株式会社青葉商事", "経理部") == ["株式会社青葉商事", "経理部 御中"]
    assert lines("株式会社青葉商事", "経理部", "佐藤 花子") == ["株式会社青葉商事", "経理部 佐藤 花子 様"]
    assert lines("青葉商事 御中") == ["青葉商事 御中"]  # typed with its honorific: not doubled


def test_missing_fields_print_blank_and_never_fail(app, login, users):
    from webapp.databases.operations import FieldSpec, add_field, create_database, new_record
    from webapp.documents.operations import ensure_pdf

    with app.app_context():
        database = create_database("メモ", "")
        target = add_field(database, FieldSpec("帳票", "autofile"))  # no template chosen: 請求書
        record = new_record(database, {}, [], users["admin"])
        db.session.commit()
        path = ensure_pdf(record, target)
        text = text_of(path)
        assert path.name.endswith(".pdf")
        assert "請 求 書" in text and "¥0" in text
        assert db.session.get(Record, record.id).data[target.key]["name"] == f"請求書_{record.id}.pdf"


def test_japanese_font_is_embedded_as_a_subset(app, login, invoices):
    record_id = create_invoice(login("plain"), invoices)
    reader = PdfReader(stored_path(app, pdf_value(app, record_id, invoices)))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert fonts
    for font in fonts.values():
        font = font.get_object()
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, f"{font['/BaseFont']} is not embedded"
        assert re.fullmatch(r"/[A-Z]{6}\+IPAex\w+", font["/BaseFont"])  # a subset of IPAex


def test_delivery_note_template(app, login, invoices):
    with app.app_context():
        db.session.get(Field, invoices["fields"]["請求書PDF"]).settings = {"template": "delivery_note"}
        db.session.commit()
    record_id = create_invoice(login("plain"), invoices)
    value = pdf_value(app, record_id, invoices)
    assert value["name"] == "納品書_INV-2026-0042.pdf"
    text = text_of(stored_path(app, value))
    assert "納 品 書" in text and "受領印" in text and "下記のとおり納品いたしました" in text
    assert "トナーカートリッジ" in text and "¥70,491" in compact(text)
    assert "お振込先" not in text


def test_long_invoices_continue_on_further_pages(app, login, invoices):
    lines = [(f"商品{i:02d}", "1", "100", "10%") for i in range(1, 61)]
    record_id = create_invoice(login("plain"), invoices, lines=lines)
    reader = PdfReader(stored_path(app, pdf_value(app, record_id, invoices)))
    assert len(reader.pages) >= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "商品01" in text and "商品60" in text and "(続き)" in text
    assert "¥6,600" in compact(reader.pages[-1].extract_text())  # the totals on the last page


# ---- regeneration ---------------------------------------------------------------------------------------


def test_changing_a_field_the_pdf_uses_regenerates_it(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    before = pdf_value(app, record_id, invoices)
    response = user.post(f"/records/{record_id}/edit", data=invoice_form(invoices, **{attr(invoices, "取引先"): "有限会社桜物産"}))
    assert response.status_code == 302
    after = pdf_value(app, record_id, invoices)
    assert after["fingerprint"] != before["fingerprint"]
    assert "有限会社桜物産御中" in compact(text_of(stored_path(app, after)))
    assert not stored_path(app, before).exists()  # the old file is gone once the save committed


def test_changing_a_detail_line_regenerates_it(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    before = pdf_value(app, record_id, invoices)
    changed = [LINES[0], LINES[1], ("保守サービス(月額)", "2", "30000", "10%")]
    assert user.post(f"/records/{record_id}/edit", data=invoice_form(invoices, lines=changed)).status_code == 302
    after = pdf_value(app, record_id, invoices)
    assert after["fingerprint"] != before["fingerprint"]
    assert "¥103,491" in compact(text_of(stored_path(app, after)))  # 85,600 + 8,560 tax; 8,640 + 691


def test_changing_an_unrelated_field_keeps_the_pdf(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    before = pdf_value(app, record_id, invoices)
    mtime = stored_path(app, before).stat().st_mtime_ns
    response = user.post(f"/records/{record_id}/edit", data=invoice_form(invoices, **{attr(invoices, "連携ステータス"): "連携済"}))
    assert response.status_code == 302
    assert pdf_value(app, record_id, invoices) == before
    assert stored_path(app, before).stat().st_mtime_ns == mtime


def test_regenerate_button(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    value = pdf_value(app, record_id, invoices)
    stored_path(app, value).unlink()  # e.g. lost with a restored backup
    page = user.get(f"/records/{record_id}").get_data(as_text=True)
    assert "再生成" in page
    response = user.post(f"/records/{record_id}/documents/{invoices['fields']['請求書PDF']}/regenerate",
                         follow_redirects=True)
    assert "「請求書PDF」を再生成しました(INV-2026-0042.pdf)" in response.get_data(as_text=True)
    assert stored_path(app, pdf_value(app, record_id, invoices)).is_file()


def test_regenerate_needs_a_login_and_a_post(app, client, login, invoices):
    record_id = create_invoice(login("plain"), invoices)
    url = f"/records/{record_id}/documents/{invoices['fields']['請求書PDF']}/regenerate"
    assert client.post(url).status_code in (302, 400)  # login page, or the CSRF refusal
    assert login("plain").get(url).status_code == 405


def test_record_page_views_and_downloads_the_pdf(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    field_id = invoices["fields"]["請求書PDF"]
    page = user.get(f"/records/{record_id}").get_data(as_text=True)
    assert "INV-2026-0042.pdf" in page and "PDFを表示" in page and "ダウンロード" in page
    assert "最新の内容です" in page
    shown = user.get(f"/records/{record_id}/documents/{field_id}?inline=1")
    assert shown.status_code == 200 and shown.mimetype == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert shown.data.startswith(b"%PDF")
    downloaded = user.get(f"/records/{record_id}/documents/{field_id}")
    assert downloaded.headers["Content-Disposition"].startswith("attachment")
    assert "INV-2026-0042.pdf" in downloaded.headers["Content-Disposition"]


def test_a_record_inserted_without_a_pdf_gets_it_when_opened(app, login, invoices, users):
    from webapp.databases.operations import bulk_insert_records

    f = {name: str(fid) for name, fid in invoices["fields"].items()}
    with app.app_context():
        database = db.session.get(Field, invoices["fields"]["請求書PDF"]).database
        bulk_insert_records(database, [({f["請求番号"]: "INV-BULK-1", f["取引先"]: "株式会社富士工業"},
                                         [{f["品名"]: "配送料", f["数量"]: 1, f["単価"]: 1500, f["税率"]: "10%"}])])
        db.session.commit()
        record_id = db.session.execute(select(Record.id).where(Record.database_id == database.id)).scalar_one()
    user = login("plain")
    assert "表示・ダウンロード時に作成します" in user.get(f"/records/{record_id}").get_data(as_text=True)
    response = user.get(f"/records/{record_id}/documents/{invoices['fields']['請求書PDF']}?inline=1")
    assert response.status_code == 200
    assert "株式会社富士工業御中" in compact(text_of(response.data))
    assert pdf_value(app, record_id, invoices)["name"] == "INV-BULK-1.pdf"


def test_run_engine_api_ensure_pdf_and_pdf_bytes(app, login, invoices):
    from webapp.documents.operations import ensure_pdf, pdf_bytes

    record_id = create_invoice(login("plain"), invoices)
    with app.app_context():
        record = db.session.get(Record, record_id)
        target = db.session.get(Field, invoices["fields"]["請求書PDF"])
        first = ensure_pdf(record, target)
        mtime = first.stat().st_mtime_ns
        assert ensure_pdf(record, target) == first and first.stat().st_mtime_ns == mtime  # current: not redone
        assert pdf_bytes(record, target) == first.read_bytes()

        data = dict(record.data)
        data[str(invoices["fields"]["件名"])] = "5月分 ご請求"
        record.data = data  # changed outside the form, as a run's レコード更新 writes records
        db.session.commit()
        second = ensure_pdf(record, target)
        assert second != first and not first.exists()
        assert "5月分 ご請求" in text_of(second)


def test_editing_the_template_file_regenerates_pdfs_on_next_use(app, login, invoices, tmp_path):
    from webapp.documents.operations import document_state, ensure_pdf

    record_id = create_invoice(login("plain"), invoices)
    own = tmp_path / "document_templates"
    own.mkdir()
    app.config["DOCUMENT_TEMPLATES_DIR"] = str(own)
    text = (BUNDLED_TEMPLATES / "invoice.toml").read_text(encoding="utf-8")
    (own / "invoice.toml").write_text(text.replace('title = "請求書"', 'title = "御請求書"'), encoding="utf-8")
    with app.app_context():
        record = db.session.get(Record, record_id)
        target = db.session.get(Field, invoices["fields"]["請求書PDF"])
        assert document_state(record, target).status == "stale"
        assert "御請求書" in compact(text_of(ensure_pdf(record, target)))
        assert document_state(db.session.get(Record, record_id), target).status == "current"


def test_a_broken_template_never_blocks_saving_the_record(app, login, invoices, tmp_path):
    own = tmp_path / "document_templates"
    own.mkdir()
    app.config["DOCUMENT_TEMPLATES_DIR"] = str(own)
    text = (BUNDLED_TEMPLATES / "invoice.toml").read_text(encoding="utf-8")
    (own / "invoice.toml").write_text(text + '\n[issuer]\nregistration_number = "1234"\n', encoding="utf-8")
    user = login("plain")
    response = user.post(f"/dbs/{invoices['database']}/records/new", data=invoice_form(invoices), follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "レコードを保存しました" in body
    assert "「請求書PDF」を生成できませんでした" in body and "登録番号" in body and "T」+13桁" in body
    with app.app_context():
        record = db.session.execute(select(Record)).scalars().one()
        assert record.data[str(invoices["fields"]["請求番号"])] == "INV-2026-0042"
        assert record.data.get(str(invoices["fields"]["請求書PDF"])) is None


def test_a_missing_font_is_explained(app, login, invoices, monkeypatch):
    monkeypatch.setenv("PDF_FONT_GOTHIC", "/nonexistent/ipaexg.ttf")
    body = login("plain").post(f"/dbs/{invoices['database']}/records/new", data=invoice_form(invoices),
                               follow_redirects=True).get_data(as_text=True)
    assert "レコードを保存しました" in body
    assert "PDF_FONT_GOTHIC に設定されたフォントファイルがありません" in body


def test_deleting_the_record_removes_its_pdf(app, login, invoices):
    user = login("plain")
    record_id = create_invoice(user, invoices)
    path = stored_path(app, pdf_value(app, record_id, invoices))
    assert user.post(f"/records/{record_id}/delete").status_code == 302
    assert not path.exists()


# ---- field settings ---------------------------------------------------------------------------------------


def test_field_form_offers_the_templates_and_stores_the_choice(app, login, invoices):
    editor = login("editor")
    url = f"/dbs/{invoices['database']}/fields/new"
    page = editor.get(url).get_data(as_text=True)
    assert "帳票テンプレート" in page and ">請求書<" in page and ">納品書<" in page
    response = editor.post(url, data={"name": "納品書PDF", "field_type": "autofile", "placement": "header",
                                      "origin": "input", "template": "delivery_note"})
    assert response.status_code == 302
    with app.app_context():
        created = db.session.execute(select(Field).where(Field.name == "納品書PDF")).scalar_one()
        assert created.settings == {"template": "delivery_note"}
        field_id = created.id
    edit_url = f"/dbs/{invoices['database']}/fields/{field_id}/edit"
    assert re.search(r'<option selected value="delivery_note">', editor.get(edit_url).get_data(as_text=True))
    body = editor.post(edit_url, data={"name": "納品書PDF", "origin": "input", "template": "nonexistent"}).get_data(as_text=True)
    assert "帳票テンプレートを選んでください。" in body
    with app.app_context():
        assert db.session.get(Field, field_id).settings == {"template": "delivery_note"}


def test_bulk_generation_runs_as_a_background_job(app, login, invoices):
    from redis import Redis
    from rq import Queue, SimpleWorker

    from webapp.databases.operations import bulk_insert_records

    f = {name: str(fid) for name, fid in invoices["fields"].items()}
    with app.app_context():
        database = db.session.get(Field, invoices["fields"]["請求書PDF"]).database
        bulk_insert_records(database, [
            ({f["請求番号"]: f"INV-{i:03d}", f["取引先"]: "株式会社光電機"},
             [{f["品名"]: "ボールペン 10本入", f["数量"]: i, f["単価"]: 980, f["税率"]: "10%"}])
            for i in range(1, 26)
        ])
        db.session.commit()
    url = f"/dbs/{invoices['database']}/fields/{invoices['fields']['請求書PDF']}/documents/generate"
    assert login("plain").post(url).status_code == 403  # needs DB設定
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    queue.empty()
    try:
        editor = login("editor")
        first = editor.post(url, follow_redirects=True).get_data(as_text=True)
        assert "バックグラウンドで開始しました" in first
        assert "既に実行待ちまたは実行中です" in editor.post(url, follow_redirects=True).get_data(as_text=True)
        assert queue.count == 1
        with app.app_context():
            SimpleWorker([queue], connection=connection).work(burst=True)
            records = db.session.execute(select(Record).where(Record.database_id == invoices["database"])).scalars().all()
            values = [r.data.get(f["請求書PDF"]) for r in records]
        assert len(values) == 25 and all(v and stored_path(app, v).is_file() for v in values)
        assert {v["name"] for v in values} == {f"INV-{i:03d}.pdf" for i in range(1, 26)}
    finally:
        queue.delete(delete_jobs=True)


def test_a_pdf_job_never_overwrites_an_edit_made_meanwhile(app, users, invoices, monkeypatch):
    from webapp.databases.operations import bulk_insert_records
    from webapp.documents import operations

    f = {name: str(fid) for name, fid in invoices["fields"].items()}
    with app.app_context():
        database = db.session.get(Field, invoices["fields"]["請求書PDF"]).database
        bulk_insert_records(database, [({f["請求番号"]: "INV-1", f["取引先"]: "株式会社朝日印刷"}, [])])
        db.session.commit()
        record_id = db.session.execute(select(Record.id)).scalar_one()
    original = operations.Generator.generate

    def generate_while_someone_saves(self, *args):
        value = original(self, *args)
        with db.engine.begin() as connection:  # another request saves the record during rendering
            data = connection.execute(select(Record.data).where(Record.id == record_id)).scalar_one()
            connection.execute(update(Record).where(Record.id == record_id)
                               .values(data={**data, f["取引先"]: "株式会社朝日オフセット印刷"}))
        return value

    monkeypatch.setattr(operations.Generator, "generate", generate_while_someone_saves)
    with app.app_context():
        result = operations.generate_missing(invoices["fields"]["請求書PDF"])
        record = db.session.get(Record, record_id)
        assert record.data[f["取引先"]] == "株式会社朝日オフセット印刷"  # the edit survived
        assert record.data.get(f["請求書PDF"]) is None  # the outdated PDF was not stored …
    assert (result.generated, result.skipped) == (0, 1)
    files = Path(app.config["FILES_DIR"])
    assert not any(files.rglob("*.pdf")) if files.exists() else True  # … and its file was removed


# ---- demo -----------------------------------------------------------------------------------------------


def test_demo_invoices_use_the_template_and_totals_agree(app):
    from webapp.databases.models import Database
    from webapp.demo import seed_demo
    from webapp.documents.content import yen
    from webapp.documents.operations import ensure_pdf

    with app.app_context():
        assert seed_demo(customer_count=10, invoice_count=12, admin_password="Tokyo-pass-2026")
        db.session.commit()
        files = Path(app.config["FILES_DIR"])
        assert not files.exists() or not any(files.rglob("*.pdf"))  # the seed stays fast: PDFs come on first use
        database = db.session.execute(select(Database).where(Database.name == "請求書")).scalar_one()
        target = next(f for f in database.fields if f.name == "請求書PDF")
        amount = next(f for f in database.fields if f.name == "請求金額")
        assert target.settings == {"template": "invoice"}
        for record in db.session.execute(select(Record).where(Record.database_id == database.id).limit(5)).scalars():
            text = compact(text_of(ensure_pdf(record, target)))
            assert f"合計(税込){yen(record.data[amount.key])}" in text


def test_bundled_templates_are_valid(app):
    from webapp.documents.document_templates import REGISTRATION_NUMBER, available_templates

    with app.app_context():
        templates = {t.key: t for t in available_templates()}
    assert set(templates) >= {"invoice", "delivery_note"}
    assert templates["invoice"].name == "請求書" and templates["delivery_note"].name == "納品書"
    assert REGISTRATION_NUMBER.fullmatch(templates["invoice"].issuer["registration_number"])
    assert templates["invoice"].totals["rounding"] == "down"
