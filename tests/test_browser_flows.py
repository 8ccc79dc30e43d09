"""Browser flows (Playwright + Debian Chromium): configure an integration, attach it, run it, read the result."""

import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-results"


def test_configure_a_csv_setting_and_attach_it_to_a_menu(page, live_server, demo):
    browser_login(page, live_server, "keiri")
    page.get_by_role("complementary", name="左パネル").get_by_title("請求書 のDB設定").click()
    page.get_by_role("tab", name="システム連携").click()
    page.get_by_role("link", name="楽楽明細連携設定").click()
    page.get_by_role("link", name="＋ 新規追加").click()

    page.fill("#name", "請求書を差替(ブラウザ)")
    page.fill("#url", f"{demo.base_url}backadmin/top")
    page.fill("#token", demo.token)
    page.get_by_label("帳票データ(CSV)").check()
    expect(page.get_by_text("取込方法", exact=True)).to_be_visible()
    expect(page.get_by_text("差替発行の通知メール")).to_have_count(0)
    page.locator("#row-import_method").get_by_label("差替").check()
    for label in ("差替発行の通知メール", "差替発行の郵送依頼", "差替発行のFAX送信"):
        expect(page.get_by_text(label, exact=True)).to_be_visible()
    expect(page.get_by_text("発行方法", exact=True)).to_have_count(0)
    page.locator("#row-skip_approval").get_by_label("する").check()
    expect(page.get_by_text("発行方法", exact=True)).to_be_visible()
    # The token typed before the re-renders is still in its field (only its value is never echoed by the server).
    page.fill("#token", demo.token)
    page.get_by_role("button", name="接続テスト").click()
    expect(page.locator("#connection-result")).to_contain_text("接続に成功しました")
    page.screenshot(path=str(SHOTS / "setting_form.png"), full_page=True)
    page.get_by_role("button", name="確定").click()

    expect(page.get_by_role("heading", name="楽楽明細連携設定")).to_be_visible()
    row = page.locator("tr", has_text="請求書を差替(ブラウザ)")
    expect(row).to_contain_text("帳票データ(CSV)")
    expect(row).to_contain_text("設定済み(••••••••)")
    assert demo.token not in page.content()

    # Attach it to a menu: メニュー設定 › 設定 › システム連携設定 › 設定 → 処理, 追加, 確定.
    page.goto(f"{live_server}/dbs/2/settings")
    page.locator("tr", has_text="請求書一覧").get_by_role("link", name="設定").click()
    page.get_by_role("link", name="設定", exact=True).click()
    page.get_by_label("処理").select_option(label="請求書を差替(ブラウザ)(帳票データ(CSV))")
    page.get_by_role("button", name="追加").click()
    expect(page.locator("#menu-integrations-body")).to_contain_text("請求書を差替(ブラウザ)")
    page.get_by_role("button", name="確定").click()
    expect(page.locator(".flash-success")).to_contain_text("システム連携設定を保存しました")

    page.get_by_role("complementary", name="左パネル").get_by_role("link", name="請求書一覧").click()
    page.locator("summary", has_text="サブメニュー").click()
    expect(page.get_by_role("menuitem", name=re.compile(re.escape("請求書を差替(ブラウザ)")))).to_be_visible()


def test_run_from_the_record_list_watch_it_complete_and_download_the_csv(page, live_server, demo, worker):
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, live_server, "user")
    page.get_by_role("complementary", name="左パネル").get_by_role("link", name="楽楽明細 未連携顧客").click()
    expect(page.locator("#record-count")).to_contain_text("30件中")
    page.locator("summary", has_text="サブメニュー").click()
    page.get_by_role("menuitem", name=re.compile("楽楽明細へ顧客を連携")).click()

    dialog = page.locator("#run-dialog dialog")
    expect(dialog).to_contain_text("メモ(任意)")
    dialog.get_by_role("button", name="プレビュー").click()
    expect(dialog).to_contain_text("プレビュー(送信はしていません)")
    expect(dialog.locator(".csv-preview")).to_contain_text('"顧客コード","顧客名"')
    dialog.locator("#memo").fill("ブラウザから実行")
    dialog.get_by_role("button", name="実行").click()

    progress = page.locator(".run-progress")
    expect(progress).to_contain_text("完了", timeout=30_000)
    expect(progress).to_contain_text("成功 30件")
    page.screenshot(path=str(SHOTS / "run_completed.png"))
    page.get_by_role("link", name="詳細を見る").click()

    expect(page.locator("main")).to_contain_text("ブラウザから実行")
    expect(page.locator(".card.call")).to_contain_text("完了")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"run\d+_001\.csv")).click()
    csv_bytes = Path(download_info.value.path()).read_bytes()
    assert csv_bytes.decode("cp932").startswith('"顧客コード","顧客名"')
    assert csv_bytes.count(b"\r\n") == 31
    page.screenshot(path=str(SHOTS / "run_detail.png"), full_page=True)
    assert [i["params"]["importProcessName"] for i in demo.imports()] == ["ブラウザから実行"]


def test_pdf_csv_run_and_the_pdfs_in_the_emulator_ui(page, live_server, demo, worker):
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, live_server, "user")
    panel = page.get_by_role("complementary", name="左パネル")
    for menu_name, integration in (("楽楽明細 未連携顧客", "楽楽明細へ顧客を連携"),
                                   ("楽楽明細 送信待ち請求書", "楽楽明細へ請求書を発行(PDF+CSV)")):
        panel.get_by_role("link", name=menu_name).click()
        page.locator("summary", has_text="サブメニュー").click()
        page.get_by_role("menuitem", name=re.compile(re.escape(integration))).click()
        page.locator("#run-dialog dialog").get_by_role("button", name="実行").click()
        expect(page.locator(".run-progress .status-badge")).to_have_text("完了", timeout=60_000)
        page.locator("[data-close-dialog]").first.click()

    # What 楽楽明細 received: documents with their PDFs.
    page.goto(f"{demo.root_url}demo/backadmin/")
    page.get_by_role("link", name="帳票一覧").click()
    first_document = page.locator("table tbody tr").first
    expect(first_document).to_contain_text("発行済")
    first_document.get_by_role("link").first.click()
    pdf_link = page.get_by_role("link", name=re.compile(r"\.pdf$"))
    expect(pdf_link.first).to_be_visible()
    response = page.request.get(pdf_link.first.get_attribute("href") if pdf_link.first.get_attribute("href").startswith("http")
                                else demo.root_url.rstrip("/") + pdf_link.first.get_attribute("href"))
    assert response.headers["content-type"].startswith("application/pdf")
    assert response.body().startswith(b"%PDF")
    page.screenshot(path=str(SHOTS / "emulator_document.png"), full_page=True)
