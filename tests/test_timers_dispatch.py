"""The timer dispatcher: priority order, exactly once per slot, catch-up, ordinary runs — against the emulator.

Clocks are injected (`dispatch(now=...)`); the slots are minutes of 2030, far from the real clock. Process tests
start real worker/dispatcher processes on the real Redis and the test database; one test runs the real
scheduler and waits for a real minute.
"""

from __future__ import annotations

import multiprocessing
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import start_worker, stop_process, wait_until
from redis import Redis
from rq import Queue
from rq_scheduler import Scheduler
from sqlalchemy import func, insert, select, text

from webapp.core.clock import as_utc, utcnow
from webapp.extensions import db
from webapp.runs.models import Run
from webapp.timers.models import SlotOutcome, Timer, TimerSlot
from webapp.timers.schedule import Kind

TOKYO = ZoneInfo("Asia/Tokyo")
# 09:00 in Tokyo on Monday 2030-06-03 is 00:00 UTC.
NINE = datetime(2030, 6, 3, 0, 0, tzinfo=UTC)
CODE_AND_NAME_FORMAT = 2


# ---- test data -----------------------------------------------------------------------------------------------


@pytest.fixture
def own_queue(app):
    """This test's own RQ queues, and run ids from a random offset: RQ job ids are run-<id>, and another test
    session on the same Redis DB must neither reach our workers nor share our job ids. Purged after."""
    from webapp.timers.scheduler import dispatch_queue_name

    app.config["RQ_QUEUE"] = f"timers-test-{uuid.uuid4().hex[:10]}"
    first_id = random.randrange(10**6, 10**9)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval('runs_id_seq', :n)"), {"n": first_id})
        else:
            db.session.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', :n)"), {"n": first_id})
        db.session.commit()
    yield app.config["RQ_QUEUE"]
    connection = Redis.from_url(app.config["REDIS_URL"])
    names = (app.config["RQ_QUEUE"], dispatch_queue_name(app.config))
    for name in names:
        queue = Queue(name, connection=connection)
        registries = (queue.started_job_registry, queue.finished_job_registry, queue.failed_job_registry,
                      queue.deferred_job_registry, queue.scheduled_job_registry, queue.canceled_job_registry)
        for job_id in set(queue.job_ids).union(*(registry.get_job_ids() for registry in registries)):
            if (connection.hget(f"rq:job:{job_id}", "origin") or name.encode()).decode() in names:
                connection.delete(f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:job:{job_id}:dependents",
                                  f"rq:job:{job_id}:dependencies")
        queue.delete(delete_jobs=True)
        for key in connection.scan_iter(match=f"rq:*{name}*"):
            connection.delete(key)


def build_customers(app, base_url: str, token: str, groups=(("S", 10), ("M", 100), ("L", 890))) -> dict:
    """DB 取引先: 顧客コード, 顧客名, グループ; menus Sグループ (10), Mグループ (100), 全件 (1000); one 顧客データ
    setting attached to each menu."""
    from webapp.databases.models import Record
    from webapp.databases.operations import (
        FieldSpec,
        FilterSpec,
        MenuSpec,
        add_field,
        build_search_text,
        create_database,
        create_menu,
    )
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting, set_menu_integrations

    with app.app_context():
        database = create_database("取引先", "タイマーのテスト用")
        code = add_field(database, FieldSpec("顧客コード", "text", required=True))
        name = add_field(database, FieldSpec("顧客名", "text"))
        group = add_field(database, FieldSpec("グループ", "select", options=[g for g, _ in groups]))
        rows, number = [], 0
        for label, count in groups:
            for _ in range(count):
                number += 1
                data = {code.key: f"T{number:05d}", name.key: f"株式会社タイマー{number}", group.key: label}
                rows.append({"database_id": database.id, "data": data, "details": [],
                             "search_text": build_search_text(data, [])})
        db.session.execute(insert(Record), rows)
        db.session.commit()
        menus = {}
        for label, filters in (("Sグループ", [FilterSpec(group.id, "eq", "S")]),
                               ("Mグループ", [FilterSpec(group.id, "eq", "M")]), ("全件", [])):
            menus[label] = create_menu(database, MenuSpec(name=label, column_field_ids=[code.id, name.id],
                                                          filters=filters, sort_field_id=code.id))
        settings = {}
        for label, menu in menus.items():
            setting = save_setting(database, SettingValues(
                name=f"顧客連携 {label}", base_url=base_url, token=token, data_kind=DataKind.CUSTOMER,
                import_setting_id=CODE_AND_NAME_FORMAT))
            set_menu_integrations(menu, [setting.id])
            settings[label] = setting.id
        db.session.commit()
        return {"database": database.id, "menus": {k: m.id for k, m in menus.items()}, "settings": settings}


