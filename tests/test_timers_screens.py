"""タイマー設定 screen: the form per schedule kind, validation at the field, next run times, permissions, audit,
and the タイマー column of the 楽楽明細連携設定 list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from webapp.core.audit import AuditEntry
from webapp.extensions import db
from webapp.timers.models import SlotOutcome, Timer, TimerSlot

HTMX = {"HX-Request": "true", "HX-Target": "timer-form-body"}


@pytest.fixture
def setting(app, sample):
    """A 楽楽明細連携設定 on the sample 請求書 DB, attached to its menu 請求書一覧."""
    from webapp.databases.models import Database, Menu
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations

    with app.app_context():
        created = save_setting(db.session.get(Database, sample["database"]), SettingValues(
            name="請求書を楽楽明細へ", base_url="https://example.eco-serv.jp/demo/", token="secret-token",
            data_kind=DataKind.REPORT_CSV))
        set_menu_integrations(db.session.get(Menu, sample["menu"]), [created.id])
        db.session.commit()
        return created.id


@pytest.fixture
def urls(sample, setting):
    base = f"/dbs/{sample['database']}/integrations"
    return {"timer": f"{base}/{setting}/timer", "list": base}


def form(**values) -> dict:
    data = {"menu_id": "", "enabled": "1", "priority": "0", "kind": "daily", "at_time": "09:00", "month_day": "1",
            "action": "save"}
    data.update(values)
    return data


def timer_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Timer)).scalar_one()


def next_run_items(html: str) -> list[str]:
    block = re.search(r'<ol id="next-runs">(.*?)</ol>', html, re.S)
    assert block, "no next run times on the page"
    return re.findall(r"<li>(.*?)</li>", block.group(1))


def test_weekly_timer_saved_shows_the_next_five_run_times(app, login, urls):
    editor = login("editor")
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "タイマーはまだ設定されていません" in page and "日本時間 (Asia/Tokyo)" in page
    response = editor.post(urls["timer"], data=form(kind="weekly", weekdays=["0", "3"], at_time="09:30"))
    assert response.status_code == 302
    page = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert "タイマー設定を保存しました" in page
    items = next_run_items(page)
    assert len(items) == 5
    assert all(re.fullmatch(r"\d{4}/\d\d/\d\d\((月|木)\) 09:30", item) for item in items), items
    assert {"(月)", "(木)"} <= {item[10:13] for item in items}
    # The list shows the timer instead of 未設定.
    listing = editor.get(urls["list"]).get_data(as_text=True)
    assert "毎週 月・木 09:30" in listing and "次回" in listing and "未設定" not in listing
    assert "タイマー設定" in listing


def test_switch_is_labelled_with_its_effect_and_off_says_nothing_will_run(app, login, urls):
    editor = login("editor")
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "ON(実行する)" in page and "OFF(実行しない)" in page
    editor.post(urls["timer"], data=form(enabled="0"))
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "タイマースイッチがOFF(実行しない)のため、下の予定は実行されません" in page
    listing = editor.get(urls["list"]).get_data(as_text=True)
    assert ">OFF<" in listing and "毎日 09:00" in listing


def test_once_in_the_past_is_refused_at_the_field_and_nothing_is_saved(app, login, urls):
    editor = login("editor")
    response = editor.post(urls["timer"], data=form(kind="once", once_date="2020-01-01", at_time="10:00"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "過去の日時は指定できません" in html and "保存はされていません" in html
    assert re.search(r'id="once_date-errors"', html)
    assert timer_count(app) == 0
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert editor.post(urls["timer"], data=form(kind="once", once_date=future, at_time="10:00")).status_code == 302
    items = next_run_items(editor.get(urls["timer"]).get_data(as_text=True))
    assert len(items) == 1 and items[0].startswith(future.replace("-", "/")) and items[0].endswith("10:00")


@pytest.mark.parametrize("values, field, message", [
    ({"kind": "weekly"}, "weekdays", "曜日を1つ以上選んでください"),
    ({"priority": "高い"}, "priority", "0〜999の整数"),
    ({"priority": "1000"}, "priority", "0〜999の整数"),
    ({"at_time": "25:00"}, "at_time", "時刻を 時:分"),
    ({"at_time": ""}, "at_time", "時刻を 時:分"),
    ({"kind": "once", "once_date": "明日"}, "once_date", "実行日を 年-月-日"),
    ({"kind": "monthly", "month_day": "32"}, "month_day", "1〜31日または末日"),
    ({"menu_id": "9999"}, "menu_id", "このDBのレコード一覧メニューから選んでください"),
])
def test_invalid_values_are_explained_at_their_field(app, login, urls, values, field, message):
    response = login("editor").post(urls["timer"], data=form(**values))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = re.search(rf'<ul class="errors" id="{field}-errors">(.*?)</ul>', html, re.S)
    assert errors and message in errors.group(1), html[-3000:]
    assert timer_count(app) == 0


def test_full_width_digits_are_accepted(app, login, urls):
    assert login("editor").post(urls["timer"], data=form(priority="１２", at_time="０８：１５")).status_code == 302
    with app.app_context():
        timer = db.session.execute(select(Timer)).scalar_one()
        assert (timer.priority, timer.at_time) == (12, "08:15")


def test_changing_the_kind_redraws_the_form_without_saving(app, login, urls):
    response = login("editor").post(urls["timer"], data=form(kind="monthly", action="refresh"), headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="timer-form-body">')
    assert 'name="month_day"' in html and "末日" in html and "その月の末日に実行します" in html
    assert 'name="weekdays"' not in html and 'name="once_date"' not in html
    weekly = login("editor").post(urls["timer"], data=form(kind="weekly", action="refresh"), headers=HTMX)
    assert weekly.get_data(as_text=True).count('name="weekdays"') == 7
    assert timer_count(app) == 0


def test_monthly_last_day_and_a_day_some_months_lack(app, login, urls):
    editor = login("editor")
    editor.post(urls["timer"], data=form(kind="monthly", month_day="last", at_time="18:00"))
    items = next_run_items(editor.get(urls["timer"]).get_data(as_text=True))
    for item in items:
        day = datetime.strptime(item[:10], "%Y/%m/%d")
        assert (day + timedelta(days=1)).day == 1, items  # every one is a month's last day
    editor.post(urls["timer"], data=form(kind="monthly", month_day="31", at_time="18:00"))
    items = next_run_items(editor.get(urls["timer"]).get_data(as_text=True))
    assert len({item[:7] for item in items}) == 5  # one per month, short months included


def test_menu_setting_offers_the_menus_this_integration_is_on(app, login, urls, sample):
    editor = login("editor")
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "指定しない(全レコード・全項目)" in page and "請求書一覧" in page
    assert editor.post(urls["timer"], data=form(menu_id=str(sample["menu"]))).status_code == 302
    with app.app_context():
        assert db.session.execute(select(Timer.menu_id)).scalar_one() == sample["menu"]


def test_changes_are_audited_with_before_and_after(app, login, urls):
    editor = login("editor")
    editor.post(urls["timer"], data=form(priority="3"))
    editor.post(urls["timer"], data=form(priority="7", kind="weekly", weekdays=["4"], at_time="17:00"))
    editor.post(urls["timer"], data=form(priority="7", kind="weekly", weekdays=["4"], at_time="17:00"))  # no change
    with app.app_context():
        entries = db.session.execute(
            select(AuditEntry).where(AuditEntry.target_type == "タイマー設定").order_by(AuditEntry.id)
        ).scalars().all()
        assert [e.action for e in entries] == ["create", "update"]
        assert entries[1].changes["タイマー優先度"] == ["3", "7"]
        assert entries[1].changes["タイマー起動スケジュール"] == ["毎日 09:00", "毎週 金 17:00"]
        assert entries[1].target_label == "請求書を楽楽明細へ" and entries[1].user.username == "editor"


def test_only_users_with_db_settings_and_system_integration_may_see_or_change(app, login, urls):
    plain = login("plain")
    assert plain.get(urls["timer"]).status_code == 403
    assert plain.post(urls["timer"], data=form()).status_code == 403
    assert timer_count(app) == 0
    assert login("admin").get(urls["timer"]).status_code == 200


def test_a_post_without_csrf_token_is_refused(app, login, urls):
    editor = login("editor")
    response = editor.client.post(urls["timer"], data=form())
    assert response.status_code == 400 and timer_count(app) == 0


def test_history_shows_last_fired_and_every_slot_outcome(app, login, urls, setting):
    editor = login("editor")
    editor.post(urls["timer"], data=form())
    with app.app_context():
        timer = db.session.execute(select(Timer)).scalar_one()
        base = datetime(2030, 6, 3, 0, 0, tzinfo=UTC)
        db.session.add_all([
            TimerSlot(timer_id=timer.id, scheduled_at=base - timedelta(days=2), outcome=SlotOutcome.MISSED,
                      message="スケジューラが停止していました"),
            TimerSlot(timer_id=timer.id, scheduled_at=base - timedelta(days=1), outcome=SlotOutcome.SKIPPED,
                      record_count=3, priority=0, message="この連携は実行待ちまたは実行中です。"),
            TimerSlot(timer_id=timer.id, scheduled_at=base, outcome=SlotOutcome.CATCH_UP, record_count=1, priority=0),
        ])
        db.session.commit()
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "最終実行: 2030/06/03(月) 09:00の予定 → キャッチアップ実行" in page
    history = page[page.index('id="slot-history"'):]
    assert history.index("キャッチアップ実行") < history.index("スキップ") < history.index("見逃し")
    assert "この連携は実行待ちまたは実行中です。" in history


def test_unknown_setting_is_a_japanese_404(app, login, sample):
    response = login("editor").get(f"/dbs/{sample['database']}/integrations/9999/timer")
    assert response.status_code == 404 and "楽楽明細連携設定は存在しない" in response.get_data(as_text=True)


def test_any_record_list_menu_of_the_db_may_be_chosen_but_not_another_dbs(app, login, urls, sample):
    """A timer sends what a menu of its own DB shows, attached to the integration or not."""
    from webapp.databases.models import Database
    from webapp.databases.operations import FieldSpec, MenuSpec, add_field, create_database, create_menu

    with app.app_context():
        database = db.session.get(Database, sample["database"])
        unattached = create_menu(database, MenuSpec(name="別の一覧", column_field_ids=[sample["fields"]["請求番号"]]))
        other_db = create_database("別DB")
        other_field = add_field(other_db, FieldSpec("顧客コード", "text"))
        foreign = create_menu(other_db, MenuSpec(name="他DBの一覧", column_field_ids=[other_field.id]))
        db.session.commit()
        unattached_id, foreign_id = unattached.id, foreign.id
    editor = login("editor")
    page = editor.get(urls["timer"]).get_data(as_text=True)
    select_html = page[page.index('name="menu_id"'):]
    select_html = select_html[: select_html.index("</select>")]
    assert "別の一覧" in select_html and "他DBの一覧" not in select_html
    assert editor.post(urls["timer"], data=form(menu_id=str(unattached_id))).status_code in (200, 302)
    with app.app_context():
        assert db.session.execute(select(Timer)).scalar_one().menu_id == unattached_id
    html = editor.post(urls["timer"], data=form(menu_id=str(foreign_id), priority="4")).get_data(as_text=True)
    assert "このDBのレコード一覧メニューから選んでください" in html
    with app.app_context():
        timer = db.session.execute(select(Timer)).scalar_one()
        assert (timer.menu_id, timer.priority) == (unattached_id, 0)


def test_a_deleted_menu_is_reported_on_the_timer_screen(app, login, urls, sample):
    from webapp.databases.models import Menu

    editor = login("editor")
    editor.post(urls["timer"], data=form(menu_id=str(sample["menu"])))
    with app.app_context():
        db.session.delete(db.session.get(Menu, sample["menu"]))
        db.session.commit()
    page = editor.get(urls["timer"]).get_data(as_text=True)
    assert "メニュー設定のメニュー「請求書一覧」が削除されたため" in page


def test_the_screen_warns_when_the_scheduler_is_not_running(app, login, urls):
    from webapp.core.clock import utcnow
    from webapp.timers.operations import beat

    editor = login("editor")
    assert "タイマーのスケジューラが動いていない" in editor.get(urls["timer"]).get_data(as_text=True)
    with app.app_context():
        beat(utcnow() - timedelta(minutes=5))
    assert "タイマーのスケジューラが動いていない" in editor.get(urls["timer"]).get_data(as_text=True)
    with app.app_context():
        beat(utcnow())
    assert "タイマーのスケジューラが動いていない" not in editor.get(urls["timer"]).get_data(as_text=True)
