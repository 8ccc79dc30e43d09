"""The レコード一覧 in a real browser: log in, open a menu, search, page, go back, sort; and what a normal user
may not see. Headless Debian Chromium through Playwright, against the app served over HTTP (live_server).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results"


@pytest.fixture
def demo(app):
    """The demo installation: admin/admin, user/user, DBs 顧客 (120 records) and 請求書 (60) with menus."""
    from webapp.demo import seed_demo
    from webapp.extensions import db

    with app.app_context():
        assert seed_demo(customer_count=120, invoice_count=60)
        db.session.commit()


def rows(page):
    return page.locator("#record-table tbody tr")


def first_row_code(page) -> str:
    # Column 1 is No., column 2 the menu's first column 顧客コード.
    return rows(page).first.locator("td").nth(1).inner_text()


def test_record_list_search_paging_back_and_sort(page, live_server, demo):
    browser_login(page, live_server, "admin", "admin")
    panel = page.get_by_role("complementary", name="左パネル")
    expect(panel.get_by_text("顧客", exact=True)).to_be_visible()
    expect(panel.get_by_role("link", name="請求書一覧", exact=True)).to_be_visible()

    panel.get_by_role("link", name="顧客一覧", exact=True).click()
    expect(page.get_by_role("heading", name="顧客一覧")).to_be_visible()
    expect(page.locator("#record-count")).to_have_text("120件中 1〜50件を表示")
    expect(rows(page)).to_have_count(50)
    assert first_row_code(page) == "C00001"
    expect(page.locator("#record-table thead")).to_contain_text("顧客名")

    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "record_list.png"), full_page=False)

    # From here on, a full page load would lose this marker: paging and search must swap the list only.
    page.evaluate("window.__sameDocument = 'kept'")
    list_url = page.url

    page.get_by_role("link", name="次へ ›").first.click()
    expect(page.locator("#record-count")).to_have_text("120件中 51〜100件を表示")
    expect(rows(page)).to_have_count(50)
    assert first_row_code(page) == "C00051"
    expect(page).to_have_url(re.compile(r"page=2"))
    assert page.evaluate("window.__sameDocument") == "kept"

    # Back reloads the previous list from the server: htmx keeps no snapshot of business data in the browser.
    page.go_back()
    expect(page.locator("#record-count")).to_have_text("120件中 1〜50件を表示")
    expect(page).to_have_url(list_url)
    assert first_row_code(page) == "C00001"
    assert page.evaluate("sessionStorage.getItem('htmx-history-cache')") in (None, "[]")
    page.evaluate("window.__sameDocument = 'kept'")

    search = page.locator("#keyword")
    search.click()
    search.press_sequentially("富士")
    expect(page.locator("#record-count")).to_contain_text("(「富士」で検索)")
    count_text = page.locator("#record-count").inner_text()
    narrowed = int(re.match(r"(\d+)件中", count_text).group(1))
    assert 0 < narrowed < 120
    texts = rows(page).all_inner_texts()
    assert len(texts) == min(narrowed, 50)
    assert all("富士" in text for text in texts), texts
    expect(page).to_have_url(re.compile(r"[?&]q="))
    assert page.evaluate("window.__sameDocument") == "kept"
    page.screenshot(path=str(SCREENSHOTS / "record_list_search.png"), full_page=False)

    # Clear the search, then sort by clicking the header of the sorted column: ascending becomes descending.
    search.fill("")
    search.press("Enter")
    expect(page.locator("#record-count")).to_have_text("120件中 1〜50件を表示")
    header = page.locator("#record-table thead th", has_text="顧客コード")
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(header).to_contain_text("▼")
    expect(rows(page).first.locator("td").nth(1)).to_have_text("C00120")
    codes = [row.locator("td").nth(1).inner_text() for row in rows(page).all()]
    assert codes == sorted(codes, reverse=True)

    # A search after sorting keeps the chosen sort.
    search.press_sequentially("C0011")
    expect(page.locator("#record-count")).to_contain_text("(「C0011」で検索)")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows(page).first.locator("td").nth(1)).to_have_text("C00119")
    assert page.evaluate("window.__sameDocument") == "kept"


def test_normal_user_sees_no_db_settings_and_gets_japanese_403(page, live_server, demo):
    browser_login(page, live_server, "user")
    panel = page.get_by_role("complementary", name="左パネル")
    expect(panel.get_by_role("link", name="顧客一覧", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="DB設定")).to_have_count(0)
    expect(page.get_by_role("link", name="＋ DBを作成")).to_have_count(0)

    response = page.goto(f"{live_server}/dbs/1/settings")
    assert response.status == 403
    expect(page.get_by_role("heading", name="権限がありません")).to_be_visible()
    expect(page.locator("main")).to_contain_text("「DB設定」権限が必要です")
