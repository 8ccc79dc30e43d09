"""Run outcomes said truthfully: all failed is エラー (never 「一部」), a whole-file rejection is said once with what
to change, and the run detail lists each record's error once. Rejections come from the real emulator."""

from __future__ import annotations

import re

from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    INVOICE_SETTING,
    PDF_SETTING,
    execute,
    field_named,
    menu_named,
    records_of,
    setting_named,
)
from sqlalchemy import select

from webapp.extensions import db
from webapp.mail.models import OutboxMail
from webapp.runs import export
from webapp.runs.models import CallStatus, RunRecord
from webapp.runs.operations import start_run


def attach(menu_name: str, setting_name: str) -> None:
    from webapp.integrations.operations import set_menu_integrations

    menu = menu_named(menu_name)
    set_menu_integrations(menu, [setting_named(setting_name).id])
    db.session.commit()


def run_now(setting_name: str, menu_name: str):
    run = start_run(setting_named(setting_name), menu_named(menu_name), executor_id=None, enqueue=False)
    return execute(run.id)


def mail_of(run_id: int) -> OutboxMail:
    return db.session.execute(select(OutboxMail).where(OutboxMail.run_id == run_id)).scalar_one()


def set_every_customer(field_name: str, value: str) -> None:
    key = field_named("顧客", field_name).key
    for record in records_of("顧客"):
        record.data = {**record.data, key: value}
    db.session.commit()


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_column_count_rejection_is_error_said_once_with_what_to_change(app, demo, login):
    """顧客一覧 has 10 columns (連携ステータス too); 楽楽明細's 取込設定ID 1 expects 9: every row is refused alike."""
    with app.app_context():
        attach("顧客一覧", CUSTOMER_SETTING)
        run = run_now(CUSTOMER_SETTING, "顧客一覧")
        assert run.status == "error" and run.ok_count == 0 and run.error_count == 30
        call = run.calls[0]
        assert call.status == CallStatus.FAILED and call.status_label == "エラー"
        assert len(call.row_errors) == 30  # 楽楽明細 refused every row
        message = run.error_message
        for part in ("メニュー「顧客一覧」の表示項目は10列", "取込設定ID 1", "9列", "1列減らす", "10列の取込フォーマット設定"):
            assert part in message, message
        assert "一部" not in message
        mail = mail_of(run.id)
        assert "エラー" in mail.subject and "一部" not in mail.subject + mail.body
        assert mail.body.count("9列です") == 1
        assert re.search(r"開始: \d{4}/\d\d/\d\d \d\d:\d\d JST", mail.body)
        run_id = run.id
    detail = login("user").get(f"/runs/{run_id}").get_data(as_text=True)
    text = visible_text(detail.split("<h2>レポートメール</h2>")[0])
    assert text.count("列の数が合わないため") == 1  # once, not per call, record or row
    assert "一部" not in text
    assert "30件: 取込エラー" in text


def test_every_row_refused_for_one_reason_is_said_once(app, demo, login):
    with app.app_context():
        set_every_customer("郵便番号", "郵便番号ではない")
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "error" and run.calls[0].status == CallStatus.FAILED
        assert run.error_message.startswith("この回の30件すべてが同じ理由で取り込まれませんでした: 郵便番号: ")
        run_id = run.id
    detail = login("user").get(f"/runs/{run_id}").get_data(as_text=True).split("<h2>レポートメール")[0]
    # Once on the page; the folded 通信ログ keeps 楽楽明細's raw answer with its 30 row errors.
    outside_logs = visible_text(re.sub(r"<details>.*?</details>", "", detail, flags=re.S))
    assert outside_logs.count("半角数字7桁") == 1 and "一部" not in outside_logs


def test_unknown_import_setting_id_is_refused_once_and_names_where_to_find_the_id(app, demo, login, monkeypatch):
    # Ten records a call: three calls, the first refused, the two others not sent for the same reason.
    real_pack = export.pack
    monkeypatch.setattr(export, "pack", lambda lines, header, **kw: real_pack(lines, header, max_rows=10))
    with app.app_context():
        setting_named(CUSTOMER_SETTING).import_setting_id = 99
        db.session.commit()
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "error" and [c.status for c in run.calls] == [CallStatus.FAILED] * 3
        assert len(demo.imports()) == 0
        assert "取込設定ID 99" in run.error_message and "顧客CSVの取込フォーマット設定" in run.error_message
        assert "何も取り込まれていません" in run.error_message
        assert all(r.message == "" for r in db.session.execute(
            select(RunRecord).where(RunRecord.run_id == run.id)).scalars())
        run_id = run.id
    detail = visible_text(login("user").get(f"/runs/{run_id}").get_data(as_text=True).split("<h2>レポートメール")[0])
    assert detail.count("取込設定ID 99") == 1
    assert "2回目の送信の10件: 未送信" in detail and "3回目の送信の10件: 未送信" in detail


def test_unreadable_encoding_is_refused_once_without_calling_it_partial(app, demo, login):
    demo.set_faults(refuse_csv_encoding=True)
    with app.app_context():
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "error" and run.calls[0].error_code == "E_FILE"
        assert "Windows-31J" in run.error_message and "サポート" in run.error_message
        assert "一部" not in run.error_message
        status = field_named("顧客", "連携ステータス")
        assert all(r.data[status.key] == "未連携" for r in records_of("顧客"))  # no レコード更新
        run_id = run.id
    detail = visible_text(login("user").get(f"/runs/{run_id}").get_data(as_text=True).split("<h2>レポートメール")[0])
    assert detail.count("文字コードの違い") == 1 and "一部" not in detail