@pytest.fixture
def world(app, users, emulator):
    from meisai_emulator.tenants import add_customer_import_format

    add_customer_import_format(emulator.app.extensions["meisai_emulator"].store, emulator.account,
                               CODE_AND_NAME_FORMAT, "顧客コードと顧客名", ["顧客コード", "顧客名"])
    return build_customers(app, emulator.base_url, emulator.token)


def make_timer(app, setting_id: int, *, menu_id: int | None, priority: int = 0, kind: Kind = Kind.DAILY,
               at: time = time(9, 0), saved_at: datetime = NINE - timedelta(hours=1), enabled: bool = True,
               **schedule) -> int:
    from webapp.integrations.models import IntegrationSetting
    from webapp.timers.operations import TimerValues, save_timer

    with app.app_context():
        setting = db.session.get(IntegrationSetting, setting_id)
        timer = save_timer(setting, TimerValues(enabled=enabled, priority=priority, kind=kind, at=at, menu_id=menu_id,
                                                **schedule), now=saved_at)
        return timer.id


def dispatch_at(app, now: datetime, enqueue: bool = False):
    from webapp.timers.dispatcher import dispatch

    with app.app_context():
        return dispatch(now, enqueue=enqueue)


def execute_all(app, run_ids: list[int]) -> None:
    from webapp.runs.engine import execute_run

    with app.app_context():
        for run_id in run_ids:
            execute_run(run_id)


def slots_of(app, timer_id: int) -> list[TimerSlot]:
    with app.app_context():
        slots = db.session.execute(
            select(TimerSlot).where(TimerSlot.timer_id == timer_id).order_by(TimerSlot.scheduled_at)
        ).scalars().all()
        db.session.expunge_all()
        return slots


def run_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Run)).scalar_one()


def wait_for_runs(app, count: int, timeout: float, processes, logs) -> list[Run]:
    """Poll the database until `count` runs are final (the processes work on their own clock)."""
    def final_runs():
        with app.app_context():
            db.session.expire_all()
            runs = db.session.execute(select(Run).order_by(Run.id)).scalars().all()
            if len(runs) >= count and not any(r.is_active for r in runs):
                db.session.expunge_all()
                return runs
        if any(p.poll() is not None for p in processes):
            pytest.fail(f"a process exited\n{logs_of(logs)}")
        return None

    return wait_until(final_runs, timeout, interval=0.25, message=lambda: f"runs did not finish\n{logs_of(logs)}")


def logs_of(logs) -> str:
    return "\n".join(f"--- {p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


# ---- ordering ------------------------------------------------------------------------------------------------


def test_due_timers_run_one_after_another_by_priority_then_fewer_records(app, world, own_queue, tmp_path):
    s = world["settings"]
    m = world["menus"]
    t_5_100 = make_timer(app, s["Mグループ"], menu_id=m["Mグループ"], priority=5)
    t_5_10 = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], priority=5)
    t_9_1000 = make_timer(app, s["全件"], menu_id=m["全件"], priority=9)

    result = dispatch_at(app, NINE + timedelta(seconds=4), enqueue=True)
    assert len(result.runs) == 3

    # Two workers at once: only the dependency chain keeps the runs from overlapping.
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [start_worker(app, log_path=log) for log in logs]
    try:
        runs = wait_for_runs(app, 3, 120, workers, logs)
    finally:
        for worker in workers:
            stop_process(worker)

    by_start = sorted(runs, key=lambda r: r.started_at)
    with app.app_context():
        slot_of = {slot.run_id: slot.timer_id for slot in db.session.execute(select(TimerSlot)).scalars()}
    assert [slot_of[r.id] for r in by_start] == [t_9_1000, t_5_10, t_5_100]
    assert [r.record_count for r in by_start] == [1000, 10, 100]
    for earlier, later in zip(by_start, by_start[1:], strict=False):
        assert as_utc(earlier.finished_at) <= as_utc(later.started_at), "timer runs overlapped"
    assert all(r.status == "completed" and r.trigger == "timer" and r.executor_id is None for r in runs), \
        [(r.status, r.error_message) for r in runs]


