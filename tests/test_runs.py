"""Running an integration from the record list against the real emulator: data, state, updates, mail, screens."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    INVOICE_SETTING,
    execute,
    field_named,
    latest_run,
    menu_named,
    records_of,
    run_url,
    setting_named,
)
from sqlalchemy import select

from webapp.core.clock import as_utc
from webapp.extensions import db
from webapp.mail.models import OutboxMail
from webapp.runs.models import CallStatus, RecordStatus, Run, RunRecord

HTMX = {"HX-Request": "true", "HX-Target": "run-dialog"}


def start(app, login, menu, setting, **form):
    user = login("user")
    response = user.post(run_url(app, menu, setting, "run"), data=form, headers=HTMX)
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        return latest_run().id, response.get_data(as_text=True), user


def customers_in_meisai(app, login):
    """Documents need their customers in 楽楽明細 first, as in real use."""
    run_id, _, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        assert execute(run_id).status == "completed"


def test_customer_run_end_to_end(app, demo, login, smtp_server):
    run_id, body, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING, memo="11月 顧客登録")
    assert "実行を受け付けました" in body and "待機中" in body  # the page answers at once
    with app.app_context():
        run = execute(run_id)
        assert run.status == "completed", run.error_message
        assert (run.record_count, run.ok_count, run.call_count) == (30, 30, 1)
        customers = {c.code: c for c in demo.client().search_customers("C000")}
        assert len(customers) == 30
        first = records_of("顧客")[0]
        name_field = field_named("顧客", "顧客名")
        assert customers["C00001"].name == first.data[name_field.key]
        assert customers["C00001"].attributes["departmentName"] == first.data[field_named("顧客", "部署名").key]
        # レコード更新: 連携ステータス=連携済, 連携日時 = the run's start in the configured time zone.
        status_field, time_field = field_named("顧客", "連携ステータス"), field_named("顧客", "連携日時")
        started = run.started_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
        for record in records_of("顧客"):
            assert record.data[status_field.key] == "連携済"
            assert record.data[time_field.key] == started
        imports = demo.imports()
        assert imports[-1]["params"]["importProcessName"] == "11月 顧客登録"
    # Report mail to the executor, through real SMTP.
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["to"] == ["user@example.co.jp"]
    assert "楽楽明細へ顧客を連携" in mail["subject"] and "完了" in mail["subject"]
    assert "成功 30件" in mail["body"] and f"/runs/{run_id}" in mail["body"]
    # Status screens.
    detail = user.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "完了" in detail and "importId" in detail and "営業 花子" in detail and "11月 顧客登録" in detail
    assert demo.token not in detail
    with app.app_context():
        menu_id = menu_named(CUSTOMER_MENU).id
    listing = user.get(f"/menus/{menu_id}/runs").get_data(as_text=True)
    assert "楽楽明細へ顧客を連携" in listing and "完了" in listing and "200" in listing


def test_sent_csv_is_downloadable_and_matches_what_the_emulator_received(app, demo, login):
    run_id, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        execute(run_id)
    download = user.get(f"/runs/{run_id}/calls/1/files/0")
    assert download.status_code == 200
    sent = download.data
    assert sent.startswith('"顧客コード","顧客名"'.encode("cp932"))
    assert sent.count(b"\r\n") == 31 and b"\n" not in sent.replace(b"\r\n", b"")
    received = demo.imports()[-1]
    assert received["files"][0]["size"] == len(sent)


def test_invoice_run_issues_documents_with_detail_lines(app, demo, login):
    customers_in_meisai(app, login)
    run_id, _, _ = start(app, login, INVOICE_MENU, INVOICE_SETTING)
    with app.app_context():
        run = execute(run_id)
        assert run.status == "completed", run.error_message
        documents = demo.current_documents()
        invoices = [r for r in records_of("請求書") if r.data[field_named("請求書", "連携ステータス").key] == "連携済"]
        number = field_named("請求書", "請求番号")
        sent = [r for r in records_of("請求書") if r.id in {rr.record_id for rr in db.session.execute(
            select(RunRecord).where(RunRecord.run_id == run_id)).scalars()}]
        assert len(documents) == len(sent) == run.record_count
        for record in sent:
            document = documents[record.data[number.key]]
            assert document["state"] == "発行済"  # 承認スキップ + 即時発行
            assert len(document["lines"]) == len(record.details)
            assert record in invoices
        params = demo.imports()[-1]["params"]
        assert params["isNewIssues"] == 1 and params["isImmApproval"] == 1 and params["pdfIssueType"] == 0


def test_scheduled_issue_needs_a_future_date_and_sends_it(app, demo, login):
    customers_in_meisai(app, login)
    with app.app_context():
        setting = setting_named(INVOICE_SETTING)
        setting.issue_method = "scheduled"
        db.session.commit()
    user = login("user")
    url = run_url(app, INVOICE_MENU, INVOICE_SETTING, "run")
    dialog = user.get(run_url(app, INVOICE_MENU, INVOICE_SETTING, "dialog")).get_data(as_text=True)
    assert "予約発行日時" in dialog
    body = user.post(url, data={"publication_date": ""}, headers=HTMX).get_data(as_text=True)
    assert "予約発行日時を入力してください" in body
    past = (datetime.now(ZoneInfo("Asia/Tokyo")) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    body = user.post(url, data={"publication_date": past}, headers=HTMX).get_data(as_text=True)
    assert "未来の日時を入力してください" in body
    with app.app_context():
        assert db.session.query(Run).count() == 1  # only the customer run: nothing created, nothing sent
    future = (datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(days=2)).replace(second=0, microsecond=0)
    user.post(url, data={"publication_date": future.strftime("%Y-%m-%dT%H:%M")}, headers=HTMX)
    with app.app_context():
        run = execute(latest_run().id)
        assert run.status == "completed"
        params = demo.imports()[-1]["params"]
        assert params["pdfIssueType"] == 1
        assert params["publicationDate"] == future.strftime("%Y-%m-%d %H:%M:00")
        assert {d["state"] for d in demo.current_documents().values()} == {"予約"}


def test_replacement_run_replaces_documents_with_flags(app, demo, login):
    customers_in_meisai(app, login)
    run_id, _, _ = start(app, login, INVOICE_MENU, INVOICE_SETTING)
    with app.app_context():
        assert execute(run_id).status == "completed"
        sent_ids = [rr.record_id for rr in db.session.execute(select(RunRecord).where(RunRecord.run_id == run_id)).scalars()]
        # The same invoices again, as 差替 with mail and FAX (records are back to 未連携 so the menu shows them).
        status_field = field_named("請求書", "連携ステータス")
        subject = field_named("請求書", "件名")
        for record in records_of("請求書"):
            if record.id in sent_ids:
                record.data = {**record.data, status_field.key: "未連携", subject.key: "差替後の件名"}
        setting = setting_named(INVOICE_SETTING)
        setting.import_method, setting.replace_notify_mail, setting.replace_fax = "replace", True, True
        db.session.commit()
    run_id, _, _ = start(app, login, INVOICE_MENU, INVOICE_SETTING)
    with app.app_context():
        run = execute(run_id)
        assert run.status == "completed", run.error_message
        params = demo.imports()[-1]["params"]
        assert len(demo.imports()) == 3
        assert (params["isNewIssues"], params["isSendMail"], params["isSendFax"], params["isPostReplaceBill"]) == (2, 1, 1, 0)
        current = demo.current_documents()
        assert all(d["header"]["件名"] == "差替後の件名" for d in current.values())
        replaced = [d for d in demo.documents() if d["replacedAt"] is not None]
        assert len(replaced) == len(current)


def test_second_run_while_one_is_queued_is_refused(app, demo, login):
    first, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    body = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={}, headers=HTMX).get_data(as_text=True)
    assert "実行待ちまたは実行中です" in body
    with app.app_context():
        assert db.session.query(Run).count() == 1
        execute(first)
        # Once finished, the same integration can run again (here: nothing left to send).
    body = user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={}, headers=HTMX).get_data(as_text=True)
    assert "送信するレコードがありません" in body


def test_run_sends_what_the_menu_and_search_show(app, demo, login):
    user = login("user")
    user.post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={"q": "C0001"}, headers=HTMX)
    with app.app_context():
        run = execute(latest_run().id)
        assert run.keyword == "C0001"
        assert run.record_count == 10  # C00010 … C00019
        assert {c.code for c in demo.client().search_customers("C")} == {f"C{i:05d}" for i in range(10, 20)}


def test_preview_shows_the_exact_csv_without_sending(app, demo, login):
    with app.app_context():
        record = records_of("顧客")[0]
        address = field_named("顧客", "住所1")
        record.data = {**record.data, address.key: "東京都𠮷野町"}
        db.session.commit()
        bad_id = record.id
    body = login("user").post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "preview"), data={}, headers=HTMX).get_data(as_text=True)
    assert "プレビュー(送信はしていません)" in body
    assert "対象 <strong>30</strong>件" in body and "CSV <strong>29</strong>行" in body
    assert "API呼び出し <strong>1</strong>回" in body
    assert "&#34;顧客コード&#34;,&#34;顧客名&#34;" in body or '"顧客コード","顧客名"' in body
    assert f"レコードNo.{bad_id}" in body and "𠮷" in body and "Windows-31J" in body
    assert demo.imports() == []


def test_unencodable_record_is_left_out_and_reported(app, demo, login):
    with app.app_context():
        record = records_of("顧客")[1]
        name = field_named("顧客", "顧客名")
        record.data = {**record.data, name.key: "株式会社🍣寿司"}
        db.session.commit()
        bad_id, code = record.id, record.data[field_named("顧客", "顧客コード").key]
    run_id, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        run = execute(run_id)
        assert run.status == "partial"
        assert (run.ok_count, run.error_count) == (29, 1)
        problem = db.session.execute(select(RunRecord).where(RunRecord.run_id == run_id, RunRecord.record_id == bad_id)).scalar_one()
        assert problem.status == RecordStatus.INVALID and "🍣" in problem.message
        assert code not in {c.code for c in demo.client().search_customers("C")}
        # Not updated: it was not sent.
        assert db.session.get(type(record), bad_id).data[field_named("顧客", "連携ステータス").key] == "未連携"
    detail = user.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "一部エラー" in detail and "送信対象外" in detail


def test_menu_without_customer_code_column_is_refused_before_any_call(app, demo, login):
    with app.app_context():
        from webapp.databases.operations import MenuSpec, update_menu

        menu = menu_named(CUSTOMER_MENU)
        update_menu(menu, MenuSpec(name=menu.name, column_field_ids=[c.field_id for c in menu.columns][1:],
                                   filters=[], sort_field_id=None))
        db.session.commit()
    body = login("user").post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={}, headers=HTMX).get_data(as_text=True)
    assert "「顧客コード」がありません" in body
    assert demo.imports() == []


def test_empty_record_list_is_refused_with_a_message(app, demo, login):
    body = login("user").post(run_url(app, CUSTOMER_MENU, CUSTOMER_SETTING, "run"), data={"q": "該当なし"},
                               headers=HTMX).get_data(as_text=True)
    assert "送信するレコードがありません" in body
    assert demo.imports() == []


def test_wrong_token_fails_once_with_clear_error_and_mail(app, demo, login, smtp_server):
    with app.app_context():
        from webapp.core.crypto import encrypt_secret

        setting = setting_named(CUSTOMER_SETTING)
        setting.token_encrypted = encrypt_secret("wrong-token-0123456789")
        db.session.commit()
    run_id, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        run = execute(run_id)
        assert run.status == "error"
        assert run.http_status == 401
        assert "APIトークン" in run.error_message
        call = run.calls[0]
        assert call.status == CallStatus.FAILED and call.error_code == "E_AUTH"
        assert len(call.exchanges) == 1  # 401 is never retried
        assert "wrong-token-0123456789" not in str(call.exchanges)
        assert "連携済" not in {r.data[field_named("顧客", "連携ステータス").key] for r in records_of("顧客")}
    assert len(smtp_server.messages) == 1 and "エラー" in smtp_server.messages[0]["subject"]


def test_errors_only_mail_is_not_sent_on_success_but_kept_nowhere(app, demo, login, smtp_server):
    customers_in_meisai(app, login)
    run_id, _, _ = start(app, login, INVOICE_MENU, INVOICE_SETTING)  # the demo's invoice setting mails errors only
    with app.app_context():
        assert execute(run_id).status == "completed"
        assert db.session.query(OutboxMail).filter_by(run_id=run_id).count() == 0
    assert all("請求書" not in m["subject"] for m in smtp_server.messages)


def test_mail_is_kept_in_outbox_without_smtp(app, demo, login):
    app.config["MAIL_SERVER"] = ""
    run_id, _, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        execute(run_id)
        mail = db.session.query(OutboxMail).one()
        assert mail.status == "stored" and mail.recipients == ["user@example.co.jp"]
    outbox = login("admin").get("/admin/mails").get_data(as_text=True)
    assert "楽楽明細へ顧客を連携" in outbox and "保存のみ" in outbox
    assert login("user").get("/admin/mails").status_code == 403


def test_admin_recipient_setting_mails_every_administrator(app, demo, login, smtp_server):
    with app.app_context():
        setting_named(CUSTOMER_SETTING).report_mail_to = "admins"
        db.session.commit()
    run_id, _, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        execute(run_id)
    assert smtp_server.messages[0]["to"] == ["admin@example.co.jp"]


def test_row_errors_are_tied_to_their_records_and_only_good_rows_are_updated(app, demo, login):
    with app.app_context():
        postal = field_named("顧客", "郵便番号")
        records = records_of("顧客")
        records[3].data = {**records[3].data, postal.key: "郵便番号ではない"}
        db.session.commit()
        bad_id = records[3].id
    run_id, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        run = execute(run_id)
        assert run.status == "partial", run.error_message  # 楽楽明細 refused the row's 郵便番号
        call = run.calls[0]
        assert call.status == CallStatus.ROW_ERRORS
        assert [e["record_id"] for e in call.row_errors] == [bad_id]
        status = field_named("顧客", "連携ステータス")
        by_id = {r.id: r for r in records_of("顧客")}
        assert by_id[bad_id].data[status.key] == "未連携"
        assert sum(1 for r in by_id.values() if r.data[status.key] == "連携済") == 29
    detail = user.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "行エラー" in detail and f"No.{bad_id}" in detail


def test_rerun_after_row_errors_sends_only_the_failed_records(app, demo, login):
    with app.app_context():
        postal = field_named("顧客", "郵便番号")
        records = records_of("顧客")
        good_value = records[3].data[postal.key]
        records[3].data = {**records[3].data, postal.key: "郵便番号ではない"}
        db.session.commit()
        bad_id = records[3].id
    run_id, _, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        assert execute(run_id).status == "partial"  # 楽楽明細 refused the row's 郵便番号
        record = db.session.get(type(records[3]), bad_id)
        record.data = {**record.data, field_named("顧客", "郵便番号").key: good_value}
        db.session.commit()
    response = user.post(f"/runs/{run_id}/rerun")
    assert response.status_code == 302
    with app.app_context():
        rerun = latest_run()
        assert rerun.id != run_id and rerun.trigger == "rerun" and rerun.record_count == 1
        assert execute(rerun.id).status == "completed"
        imports = demo.imports()
        assert len(imports) == 2


def test_run_pages_need_login_and_global_list_is_for_admins(app, demo, login):
    run_id, _, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    anonymous = app.test_client()
    for url in (f"/runs/{run_id}", f"/runs/{run_id}/progress", f"/runs/{run_id}/calls/1/files/0", "/runs"):
        assert anonymous.get(url).status_code == 302
    assert login("user").get("/runs").status_code == 403
    assert login("admin").get("/runs").status_code == 200


def test_progress_fragment_polls_until_final(app, demo, login):
    run_id, body, user = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    assert 'hx-trigger="every 2s"' in body
    with app.app_context():
        execute(run_id)
    fragment = user.get(f"/runs/{run_id}/progress").get_data(as_text=True)
    assert "完了" in fragment and "hx-trigger" not in fragment


def test_a_setting_not_attached_to_the_menu_cannot_run(app, demo, login):
    user = login("user")
    with app.app_context():
        url = f"/menus/{menu_named('顧客一覧').id}/integrations/{setting_named(CUSTOMER_SETTING).id}/run"
    assert user.post(url, data={}, headers=HTMX).status_code == 404


def test_cli_runs_and_lists(app, demo):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["meisai", "run", CUSTOMER_SETTING, "--menu", CUSTOMER_MENU, "--memo", "CLI"])
    assert result.exit_code == 0, result.output
    assert "完了(成功 30件" in result.output
    listing = runner.invoke(args=["meisai", "runs"])
    assert "楽楽明細へ顧客を連携" in listing.output and "コマンド" in listing.output
    result = runner.invoke(args=["meisai", "run", "存在しない連携"])
    assert result.exit_code != 0 and "見つかりません" in result.output


def test_redis_unreachable_ends_the_run_with_a_message(app, demo, login):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    run_id, body, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        run = db.session.get(Run, run_id)
        assert run.status == "error" and "Redis" in run.error_message and run.active_key is None
    assert demo.imports() == []


def test_publication_date_in_run_detail_is_local_time(app, demo, login):
    with app.app_context():
        setting_named(INVOICE_SETTING).issue_method = "scheduled"
        db.session.commit()
    future = datetime.now(ZoneInfo("Asia/Tokyo")).replace(second=0, microsecond=0) + timedelta(days=1)
    run_id, _, user = start(app, login, INVOICE_MENU, INVOICE_SETTING, publication_date=future.strftime("%Y-%m-%dT%H:%M"))
    with app.app_context():
        stored = as_utc(db.session.get(Run, run_id).publication_date)
        assert stored == future.astimezone(UTC)
    assert future.strftime("%Y/%m/%d %H:%M") in user.get(f"/runs/{run_id}").get_data(as_text=True)


def test_deleting_a_setting_with_runs_keeps_it_hidden_for_the_history(app, demo, login):
    run_id, _, _ = start(app, login, CUSTOMER_MENU, CUSTOMER_SETTING)
    with app.app_context():
        execute(run_id)
        setting_id = setting_named(CUSTOMER_SETTING).id
        database_id = setting_named(CUSTOMER_SETTING).database_id
    keiri = login("keiri")
    assert keiri.post(f"/dbs/{database_id}/integrations/{setting_id}/delete").status_code == 302
    listing = keiri.get(f"/dbs/{database_id}/integrations").get_data(as_text=True)
    assert f"/integrations/{setting_id}/edit" not in listing  # hidden from the list
    with app.app_context():
        from webapp.integrations.models import IntegrationSetting

        assert db.session.get(IntegrationSetting, setting_id).is_deleted  # kept for the history
    detail = keiri.get(f"/runs/{run_id}").get_data(as_text=True)
    assert CUSTOMER_SETTING in detail and "完了" in detail
