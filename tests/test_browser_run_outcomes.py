"""In the browser, by clicking: the run dialog's heading follows the run to its end, the preview warns before
sending, a run with many errors lists them once and pages them, and タイマー設定's warning and 「今すぐ実行」."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect
from run_helpers import CUSTOMER_MENU, CUSTOMER_SETTING, add_customers, execute, menu_named, setting_named

from webapp.extensions import db

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "test-results"
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


def shoot(page, name: str) -> None:
    """Screenshots at both sizes, for a person to look at (test-results/)."""
    SHOTS.mkdir(exist_ok=True)
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}_{size}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def open_integration(page, menu_name: str, integration: str):
    page.get_by_role("complementary", name="左パネル").get_by_role("link", name=menu_name).click()
    page.locator("summary", has_text="サブメニュー").click()
    page.get_by_role("menuitem", name=re.compile(re.escape(integration))).click()
    return page.locator("#run-dialog dialog")


def test_the_run_dialog_heading_follows_the_run_to_its_end(page, live_server, demo, worker):
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, live_server, "user")
    dialog = open_integration(page, CUSTOMER_MENU, CUSTOMER_SETTING)
    dialog.get_by_role("button", name="実行").click()
    heading = page.locator("#run-dialog dialog h2")
    expect(heading).to_have_text("実行が完了しました", timeout=30_000)
    expect(page.locator("#run-dialog")).not_to_contain_text("実行を受け付けました")
    expect(page.locator(".run-progress .status-badge")).to_have_text("完了")
    shoot(page, "run_dialog_completed")


def test_the_preview_warns_about_changed_columns_and_customers_never_sent(page, live_server, demo, app):
    from webapp.databases.operations import FilterSpec, MenuSpec, update_menu

    with app.app_context():
        assert execute(_start(CUSTOMER_SETTING, CUSTOMER_MENU)).status == "completed"
        add_customers(3)
        menu = menu_named(CUSTOMER_MENU)
        ids = [c.field_id for c in menu.columns]
        ids[0], ids[1] = ids[1], ids[0]
        update_menu(menu, MenuSpec(name=menu.name, column_field_ids=ids[:-1], sort_field_id=menu.sort_field_id,
                                   filters=[FilterSpec(f.field_id, f.operator, f.value) for f in menu.filters]))
        db.session.commit()
    browser_login(page, live_server, "user")
    dialog = open_integration(page, CUSTOMER_MENU, CUSTOMER_SETTING)
    dialog.get_by_role("button", name="プレビュー").click()
    warning = dialog.locator("#preview-column-change")
    expect(warning).to_contain_text("なくなった列: メールアドレス")
    expect(warning).to_contain_text("列の順序が変わっています")
    expect(dialog.get_by_role("button", name="実行")).to_be_enabled()  # a warning, not a block
    shoot(page, "preview_column_warning")
    dialog.get_by_role("button", name="閉じる").click()

    # The new customers were never sent: the invoices of… none yet, so make one of theirs.
    with app.app_context():
        from run_helpers import field_named, records_of

        code = field_named("請求書", "顧客コード")
        status = field_named("請求書", "連携ステータス")
        pending = [r for r in records_of("請求書") if r.data.get(status.key) == "未連携"]
        pending[0].data = {**pending[0].data, code.key: "K001001"}
        db.session.commit()
    dialog = open_integration(page, "楽楽明細 送信待ち請求書", "楽楽明細へ請求書を発行(CSV)")
    dialog.get_by_role("button", name="プレビュー").click()
    unknown = dialog.locator("#preview-unknown-customers")
    expect(unknown).to_contain_text("1件のレコードの顧客コードは、この楽楽明細にまだ送信されていません")
    expect(unknown).to_contain_text("K001001")
    shoot(page, "preview_customer_warning")


def _start(setting_name: str, menu_name: str) -> int:
    from webapp.runs.operations import start_run

    return start_run(setting_named(setting_name), menu_named(menu_name), executor_id=None, enqueue=False).id


def test_a_run_with_many_errors_lists_them_once_in_pages(page, live_server, demo, app):
    with app.app_context():
        add_customers(120, address2="🍣ビル")
        run_id = execute(_start(CUSTOMER_SETTING, CUSTOMER_MENU)).id
    browser_login(page, live_server, "user")
    page.goto(f"{live_server}/runs/{run_id}")
    problems = page.locator("#run-problems")
    expect(problems.locator("h2")).to_contain_text("エラーになったレコード(120件)")
    expect(problems.locator("#problem-table tbody tr")).to_have_count(50)
    first_page = problems.locator("#problem-table tbody tr").first.inner_text()
    problems.get_by_role("link", name="次へ ›").click()
    expect(problems).to_contain_text("2 / 3ページ")
    expect(problems.locator("#problem-table tbody tr")).to_have_count(50)
    assert problems.locator("#problem-table tbody tr").first.inner_text() != first_page
    # Status badges stay on one line, even in narrow cells on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    badges = page.locator(".status-badge")
    assert badges.count() > 50
    for height, font in badges.evaluate_all(
            "all => all.map(e => [e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).fontSize)])"):
        assert height < font * 2, (height, font)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/runs/{run_id}")
    shoot(page, "run_detail_many_errors")


def test_timer_form_warns_without_a_menu_and_run_now_runs_it_as_the_person(page, live_server, demo, worker, app):
    page.on("dialog", lambda dialog: dialog.accept())
    with app.app_context():
        setting = setting_named(CUSTOMER_SETTING)
        url = f"{live_server}/dbs/{setting.database_id}/integrations/{setting.id}/timer"
    browser_login(page, live_server, "keiri")
    page.goto(url)
    form = page.locator("#timer-form")
    warning = form.locator("#timer-whole-db-warning")
    expect(warning).to_contain_text("連携済のレコードも毎回送られます")
    expect(warning).to_contain_text("「楽楽明細 未連携顧客」")
    expect(form).to_contain_text("日本時間 (Asia/Tokyo)")
    shoot(page, "timer_form_whole_db_warning")
    for label, shown in ((CUSTOMER_MENU, 0), ("指定しない(全レコード・全項目)", 1), (CUSTOMER_MENU, 0)):
        # Each choice redraws the form (htmx): wait for its answer, then read the warning.
        with page.expect_response(lambda r: r.request.method == "POST" and r.url == url):
            page.locator("#menu_id").select_option(label=label)
        expect(form.locator("#timer-whole-db-warning")).to_have_count(shown)
        # htmx wires up swapped-in controls when the swap settles (~20 ms); a person is never that quick.
        expect(page.locator(".htmx-settling")).to_have_count(0)
    form.get_by_role("button", name="確定").click()
    expect(page.locator(".flash-success")).to_contain_text("タイマー設定を保存しました")
    shoot(page, "timer_form")

    page.get_by_role("button", name="今すぐ実行").click()
    expect(page.locator(".flash-success")).to_contain_text("今すぐ実行しました(対象 30件)")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.locator(".run-progress .status-badge")).to_have_text("完了", timeout=30_000)
    expect(page.locator("main")).to_contain_text("経理 次郎")
    expect(page.locator("main")).to_contain_text("今すぐ実行")
    assert sorted(i["kind"] for i in demo.imports()) == ["customers"]


def test_a_whole_file_rejection_reads_once_on_the_run_detail(page, live_server, demo, app):
    from webapp.integrations.operations import set_menu_integrations

    with app.app_context():
        set_menu_integrations(menu_named("顧客一覧"), [setting_named(CUSTOMER_SETTING).id])
        db.session.commit()
        run_id = execute(_start(CUSTOMER_SETTING, "顧客一覧")).id
    browser_login(page, live_server, "user")
    page.goto(f"{live_server}/runs/{run_id}")
    main = page.locator("main")
    expect(main.locator(".run-progress .status-badge")).to_have_text("エラー")
    expect(main.locator("#call-1 .status-badge")).to_have_text("エラー")
    expect(main.locator("#run-problems")).to_contain_text("1回目の送信の30件: 取込エラー")
    page_text, mail = main.inner_text().split("レポートメール", 1)
    assert page_text.count("列の数が合わないため") == 1 and "一部" not in page_text  # the mail says it once too
    assert mail.count("列の数が合わないため") == 1
    shoot(page, "run_detail_whole_file_rejection")
