"""タイマー設定 says what will happen: 「指定しない」 sends every record at every slot, the zone is named, and
「今すぐ実行」 runs the timer's integration once now through a real worker, as the person who pressed it."""

from __future__ import annotations

import test_timers_dispatch as dispatch_tests
from helpers import start_worker, stop_process
from sqlalchemy import func, select
from test_timers_dispatch import make_timer, wait_for_runs

from webapp.extensions import db
from webapp.runs.models import Run
from webapp.timers.models import TimerSlot

# The timer tests' fixtures: DB 取引先 with menus Sグループ (10), Mグループ (100), 全件 (1000); own RQ queues.
world = dispatch_tests.world
own_queue = dispatch_tests.own_queue

HTMX = {"HX-Request": "true", "HX-Target": "timer-form-body"}


def timer_url(world, label: str) -> str:
    return f"/dbs/{world['database']}/integrations/{world['settings'][label]}/timer"


def test_without_a_menu_the_screen_warns_that_every_record_is_sent_every_time(app, world, login):
    editor = login("editor")
    page = editor.get(timer_url(world, "全件")).get_data(as_text=True)
    warning = page.split('id="timer-whole-db-warning"')[1].split("</div>")[0]
    assert "全レコード(1,000件)" in warning and "連携済のレコードも毎回送られます" in warning
    assert "「Sグループ」" in warning and "「Mグループ」" in warning  # the menus with a filter, as suggestions
    assert "「全件」" not in warning
    # Choosing a menu (htmx redraw of the form) takes the warning away; nothing is saved.
    chosen = editor.post(timer_url(world, "全件"), headers=HTMX, data={
        "menu_id": str(world["menus"]["Sグループ"]), "enabled": "0", "priority": "0", "kind": "daily",
        "at_time": "09:00", "action": "refresh"}).get_data(as_text=True)
    assert "timer-whole-db-warning" not in chosen and "<html" not in chosen


def test_the_zone_is_named_japan_time_or_the_configured_zone(app, world, login):
    page = login("editor").get(timer_url(world, "全件")).get_data(as_text=True)
    assert "日本時間 (Asia/Tokyo)" in page
    app.config["TIMEZONE"] = "Europe/Berlin"
    page = login("editor").get(timer_url(world, "全件")).get_data(as_text=True)
    assert "Europe/Berlin (UTC+0" in page and "日本時間" not in page


def test_run_now_is_a_post_for_timer_editors_only(app, world, login):
    make_timer(app, world["settings"]["Sグループ"], menu_id=world["menus"]["Sグループ"])
    url = timer_url(world, "Sグループ") + "/run-now"
    assert login("plain").post(url).status_code == 403
    assert login("editor").get(url).status_code == 405
    assert login("editor").client.post(url, data={}).status_code == 400  # no CSRF token
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Run)).scalar_one() == 0


def test_run_now_without_a_timer_says_so(app, world, login):
    editor = login("editor")
    response = editor.post(timer_url(world, "Mグループ") + "/run-now")
    assert response.status_code == 302 and response.headers["Location"].endswith(timer_url(world, "Mグループ"))
    assert "タイマーがまだ設定されていません" in editor.get(timer_url(world, "Mグループ")).get_data(as_text=True)


def test_run_now_runs_the_timers_menu_once_through_a_real_worker_as_the_person(app, world, own_queue, login,
                                                                              emulator, tmp_path):
    # The timer is OFF and due in a year: 今すぐ実行 does not wait for either.
    make_timer(app, world["settings"]["Sグループ"], menu_id=world["menus"]["Sグループ"], enabled=False)
    editor = login("editor")
    page = editor.get(timer_url(world, "Sグループ")).get_data(as_text=True)
    assert "今すぐ実行" in page and "メニュー設定「Sグループ」" in page
    response = editor.post(timer_url(world, "Sグループ") + "/run-now")
    assert response.status_code == 302
    logs = [tmp_path / "worker.log"]
    workers = [start_worker(app, log_path=logs[0])]
    try:
        runs = wait_for_runs(app, 1, 60, workers, logs)
    finally:
        for worker in workers:
            stop_process(worker)
    run = runs[0]
    assert response.headers["Location"].endswith(f"/runs/{run.id}")
    assert run.status == "completed", run.error_message
    assert (run.trigger, run.menu_id, run.record_count) == ("timer_now", world["menus"]["Sグループ"], 10)
    with app.app_context():
        assert db.session.get(Run, run.id).executor_label == "設定 花子"
        assert db.session.execute(select(func.count()).select_from(TimerSlot)).scalar_one() == 0  # not a slot
    assert sorted(imp["kind"] for imp in emulator.imports()) == ["customers"]
    detail = editor.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "設定 花子" in detail and "今すぐ実行" in detail and "完了" in detail