def test_ordering_counts_records_at_dispatch_time(app, world):
    """Equal priority: the one with fewer records right now goes first, whatever the menu names."""
    s, m = world["settings"], world["menus"]
    big = make_timer(app, s["全件"], menu_id=m["全件"], priority=1)
    small = make_timer(app, s["Mグループ"], menu_id=m["Mグループ"], priority=1)
    result = dispatch_at(app, NINE)
    with app.app_context():
        first, second = (db.session.get(Run, run_id) for run_id in result.runs)
        assert (first.record_count, second.record_count) == (100, 1000)
        assert first.id < second.id
    assert [slot.record_count for slot in slots_of(app, small)] == [100]
    assert [slot.record_count for slot in slots_of(app, big)] == [1000]


# ---- exactly once --------------------------------------------------------------------------------------------


def _dispatch_in_own_process(config: dict, instance: str, now_iso: str, barrier, answers) -> None:
    """A second, independent dispatcher process: its own app, connections and Redis client."""
    from webapp import create_app
    from webapp.timers.dispatcher import dispatch

    app = create_app(config, instance_path=instance)
    with app.app_context():
        db.session.execute(select(1))  # connected before the start signal, so both really start together
        barrier.wait(timeout=60)
        answers.put(dispatch(datetime.fromisoformat(now_iso), enqueue=True).runs)


def test_two_dispatcher_processes_racing_on_one_minute_make_one_run_per_slot(app, world, own_queue, tmp_path):
    s, m = world["settings"], world["menus"]
    timers = [make_timer(app, s[label], menu_id=m[label], priority=p)
              for label, p in (("Sグループ", 1), ("Mグループ", 2), ("全件", 3))]
    config = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "REDIS_URL", "RQ_QUEUE",
                                               "FILES_DIR", "TIMEZONE", "PASSWORD_HASH_METHOD")}
    config.update(APP_ENV="test", TESTING=True)
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_dispatch_in_own_process,
                                 args=(config, str(tmp_path / f"instance{i}"), (NINE + timedelta(seconds=1)).isoformat(),
                                       barrier, answers))
                 for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    created = answers.get(timeout=5) + answers.get(timeout=5)

    assert len(created) == 3 and len(set(created)) == 3  # between them, one run per slot
    assert run_count(app) == 3
    for timer_id in timers:
        slots = slots_of(app, timer_id)
        assert [(slot.scheduled_at.replace(tzinfo=UTC), slot.outcome) for slot in slots] == [(NINE, "run")]
        assert slots[0].run_id in created
    queued = Queue(own_queue, connection=Redis.from_url(app.config["REDIS_URL"]))
    jobs = queued.job_ids + queued.deferred_job_registry.get_job_ids()
    assert sorted(jobs) == sorted(f"{own_queue}-run-{run_id}" for run_id in created)


def test_a_retried_dispatcher_creates_nothing_new(app, world):
    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"])
    first = dispatch_at(app, NINE + timedelta(seconds=2))
    assert len(first.runs) == 1
    again = dispatch_at(app, NINE + timedelta(seconds=2))
    assert again.runs == [] and run_count(app) == 1
    # A job that died before recording its progress is retried from scratch: the slot row still stops it.
    with app.app_context():
        db.session.get(Timer, timer_id).checked_through = NINE - timedelta(minutes=5)
        db.session.commit()
    retried = dispatch_at(app, NINE + timedelta(seconds=30))
    assert retried.runs == [] and retried.handled_elsewhere == 0
    assert run_count(app) == 1
    assert [slot.outcome for slot in slots_of(app, timer_id)] == ["run"]


def test_restart_after_a_ten_minute_gap_catches_up_once(app, world, login):
    s, m = world["settings"], world["menus"]
    # Due 09:05; the scheduler last ran at 09:00 and comes back at 09:10.
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], at=time(9, 5), saved_at=NINE)
    dispatch_at(app, NINE)
    restart = NINE + timedelta(minutes=10, seconds=3)
    result = dispatch_at(app, restart)
    assert len(result.runs) == 1
    for minute in range(1, 4):
        assert dispatch_at(app, restart + timedelta(minutes=minute)).runs == []
    assert run_count(app) == 1
    slots = slots_of(app, timer_id)
    assert [(slot.scheduled_at.replace(tzinfo=UTC), slot.outcome) for slot in slots] == \
        [(NINE + timedelta(minutes=5), SlotOutcome.CATCH_UP)]
    with app.app_context():
        run = db.session.get(Run, result.runs[0])
        assert "キャッチアップ" in run.memo and "2030/06/03 09:05" in run.memo
        database_id = run.database_id
    page = login("editor").get(f"/dbs/{database_id}/integrations/{s['Sグループ']}/timer").get_data(as_text=True)
    assert "キャッチアップ実行" in page and "2030/06/03(月) 09:05" in page