def test_every_record_refused_for_its_own_reason_is_error_not_partial(app, demo, login):
    """Invoices whose customers were never sent: each document is refused with its own 顧客コード."""
    with app.app_context():
        run = run_now(INVOICE_SETTING, INVOICE_MENU)
        assert run.status == "error" and run.ok_count == 0
        assert run.calls[0].status == CallStatus.FAILED
        assert f"対象{run.record_count}件すべて" in run.error_message and "一部" not in run.error_message
        assert "一部" not in mail_of(run.id).subject + mail_of(run.id).body
        run_id, count = run.id, run.record_count
    detail = login("user").get(f"/runs/{run_id}").get_data(as_text=True)
    assert "一部" not in visible_text(detail)
    problems = detail.split('id="run-problems"')[1].split("<h2>レポートメール")[0]
    assert problems.count("の顧客が登録されていません") == count  # each record's own reason, listed once
    calls = detail.split("<h2>API呼び出し</h2>")[1].split('id="run-problems"')[0].split("通信ログ")[0]
    assert "の顧客が登録されていません" not in calls  # not a second time with the call


def test_nothing_sendable_is_error_and_says_why(app, demo):
    with app.app_context():
        set_every_customer("顧客名", "株式会社🍣")
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "error" and run.calls == []
        assert "送信できるレコードがありませんでした" in run.error_message and "一部" not in run.error_message


def test_partial_run_says_how_many_of_how_many(app, demo):
    with app.app_context():
        record = records_of("顧客")[0]
        record.data = {**record.data, field_named("顧客", "顧客名").key: "株式会社🍣"}
        db.session.commit()
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "partial"
        assert "対象30件のうち1件" in run.error_message


def test_pdf_only_run_reports_pdfs_not_csv_lines(app, demo, login):
    with app.app_context():
        assert run_now(CUSTOMER_SETTING, CUSTOMER_MENU).status == "completed"
        run = run_now(PDF_SETTING, INVOICE_MENU)
        assert run.status == "completed", run.error_message
        assert run.row_count == 0 and run.calls[0].row_count == 0
        run_id, pdfs = run.id, run.record_count
    detail = visible_text(login("user").get(f"/runs/{run_id}").get_data(as_text=True))
    assert f"PDF {pdfs}件(CSVなし)" in detail
    assert not re.search(r"CSV \d+行", detail)
    with app.app_context():
        listing = login("user").get(f"/menus/{menu_named(INVOICE_MENU).id}/runs").get_data(as_text=True)
    assert '<td class="num">—</td>' in listing and '<td class="num">0</td>' not in listing  # its CSV行数


def test_record_errors_are_listed_once_and_paged(app, demo, login):
    """60 unencodable customers: 60 problems, 50 on the first page, the rest on the second (htmx fragment)."""
    from run_helpers import add_customers

    with app.app_context():
        add_customers(60, address2="🍣ビル")
        run = run_now(CUSTOMER_SETTING, CUSTOMER_MENU)
        assert run.status == "partial" and run.error_count == 60
        run_id = run.id
    user = login("user")
    first = user.get(f"/runs/{run_id}").get_data(as_text=True).split("<h2>レポートメール")[0]
    assert first.count("Windows-31J(Shift_JIS)で送信できません") == 50
    assert "エラーになったレコード(60件)" in first and "1 / 2ページ" in first
    second = user.get(f"/runs/{run_id}?problems=2", headers={"HX-Request": "true", "HX-Target": "run-problems"})
    fragment = second.get_data(as_text=True)
    assert fragment.count("Windows-31J(Shift_JIS)で送信できません") == 10 and "<html" not in fragment
    assert "2 / 2ページ" in fragment


def test_request_parameters_and_responses_read_as_japanese_and_times_name_their_zone(app, demo, login):
    with app.app_context():
        setting_named(CUSTOMER_SETTING).import_setting_id = 99
        db.session.commit()
        start = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None,
                          memo="11月分 顧客", enqueue=False)
        run = execute(start.id)
        run_id = run.id
    detail = login("user").get(f"/runs/{run_id}").get_data(as_text=True)
    assert "\\u" not in detail
    assert "&#34;importProcessName&#34;: &#34;11月分 顧客&#34;" in detail or '"importProcessName": "11月分 顧客"' in detail
    assert "取込設定が見つかりません" in detail  # the raw answer, readable
    assert re.search(r"開始</dt><dd>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d JST", detail)
    assert re.search(r"送信 \d{4}/\d\d/\d\d \d\d:\d\d:\d\d JST", detail)
    assert " UTC" not in detail


def test_progress_in_the_dialog_carries_a_heading_that_follows_the_run(app, demo, login):
    with app.app_context():
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        run_id = run.id
    user = login("user")
    waiting = user.get(f"/runs/{run_id}/progress?heading=1").get_data(as_text=True)
    assert "実行を受け付けました" in waiting and "heading=1" in waiting
    with app.app_context():
        execute(run_id)
    done = user.get(f"/runs/{run_id}/progress?heading=1").get_data(as_text=True)
    assert "実行が完了しました" in done and "実行を受け付けました" not in done
    assert "<h2" not in user.get(f"/runs/{run_id}/progress").get_data(as_text=True)
