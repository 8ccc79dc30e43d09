"""Every page fits a laptop (1366×900) and a phone (390×844): no page scrolls sideways, every button and link can
be reached, wide tables scroll inside their own box, and on the phone the left panel folds behind a menu button.

One seeded app (the demo with a 10-row 明細 invoice, two finished runs, a report mail and a timer) and one browser
serve every case; each case also leaves a screenshot in test-results/layout/ for a person to look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest
from conftest import app_on, emulator_in, serving
from helpers import PASSWORDS, browser_login
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "layout"
SIZES = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

# What does not fit: how far the page scrolls sideways, and the controls that stick out of the window without a
# box of their own to scroll them into view (clipped by an overflow: hidden, or simply off screen).
FIT_PROBE = """() => {
  const width = window.innerWidth;
  const scrollsSideways = (element) => {
    for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      if (/(auto|scroll)/.test(getComputedStyle(box).overflowX)) return true;
    }
    return false;
  };
  const unreachable = [];
  for (const element of document.querySelectorAll("a, button, summary, input:not([type=hidden]), select, textarea")) {
    const rect = element.getBoundingClientRect();
    if (!rect.width || !rect.height || !element.checkVisibility({visibilityProperty: true})) continue;
    if ((rect.right > width + 1 || rect.left < -1) && !scrollsSideways(element)) {
      unreachable.push(element.outerHTML.slice(0, 120));
    }
  }
  const dialog = document.querySelector("dialog[open]");
  return {
    scrollWidth: document.documentElement.scrollWidth, innerWidth: width, unreachable,
    dialog: dialog && {scrollWidth: dialog.scrollWidth, clientWidth: dialog.clientWidth,
                       left: dialog.getBoundingClientRect().left, right: dialog.getBoundingClientRect().right},
  };
}"""


@dataclass
class Site:
    url: str
    paths: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo installation with everything each page can show, served over HTTP."""
    from run_helpers import (
        CUSTOMER_MENU,
        CUSTOMER_SETTING,
        INVOICE_MENU,
        INVOICE_SETTING,
        execute,
        field_named,
        menu_named,
        records_of,
        setting_named,
    )

    from webapp.auth.models import User
    from webapp.databases.models import Database
    from webapp.databases.operations import new_record
    from webapp.demo import seed_demo
    from webapp.extensions import db
    from webapp.runs.operations import start_run
    from webapp.timers.operations import TimerValues, save_timer
    from webapp.timers.schedule import Kind

    tmp = tmp_path_factory.mktemp("layout")
    with pytest.MonkeyPatch.context() as patch, emulator_in(tmp / "emulator") as emulator, app_on(tmp) as app:
        patch.setenv("MEISAI_DEMO_TOKEN", emulator.token)
        patch.setenv("MEISAI_EMULATOR_URL", emulator.base_url)
        with app.app_context():
            assert seed_demo(customer_count=30, invoice_count=20, admin_password=PASSWORDS["admin"])
            invoices = db.session.get(Database, field_named("請求書", "品名").database_id)
            keys = {name: field_named("請求書", name).key for name in ("品名", "数量", "単価", "金額", "税率")}
            details = [{keys["品名"]: f"保守サービス(月額) {n}月分 オンサイト対応含む", keys["数量"]: n, keys["単価"]: 30000,
                        keys["金額"]: 30000 * n, keys["税率"]: "10%" if n % 2 else "8%"} for n in range(1, 11)]
            ten_rows = new_record(invoices, dict(records_of("請求書")[0].data), details, None)
            db.session.commit()
            # One customer 楽楽明細 refuses, with a long value: the run detail lists a row error and its record.
            customers = records_of("顧客")
            customers[3].data = {**customers[3].data, field_named("顧客", "郵便番号").key: "郵便番号ではない" + "0" * 40}
            db.session.commit()
            user = db.session.execute(db.select(User).filter_by(username="user")).scalar_one()
            customer_run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=user.id,
                                     memo="11月 顧客登録", enqueue=False)
            assert execute(customer_run.id).status in ("completed", "partial")
            # Five invoices sent: the rest stay in the menu for the list and the run dialog's preview.
            unsent = [r.id for r in records_of("請求書") if r.data.get(field_named("請求書", "連携ステータス").key) == "未連携"]
            invoice_run = start_run(setting_named(INVOICE_SETTING), menu_named(INVOICE_MENU), executor_id=user.id,
                                    record_ids=unsent[:5], enqueue=False)
            assert execute(invoice_run.id).status in ("completed", "partial")
            invoice_menu, invoice_setting = menu_named(INVOICE_MENU), setting_named(INVOICE_SETTING)
            save_timer(invoice_setting, TimerValues(enabled=True, priority=1, kind=Kind.WEEKLY, at=time(9, 0),
                                                    menu_id=invoice_menu.id, weekdays=[0, 2, 4]))
            db_id = invoices.id
            paths = {
                "home": "/",
                "db_settings": f"/dbs/{db_id}/settings",
                "db_settings_integration": f"/dbs/{db_id}/settings?tab=integration",
                "database_new": "/dbs/new",
                "field_new": f"/dbs/{db_id}/fields/new",
                "field_edit": f"/dbs/{db_id}/fields/{field_named('請求書', '税率').id}/edit",
                "menu_form": f"/dbs/{db_id}/menus/{invoice_menu.id}/edit",
                "menu_integrations": f"/dbs/{db_id}/menus/{invoice_menu.id}/integrations",
                "setting_list": f"/dbs/{db_id}/integrations",
                "setting_form": f"/dbs/{db_id}/integrations/{invoice_setting.id}/edit",
                "setting_new": f"/dbs/{db_id}/integrations/new",
                "timer_form": f"/dbs/{db_id}/integrations/{invoice_setting.id}/timer",
                "record_list": f"/menus/{invoice_menu.id}",
                "record_list_customers": f"/menus/{menu_named('顧客一覧').id}",
                "record_view": f"/records/{ten_rows.id}",
                "record_edit_10_rows": f"/records/{ten_rows.id}/edit",
                "record_new": f"/dbs/{db_id}/records/new",
                "run_list": "/runs",
                "menu_runs": f"/menus/{invoice_menu.id}/runs",
                "run_detail": f"/runs/{invoice_run.id}",
                "customer_run_detail": f"/runs/{customer_run.id}",
                "mail_outbox": "/admin/mails",
                "status": "/admin/status",
                "audit_log": "/admin/audit",
                "permission_list": "/admin/permissions",
                "permission_edit": f"/admin/permissions/{user.id}",
                "user_new": "/admin/users/new",
                "error_page": "/records/999999",
            }
        with serving(app) as url:
            yield Site(url=url, paths=paths)