def test_slots_older_than_an_hour_are_recorded_as_missed_not_run(app, world):
    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], at=time(9, 0),
                          saved_at=NINE - timedelta(days=3, minutes=1))
    # Down from just before 09:00 on 05-31 until 10:30 on 06-03: four daily slots, the latest 90 minutes ago.
    result = dispatch_at(app, NINE + timedelta(hours=1, minutes=30))
    assert result.runs == [] and result.missed == 4 and run_count(app) == 0
    assert [slot.outcome for slot in slots_of(app, timer_id)] == ["missed"] * 4
    assert "1時間以上前" in slots_of(app, timer_id)[0].message


def test_a_disabled_timer_never_fires_and_switching_it_on_does_not_fire_the_past(app, world):
    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], enabled=False)
    assert dispatch_at(app, NINE + timedelta(seconds=5)).runs == []
    # Switched on at 09:00:30, after the 09:00 slot: that slot is neither run nor caught up.
    make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], saved_at=NINE + timedelta(seconds=30))
    assert dispatch_at(app, NINE + timedelta(minutes=1)).runs == []
    assert slots_of(app, timer_id) == []
    assert len(dispatch_at(app, NINE + timedelta(days=1, seconds=3)).runs) == 1


# ---- timer runs are ordinary runs ------------------------------------------------------------------------------


def test_timer_run_is_an_ordinary_run_with_timer_as_executor_and_mail_to_administrators(app, demo, login,
                                                                                         smtp_server):
    from run_helpers import (
        CUSTOMER_MENU,
        CUSTOMER_SETTING,
        field_named,
        menu_named,
        records_of,
        setting_named,
    )

    with app.app_context():
        setting_id, menu_id = setting_named(CUSTOMER_SETTING).id, menu_named(CUSTOMER_MENU).id
    make_timer(app, setting_id, menu_id=menu_id)
    result = dispatch_at(app, NINE)
    execute_all(app, result.runs)
    with app.app_context():
        run = db.session.get(Run, result.runs[0])
        assert run.status == "completed", run.error_message
        assert run.executor_label == "タイマー" and run.record_count == 30
        status = field_named("顧客", "連携ステータス")
        assert all(record.data[status.key] == "連携済" for record in records_of("顧客"))
    assert [mail["to"] for mail in smtp_server.messages] == [["admin@example.co.jp"]]
    listing = login("admin").get(f"/menus/{menu_id}/runs").get_data(as_text=True)
    assert "タイマー" in listing and "完了" in listing


def test_once_timer_switches_itself_off_after_its_run(app, world):
    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], kind=Kind.ONCE, at=time(9, 0),
                          once_date=date(2030, 6, 3))
    assert len(dispatch_at(app, NINE).runs) == 1
    with app.app_context():
        timer = db.session.get(Timer, timer_id)
        assert timer.enabled is False
    assert dispatch_at(app, NINE + timedelta(days=1)).runs == []
    assert "OFF" in slots_of(app, timer_id)[0].message


def test_a_slot_whose_setting_is_still_running_is_skipped_with_the_reason(app, world):
    from webapp.integrations.models import IntegrationSetting
    from webapp.runs.operations import start_run

    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"])
    with app.app_context():
        from webapp.databases.models import Menu

        busy = start_run(db.session.get(IntegrationSetting, s["Sグループ"]), db.session.get(Menu, m["Sグループ"]),
                         executor_id=None, enqueue=False)
        busy_id = busy.id
    result = dispatch_at(app, NINE)
    assert result.runs == [] and result.skipped == 1
    assert run_count(app) == 1
    slot = slots_of(app, timer_id)[0]
    assert slot.outcome == "skipped" and slot.run_id is None and "実行中" in slot.message
    # The next slot, once the earlier run is over, fires normally.
    execute_all(app, [busy_id])
    assert len(dispatch_at(app, NINE + timedelta(days=1)).runs) == 1


