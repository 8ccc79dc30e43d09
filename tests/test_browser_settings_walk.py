"""The manual followed in Chromium by typing, clicking and selecting only (no direct POSTs).

One setting of each 連携データ, the APIトークン typed first and every conditional switched on and off before 確定;
three レコード更新 rows; the setting bound to a menu through メニュー設定; a run from the サブメニュー to 完了 with
the レコード更新 seen in the list; a timer. Afterwards the database must hold exactly what the person entered.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect
from run_helpers import field_named, menu_named, records_of

from webapp.extensions import db

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "test-results"
# What a person copies from 楽楽明細's admin screen: the URL field cuts it at /backadmin when left.
TOKEN_CSV, TOKEN_PDF, TOKEN_PDF_CSV = (f"browser-token-{n}-0123456789abcdef" for n in range(3))
SEND_MENU = "楽楽明細 未連携顧客"  # its columns are those of 楽楽明細's customer import format 1


@pytest.fixture
def memo_field(app, demo):
    """A テキスト(1行) field of the 顧客 DB for a レコード更新 row (the demo has 連携ステータス and 連携日時)."""
    from webapp.databases.models import Database
    from webapp.databases.operations import FieldSpec, add_field

    with app.app_context():
        database = db.session.query(Database).filter_by(name="顧客").one()
        add_field(database, FieldSpec("連携メモ", "text"))
        db.session.commit()
    return demo


def settled(page):
    """Wait until htmx has no request in flight and nothing is being swapped."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def choose(page, row_id: str, label: str):
    page.locator(f"#row-{row_id}").get_by_label(label, exact=True).check()
    settled(page)


def open_setting_list(page, database_name: str):
    page.get_by_role("complementary", name="左パネル").get_by_title(f"{database_name} のDB設定").click()
    page.get_by_role("tab", name="システム連携").click()
    page.get_by_role("link", name="楽楽明細連携設定").click()
    expect(page.get_by_role("heading", name="楽楽明細連携設定")).to_be_visible()


def start_new_setting(page, demo, name: str, token: str):
    """新規追加, then as the manual's order has it, but APIトークン typed first of all."""
    page.get_by_role("link", name="＋ 新規追加").click()
    page.locator("#token").fill(token)
    page.locator("#name").fill(name)
    page.locator("#url").fill(f"{demo.base_url}backadmin/top?menu=api")
    page.locator("#url").press("Tab")  # leaving the field cuts the pasted admin URL
    settled(page)
    expect(page.locator("#url")).to_have_value(demo.base_url)


def toggle_report_mail(page, final_on: bool):
    expect(page.locator("#row-report_mail_to")).to_have_count(0)
    choose(page, "report_mail", "送信する")
    choose(page, "report_mail_to", "管理者")
    page.get_by_label("エラー時のみ送信する").check()
    choose(page, "report_mail", "送信しない")
    expect(page.locator("#row-report_mail_to")).to_have_count(0)
    if final_on:
        choose(page, "report_mail", "送信する")
        choose(page, "report_mail_to", "実行者")
        expect(page.get_by_label("エラー時のみ送信する")).not_to_be_checked()


def toggle_skip_approval(page, final_issue: str | None):
    expect(page.locator("#row-issue_method")).to_have_count(0)
    choose(page, "skip_approval", "する")
    choose(page, "issue_method", "予約発行")
    choose(page, "skip_approval", "しない")
    expect(page.locator("#row-issue_method")).to_have_count(0)
    if final_issue:
        choose(page, "skip_approval", "する")
        choose(page, "issue_method", final_issue)


def confirm_and_expect_saved(page, token: str, name: str):
    # Nothing the server sent back carried the typed token, yet the field still holds it.
    assert token not in page.content()
    expect(page.locator("#token")).to_have_value(token)
    page.get_by_role("button", name="確定").click()
    expect(page.get_by_role("status")).to_contain_text(f"楽楽明細連携設定「{name}」を保存しました")
    expect(page.locator("tr", has_text=name)).to_contain_text("設定済み(••••••••)")


def stored(app, name: str):
    from webapp.integrations.models import IntegrationSetting
    from webapp.integrations.operations import token_of

    with app.app_context():
        setting = db.session.query(IntegrationSetting).filter_by(name=name).one()
        values = {c.name: getattr(setting, c.name) for c in IntegrationSetting.__table__.columns}
        values["token"] = token_of(setting)
        values["record_updates"] = [(rule.field.name, rule.value) for rule in setting.record_updates]
        return values