@pytest.fixture(scope="module")
def admin_page(browser, site):
    """One logged-in administrator's tab for every case; each case sets its own window size."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(15000)
    browser_login(page, site.url, "admin")
    yield page
    context.close()


def assert_fits(page, name: str, size: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
    probe = page.evaluate(FIT_PROBE)
    assert probe["scrollWidth"] <= probe["innerWidth"], f"{name} scrolls sideways at {size}: {probe}"
    assert not probe["unreachable"], f"{name} at {size}: controls outside the window: {probe['unreachable']}"
    if probe["dialog"]:
        dialog = probe["dialog"]
        assert dialog["scrollWidth"] <= dialog["clientWidth"], f"{name} at {size}: the dialog scrolls sideways"
        assert dialog["left"] >= 0 and dialog["right"] <= probe["innerWidth"], f"{name} at {size}: dialog off screen"


# Pages whose folded parts (実行時の設定, リクエストパラメータ, 通信ログ …) are opened before measuring.
EXPANDED = {"run_detail", "customer_run_detail", "record_view"}
PAGES = ["home", "db_settings", "db_settings_integration", "database_new", "field_new", "field_edit", "menu_form",
         "menu_integrations", "setting_list", "setting_form", "setting_new", "timer_form", "record_list",
         "record_list_customers", "record_view", "record_edit_10_rows", "record_new", "run_list", "menu_runs",
         "run_detail", "customer_run_detail", "mail_outbox", "status", "audit_log", "permission_list",
         "permission_edit", "user_new", "error_page"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PAGES)
def test_page_fits_the_window(admin_page, site, name, size):
    admin_page.set_viewport_size(SIZES[size])
    admin_page.goto(site.url + site.paths[name])
    expect(admin_page.locator("main h1").first).to_be_visible()
    if name in EXPANDED:
        admin_page.locator("main details:not([open]) > summary").evaluate_all("all => all.forEach(s => s.click())")
    assert_fits(admin_page, name, size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["setting_new", "record_new", "user_new", "field_new", "database_new"])
def test_refused_form_fits_with_its_errors(admin_page, site, name, size):
    admin_page.set_viewport_size(SIZES[size])
    admin_page.goto(site.url + site.paths[name])
    admin_page.locator("main").get_by_role("button", name="確定").click()
    expect(admin_page.locator("main .errors").first).to_be_visible()
    assert_fits(admin_page, f"{name}_refused", size)


@pytest.mark.parametrize("size", SIZES)
def test_record_edit_shows_all_ten_detail_rows_with_every_column(admin_page, site, size):
    admin_page.set_viewport_size(SIZES[size])
    admin_page.goto(site.url + site.paths["record_edit_10_rows"])
    table = admin_page.locator("#details-body table")
    expect(table.locator("tbody tr")).to_have_count(10)
    for heading in ("品名", "数量", "単価", "金額", "税率"):
        expect(table.locator("thead")).to_contain_text(heading)
    # The last column (削除) of the last row can be scrolled to inside the table's box and clicked there.
    last_delete = table.locator("tbody tr").last.get_by_role("button", name="削除")
    last_delete.scroll_into_view_if_needed()
    expect(last_delete).to_be_in_viewport()
    assert_fits(admin_page, "record_edit_10_rows_scrolled", size)


@pytest.mark.parametrize("size", SIZES)
def test_run_dialog_with_its_preview_fits(admin_page, site, size):
    admin_page.set_viewport_size(SIZES[size])
    admin_page.goto(site.url + site.paths["record_list"])
    admin_page.locator("summary", has_text="サブメニュー").click()
    expect(admin_page.get_by_role("menuitem").first).to_be_visible()
    assert_fits(admin_page, "record_list_submenu", size)
    admin_page.get_by_role("menuitem", name=re.compile("楽楽明細へ請求書を発行")).first.click()
    dialog = admin_page.locator("#run-dialog dialog")
    expect(dialog).to_contain_text("メモ(任意)")
    assert_fits(admin_page, "run_dialog", size)
    dialog.get_by_role("button", name="プレビュー").click()
    expect(dialog).to_contain_text("プレビュー(送信はしていません)")
    for label in ("実行", "プレビュー", "閉じる"):
        button = dialog.get_by_role("button", name=label, exact=True)
        button.scroll_into_view_if_needed()
        expect(button).to_be_in_viewport()
    assert_fits(admin_page, "run_dialog_preview", size)


@pytest.mark.parametrize("size", SIZES)
def test_login_page_fits(browser, site, size):
    context = browser.new_context(locale="ja-JP", viewport=SIZES[size])
    try:
        page = context.new_page()
        page.goto(f"{site.url}/login")
        expect(page.get_by_role("button", name="ログイン")).to_be_visible()
        assert_fits(page, "login", size)
    finally:
        context.close()


def test_phone_menu_button_opens_the_left_panel_with_and_without_htmx_navigation(browser, site):
    context = browser.new_context(locale="ja-JP", viewport=SIZES["phone"])
    try:
        page = context.new_page()
        browser_login(page, site.url, "admin")
        posts = []
        page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
        page.goto(site.url + site.paths["record_list"])
        panel = page.get_by_role("complementary", name="左パネル")
        button = page.get_by_role("button", name="メニュー", exact=True)
        customers = panel.get_by_role("link", name="顧客一覧", exact=True)
        expect(panel).to_be_hidden()

        # The keyboard: the button is the first stop of Tab, Enter opens the panel, Tab goes into it, Escape closes.
        page.keyboard.press("Tab")
        expect(button).to_be_focused()
        page.keyboard.press("Enter")
        expect(customers).to_be_visible()
        expect(customers).to_be_in_viewport()
        page.screenshot(path=str(SHOTS / "leftpanel_open-phone.png"))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('#leftpanel') !== null")
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()

        # After htmx swapped the list (a search pushes its URL without a page load) the button still works.
        page.evaluate("window.__sameDocument = 'kept'")
        page.locator("#keyword").fill("C00012")
        expect(page.locator("#record-count")).to_contain_text("「C00012」で検索")
        assert page.evaluate("window.__sameDocument") == "kept"
        button.click()
        panel.get_by_role("button", name="閉じる").click()
        expect(panel).to_be_hidden()
        button.click()
        customers.click()

        # A full page load: the new page starts with the panel folded, and opens it again.
        expect(page.get_by_role("heading", name="顧客一覧")).to_be_visible()
        expect(panel).to_be_hidden()
        button.click()
        expect(panel.get_by_role("link", name="顧客一覧", exact=True)).to_have_class(re.compile("active"))
        assert posts == [], f"opening and closing the panel wrote to the server: {posts}"

        # Wide again: the panel is a column beside the content and the button is gone.
        page.set_viewport_size(SIZES["laptop"])
        expect(panel).to_be_visible()
        expect(button).to_be_hidden()
        page.goto(site.url + site.paths["home"])
        expect(panel).to_be_visible()
        expect(button).to_be_hidden()
    finally:
        context.close()