def test_timer_without_menu_sends_all_fields_and_says_why_it_cannot(app, world, sample):
    """No メニュー設定: all records and fields of the DB. The 請求書 sample DB has no 顧客コード, so the slot is
    skipped with the run's own explanation instead of failing silently."""
    from webapp.integrations.models import DataKind
    from webapp.integrations.operations import SettingValues, save_setting

    with app.app_context():
        from webapp.databases.models import Database

        setting = save_setting(db.session.get(Database, sample["database"]), SettingValues(
            name="請求書(全項目)", base_url="http://127.0.0.1:9/demo/", token="t", data_kind=DataKind.CUSTOMER))
        db.session.commit()
        setting_id = setting.id
    timer_id = make_timer(app, setting_id, menu_id=None)
    everything = make_timer(app, world["settings"]["全件"], menu_id=None, priority=1)
    result = dispatch_at(app, NINE)
    assert len(result.runs) == 1
    with app.app_context():
        run = db.session.get(Run, result.runs[0])
        assert run.menu_id is None and run.record_count == 1000 and len(run.column_field_ids) == 3
    skipped = slots_of(app, timer_id)[0]
    assert skipped.outcome == "skipped" and "顧客コード" in skipped.message
    assert slots_of(app, everything)[0].outcome == "run"


def test_a_deleted_menu_skips_the_slot_instead_of_sending_every_record(app, world):
    from webapp.databases.models import Menu

    s, m = world["settings"], world["menus"]
    timer_id = make_timer(app, s["Mグループ"], menu_id=m["Mグループ"])
    with app.app_context():
        db.session.delete(db.session.get(Menu, m["Mグループ"]))
        db.session.commit()
    assert dispatch_at(app, NINE).runs == []
    slot = slots_of(app, timer_id)[0]
    assert slot.outcome == "skipped" and "Mグループ" in slot.message and "削除" in slot.message


def test_dispatcher_leaves_a_heartbeat(app, world):
    from webapp.timers.operations import last_heartbeat

    with app.app_context():
        assert last_heartbeat() is None
    dispatch_at(app, NINE + timedelta(seconds=7))
    with app.app_context():
        assert last_heartbeat() == NINE + timedelta(seconds=7)


# ---- the real thing ----------------------------------------------------------------------------------------------


def test_real_scheduler_and_worker_fire_a_timer_due_next_minute(app, world, own_queue, tmp_path):
    from webapp.timers.scheduler import dispatch_job_id

    s, m = world["settings"], world["menus"]
    now = utcnow()
    slot = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    local = slot.astimezone(TOKYO)
    timer_id = make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], at=local.time(), saved_at=now)

    logs = [tmp_path / "scheduler.log", tmp_path / "worker.log"]
    processes = [start_worker(app, "--scheduler", "--interval", "1", log_path=logs[0]),
                 start_worker(app, log_path=logs[1])]
    try:
        runs = wait_for_runs(app, 1, 80, processes, logs)
    finally:
        for process in processes:
            stop_process(process)
        connection = Redis.from_url(app.config["REDIS_URL"])
        Scheduler(connection=connection).cancel(dispatch_job_id(app.config))

    assert len(runs) == 1
    run = runs[0]
    assert run.status == "completed" and run.trigger == "timer", run.error_message
    assert timedelta(0) <= as_utc(run.created_at) - slot < timedelta(seconds=30)
    slots = slots_of(app, timer_id)
    assert [(as_utc(x.scheduled_at), x.outcome, x.run_id) for x in slots] == [(slot, "run", run.id)]


def test_cli_lists_timers_and_dispatches_once_by_hand(app, world):
    s, m = world["settings"], world["menus"]
    now = utcnow()
    slot = now.replace(second=0, microsecond=0) - timedelta(minutes=10)
    make_timer(app, s["Sグループ"], menu_id=m["Sグループ"], priority=3, at=slot.astimezone(TOKYO).time(),
               saved_at=now - timedelta(minutes=20))
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["timers", "list"])
    assert listing.exit_code == 0 and "優先度   3" in listing.output and "顧客連携 Sグループ" in listing.output
    dispatched = runner.invoke(args=["timers", "dispatch", "--no-enqueue"])
    assert dispatched.exit_code == 0, dispatched.output
    assert "実行 1件" in dispatched.output and "completed" in dispatched.output
    assert "実行 0件" in runner.invoke(args=["timers", "dispatch", "--no-enqueue"]).output