def test_one_setting_of_each_report_kind_typed_with_every_switch_toggled(app, page, live_server, memo_field):
    demo = memo_field
    browser_login(page, live_server, "keiri")
    open_setting_list(page, "請求書")

    # 帳票データ(CSV): 取込方法 差替 on and off, 承認スキップ on and off, a refused 確定 on the way.
    start_new_setting(page, demo, "請求書を差替(手入力)", TOKEN_CSV)
    choose(page, "data_kind", "帳票データ(CSV)")
    toggle_report_mail(page, final_on=True)
    expect(page.locator("#row-replace_notify_mail")).to_have_count(0)
    choose(page, "import_method", "差替")
    choose(page, "replace_notify_mail", "送信する")
    choose(page, "replace_postal", "依頼する")
    choose(page, "replace_fax", "送信する")
    choose(page, "import_method", "新規発行")
    expect(page.locator("#row-replace_notify_mail")).to_have_count(0)
    choose(page, "import_method", "差替")
    choose(page, "replace_postal", "依頼する")
    toggle_skip_approval(page, final_issue="即時発行")
    page.locator("#report_type_id").fill("2")
    page.locator("#approval_flow_id").fill("abc")
    page.get_by_role("button", name="確定").click()
    settled(page)
    expect(page.get_by_role("alert")).to_contain_text("保存はされていません")
    expect(page.locator("#approval_flow_id-errors")).to_contain_text("1以上の整数")
    page.locator("#approval_flow_id").fill("5")
    confirm_and_expect_saved(page, TOKEN_CSV, "請求書を差替(手入力)")

    # 帳票データ(PDF): 連携対象PDF, 承認スキップ on and off; 連携データ switched away and back.
    start_new_setting(page, demo, "請求書PDF(手入力)", TOKEN_PDF)
    choose(page, "data_kind", "帳票データ(PDF)")
    page.get_by_label("連携対象PDF").select_option(label="請求書PDF")
    choose(page, "data_kind", "顧客データ")
    expect(page.get_by_label("連携対象PDF")).to_have_count(0)
    choose(page, "data_kind", "帳票データ(PDF)")
    page.get_by_label("連携対象PDF").select_option(label="請求書PDF")
    toggle_skip_approval(page, final_issue=None)
    toggle_report_mail(page, final_on=False)
    confirm_and_expect_saved(page, TOKEN_PDF, "請求書PDF(手入力)")

    # 帳票データ(PDF+CSV): the same switches, 予約発行 kept.
    start_new_setting(page, demo, "請求書PDF+CSV(手入力)", TOKEN_PDF_CSV)
    choose(page, "data_kind", "帳票データ(PDF+CSV)")
    expect(page.locator("#row-import_method")).to_have_count(0)  # PDF modes always issue new documents
    page.get_by_label("連携対象PDF").select_option(label="請求書PDF")
    toggle_skip_approval(page, final_issue="予約発行")
    toggle_report_mail(page, final_on=True)
    page.locator("#report_type_id").fill("1")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "setting_form_pdf_csv.png"), full_page=True)
    confirm_and_expect_saved(page, TOKEN_PDF_CSV, "請求書PDF+CSV(手入力)")

    pdf_field = field_named_id(app, "請求書", "請求書PDF")
    csv = stored(app, "請求書を差替(手入力)")
    assert (csv["token"], csv["base_url"], csv["data_kind"], csv["report_type_id"], csv["approval_flow_id"]) == \
        (TOKEN_CSV, demo.base_url, "report_csv", 2, 5)
    assert (csv["import_method"], csv["replace_notify_mail"], csv["replace_postal"], csv["replace_fax"]) == \
        ("replace", False, True, False)  # switched off and on again: what was chosen last
    assert (csv["skip_approval"], csv["issue_method"]) == (True, "immediate")
    assert (csv["report_mail"], csv["report_mail_to"], csv["report_mail_errors_only"]) == (True, "executor", False)
    pdf = stored(app, "請求書PDF(手入力)")
    assert (pdf["token"], pdf["data_kind"], pdf["pdf_field_id"], pdf["report_type_id"]) == \
        (TOKEN_PDF, "report_pdf", pdf_field, 1)
    assert (pdf["skip_approval"], pdf["issue_method"], pdf["report_mail"], pdf["import_method"]) == \
        (False, None, False, "new")
    both = stored(app, "請求書PDF+CSV(手入力)")
    assert (both["token"], both["data_kind"], both["pdf_field_id"]) == (TOKEN_PDF_CSV, "report_pdf_csv", pdf_field)
    assert (both["skip_approval"], both["issue_method"], both["report_mail"], both["report_mail_to"]) == \
        (True, "scheduled", True, "executor")


