"""タイマー設定 in a real browser: from the 楽楽明細連携設定 list, configure a 毎週 timer and read its next run times."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import browser_login
from playwright.sync_api import expect

from webapp.extensions import db

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results"


@pytest.fixture
def setting(app, sample):
    from webapp.databases.models import Database
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting

    with app.app_context():
        setting_id = save_setting(db.session.get(Database, sample["database"]), SettingValues(
            name="請求書を楽楽明細へ", base_url="https://example.eco-serv.jp/demo/", token="secret-token",
            data_kind=DataKind.REPORT_CSV)).id
        db.session.commit()
        return setting_id


def test_configure_a_weekly_timer_and_see_its_next_run_times(page, live_server, sample, setting):
    browser_login(page, live_server, "editor")

    page.goto(f"{live_server}/dbs/{sample['database']}/integrations")
    row = page.get_by_role("row", name=re.compile("請求書を楽楽明細へ"))
    expect(row).to_contain_text("未設定")
    row.get_by_role("link", name="タイマー設定").click()
    expect(page.get_by_role("heading", name="タイマー設定「請求書を楽楽明細へ」")).to_be_visible()

    form = page.locator("#timer-form")
    form.get_by_label("ON(実行する)").check()
    page.locator("#priority").fill("5")
    expect(form.get_by_label("月", exact=True)).to_have_count(0)
    form.get_by_label("毎週").check()  # htmx redraws the form with the weekdays
    form.get_by_label("月", exact=True).check()
    form.get_by_label("木", exact=True).check()
    expect(form).to_contain_text("日本時間 (Asia/Tokyo)")
    page.locator("#at_time").fill("09:30")
    form.get_by_role("button", name="確定").click()

    expect(page.get_by_role("status")).to_contain_text("タイマー設定を保存しました")
    items = page.locator("#next-runs li")
    expect(items).to_have_count(5)
    for text in items.all_inner_texts():
        assert re.fullmatch(r"\d{4}/\d\d/\d\d\((月|木)\) 09:30", text), text
    # The form keeps what was saved.
    expect(form.get_by_label("毎週")).to_be_checked()
    expect(form.get_by_label("木", exact=True)).to_be_checked()
    expect(form.get_by_label("火", exact=True)).not_to_be_checked()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "timer_settings.png"), full_page=True)

    page.get_by_role("link", name=re.compile("楽楽明細連携設定")).first.click()
    row = page.get_by_role("row", name=re.compile("請求書を楽楽明細へ"))
    expect(row).to_contain_text("ON")
    expect(row).to_contain_text("毎週 月・木 09:30")
    expect(row).to_contain_text("次回")