def field_named_id(app, database_name: str, name: str) -> int:
    with app.app_context():
        return field_named(database_name, name).id


def test_customer_setting_with_record_updates_bound_to_a_menu_run_and_timed(app, page, live_server, memo_field, worker):
    demo = memo_field
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, live_server, "keiri")
    open_setting_list(page, "顧客")

    start_new_setting(page, demo, "顧客を楽楽明細へ(手入力)", demo.token)
    expect(page.locator("#row-data_kind").get_by_label("顧客データ")).to_be_checked()
    choose(page, "data_kind", "帳票データ(CSV)")
    choose(page, "data_kind", "顧客データ")
    toggle_report_mail(page, final_on=True)
    page.locator("#import_setting_id").fill("1")
    choose(page, "overwrite_in_use", "する")
    choose(page, "overwrite_blank", "する")
    choose(page, "overwrite_blank", "しない")

    # レコード更新: three rows; choosing a 項目 brings its value control.
    add = page.get_by_role("button", name="＋ 更新する項目を追加")
    for _ in range(3):
        add.click()
        settled(page)
    expect(add).to_have_count(0)  # at most 3
    page.get_by_label("更新する項目1").select_option(label="連携メモ(テキスト(1行))")
    settled(page)
    page.get_by_label("更新後の値1").fill("楽楽明細へ登録済み")
    page.get_by_label("更新する項目2").select_option(label="連携ステータス(選択肢(1件選択))")
    settled(page)
    page.get_by_label("更新後の値2").select_option("連携済")
    page.get_by_label("更新する項目3").select_option(label="連携日時(日時)")
    settled(page)
    row3 = page.locator("#record-update-rows tr").nth(2)
    expect(page.get_by_label("更新後の値3")).to_be_visible()  # 指定した値: a date and time to type
    row3.get_by_label("実行日時").check()
    settled(page)
    expect(page.get_by_label("更新後の値3")).to_have_count(0)
    # The typed values survived the re-renders that followed them.
    expect(page.get_by_label("更新後の値1")).to_have_value("楽楽明細へ登録済み")
    expect(page.get_by_label("更新後の値2")).to_have_value("連携済")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "setting_form_customer.png"), full_page=True)

    # A refused 確定 (name emptied) keeps the token; then 確定.
    page.locator("#name").fill("")
    page.get_by_role("button", name="確定").click()
    settled(page)
    expect(page.get_by_role("alert")).to_contain_text("保存はされていません")
    page.locator("#name").fill("顧客を楽楽明細へ(手入力)")
    confirm_and_expect_saved(page, demo.token, "顧客を楽楽明細へ(手入力)")

    setting = stored(app, "顧客を楽楽明細へ(手入力)")
    assert (setting["token"], setting["base_url"], setting["data_kind"], setting["import_setting_id"]) == \
        (demo.token, demo.base_url, "customer", 1)
    assert (setting["overwrite_in_use"], setting["overwrite_blank"]) == (True, False)
    assert (setting["report_mail"], setting["report_mail_to"], setting["report_mail_errors_only"]) == \
        (True, "executor", False)
    assert setting["record_updates"] == [("連携メモ", "楽楽明細へ登録済み"), ("連携ステータス", "連携済"),
                                         ("連携日時", "__run_time__")]

    # メニュー設定: show the fields the run updates in 顧客一覧; attach the setting to the menu it sends
    # (システム連携設定 › 設定 › 処理, 追加, 確定).
    page.get_by_role("complementary", name="左パネル").get_by_title("顧客 のDB設定").click()
    page.locator("tr", has_text="顧客一覧").get_by_role("link", name="設定").click()
    for label in ("連携メモ", "連携日時"):
        page.get_by_role("button", name="＋ 表示項目を追加").click()
        settled(page)
        page.locator("#column-rows tbody tr").last.get_by_role("combobox").select_option(label=label)
    page.get_by_role("button", name="確定").click()
    expect(page.get_by_role("status")).to_contain_text("メニュー「顧客一覧」を保存しました")
    page.locator("tr", has_text=SEND_MENU).get_by_role("link", name="設定").click()
    expect(page.locator("#menu-attached-integrations")).not_to_contain_text("顧客を楽楽明細へ(手入力)")
    page.get_by_role("link", name="設定", exact=True).click()
    page.get_by_label("処理").select_option(label="顧客を楽楽明細へ(手入力)(顧客データ)")
    page.get_by_role("button", name="追加").click()
    settled(page)
    page.get_by_role("button", name="確定").click()
    expect(page.get_by_role("status")).to_contain_text("システム連携設定を保存しました")
    expect(page.locator("#menu-attached-integrations")).to_contain_text("顧客を楽楽明細へ(手入力)")

    # Run it from the record list's サブメニュー: 連携ステータス=連携済 takes every record out of the 未連携 list,
    # and 顧客一覧 shows the three updated fields.
    panel = page.get_by_role("complementary", name="左パネル")
    panel.get_by_role("link", name=SEND_MENU).click()
    expect(page.locator("#record-count")).to_contain_text("30件中")
    page.locator("summary", has_text="サブメニュー").click()
    page.get_by_role("menuitem", name=re.compile(re.escape("顧客を楽楽明細へ(手入力)"))).click()
    page.locator("#run-dialog dialog").get_by_role("button", name="実行").click()
    expect(page.locator(".run-progress .status-badge")).to_have_text("完了", timeout=60_000)
    page.locator("[data-close-dialog]").first.click()
    expect(page.locator("#records")).not_to_contain_text("C00001")  # the list refreshed after the run
    panel.get_by_role("link", name="顧客一覧").click()
    first_row = page.locator("#records tbody tr").first
    expect(first_row).to_contain_text("楽楽明細へ登録済み")
    expect(first_row).to_contain_text("連携済")
    expect(first_row).to_contain_text(re.compile(r"\d{4}[/-]\d{2}[/-]\d{2} \d{2}:\d{2}"))
    with app.app_context():
        memo, status = field_named("顧客", "連携メモ").key, field_named("顧客", "連携ステータス").key
        updated = records_of("顧客")
        assert {r.data.get(memo) for r in updated} == {"楽楽明細へ登録済み"}
        assert {r.data.get(status) for r in updated} == {"連携済"}
    assert len(demo.client().search_customers("C000")) == 30

    # タイマー設定 of the same setting, on the same menu; one outcome banner at a time.
    open_setting_list(page, "顧客")
    page.locator("tr", has_text="顧客を楽楽明細へ(手入力)").get_by_role("link", name="タイマー設定").click()
    form = page.locator("#timer-form")
    page.get_by_label("メニュー設定").select_option(label=SEND_MENU)
    form.get_by_label("ON(実行する)").check()
    page.locator("#priority").fill("4")
    form.get_by_label("毎月").check()
    settled(page)
    page.locator("#month_day").select_option(label="末日")
    form.get_by_label("毎週").check()
    settled(page)
    form.get_by_label("月", exact=True).check()
    form.get_by_label("金", exact=True).check()
    page.locator("#at_time").fill("07:45")
    form.get_by_role("button", name="確定").click()
    expect(page.get_by_role("status")).to_contain_text("タイマー設定を保存しました")
    page.locator("#priority").fill("優先")
    form.get_by_role("button", name="確定").click()
    settled(page)
    expect(page.get_by_role("alert")).to_contain_text("保存はされていません")
    # One outcome at a time: the green 保存しました went with the swap, the refusal is the only banner.
    expect(page.locator("#flashes .flash")).to_have_count(0)
    expect(page.locator("#timer-form .flash")).to_have_count(1)
    page.screenshot(path=str(SHOTS / "timer_form_refused.png"), full_page=True)

    from webapp.timers.models import Timer

    with app.app_context():
        timer = db.session.query(Timer).one()
        assert (timer.menu_id, timer.enabled, timer.priority, timer.kind, timer.weekdays, timer.at_time) == \
            (menu_named(SEND_MENU).id, True, 4, "weekly", "0,4", "07:45")

    # The menu's settings page now names its integration and the timer that uses it.
    page.get_by_role("complementary", name="左パネル").get_by_title("顧客 のDB設定").click()
    page.locator("tr", has_text=SEND_MENU).get_by_role("link", name="設定").click()
    expect(page.locator("#menu-timers")).to_contain_text("顧客を楽楽明細へ(手入力)")
    expect(page.locator("#menu-timers")).to_contain_text("毎週 月・金 07:45")
    page.screenshot(path=str(SHOTS / "menu_settings.png"), full_page=True)
