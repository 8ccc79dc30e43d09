"""Faults during a run end in a correct, explained state, and nothing is sent twice."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port
from redis import Redis
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    add_customers,
    execute,
    import_totals,
    menu_named,
    setting_named,
    worker_env,
)
from sqlalchemy import create_engine, text

from webapp.extensions import db
from webapp.runs.models import CallStatus, Run, RunStatus
from webapp.runs.operations import recover_runs, start_run

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def call_status(app, run_id, index=1):
    """Read a call's state through a separate connection, as another process would see it."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return connection.execute(text('SELECT status FROM run_calls WHERE run_id = :r AND "index" = :i'),
                                      {"r": run_id, "i": index}).scalar()
    finally:
        engine.dispose()


def run_in_thread(app, run_id):
    def target():
        with app.app_context():
            from webapp.runs.engine import execute_run

            execute_run(run_id)

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def new_run(app):
    with app.app_context():
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        return run.id


def test_maintenance_during_polling_is_waited_out(app, demo):
    demo.set_faults(import_delay_s=2.0)  # the import stays 取込中 long enough to poll through maintenance
    run_id = new_run(app)
    thread = run_in_thread(app, run_id)
    wait_for(lambda: call_status(app, run_id) == CallStatus.ACCEPTED)
    demo.set_faults(maintenance="json")
    time.sleep(0.6)  # several polls answered 503
    demo.reset_faults()
    thread.join(timeout=30)
    with app.app_context():
        run = db.session.get(Run, run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        statuses = [x["http_status"] for x in run.calls[0].exchanges]
        assert 503 in statuses and statuses[-1] == 200
    assert import_totals(demo) == [30]


def test_maintenance_html_page_on_post_is_retried(app, demo):
    demo.set_faults(maintenance="html")
    run_id = new_run(app)
    thread = run_in_thread(app, run_id)
    time.sleep(0.4)
    demo.reset_faults()
    thread.join(timeout=30)
    with app.app_context():
        run = db.session.get(Run, run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert run.calls[0].exchanges[0]["http_status"] == 200  # the HTML maintenance page answers 200
        assert len(run.calls[0].exchanges) > 2
    assert import_totals(demo) == [30]


def test_server_errors_on_post_are_retried_then_succeed(app, demo):
    demo.set_faults(failure_rate=1.0, failure_status=500)
    run_id = new_run(app)
    thread = run_in_thread(app, run_id)
    time.sleep(0.3)
    demo.reset_faults()
    thread.join(timeout=30)
    with app.app_context():
        run = db.session.get(Run, run_id)
        assert run.status == RunStatus.COMPLETED
        first = run.calls[0].exchanges[0]
        assert first["http_status"] == 500 and first["method"] == "POST"
    assert import_totals(demo) == [30]  # accepted once


def test_maintenance_that_never_ends_fails_the_run_without_sending(app, demo, smtp_server):
    app.config["RUN_RETRY_TOTAL_SECONDS"] = 0.5
    demo.set_faults(maintenance="json")
    run_id = new_run(app)
    with app.app_context():
        run = execute(run_id)
        assert run.status == RunStatus.ERROR and run.http_status == 503
        assert "メンテナンス" in run.error_message
        assert run.calls[0].status == CallStatus.FAILED
    assert demo.imports() == []
    assert "エラー" in smtp_server.messages[0]["subject"]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_worker_killed_mid_run_is_shown_interrupted_and_resumes_without_resending(app, demo, login):
    with app.app_context():
        add_customers(10_005 - 30)  # two calls: 10,000 + 5 rows
    demo.set_faults(state_latency_ms=20_000)  # the worker will be inside a poll of call 1
    run_id = new_run(app)
    with app.app_context():
        from webapp.runs.operations import enqueue_run

        enqueue_run(db.session.get(Run, run_id))
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=worker_env(app, app.config["REDIS_URL"]),
                              cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: call_status(app, run_id) == CallStatus.ACCEPTED, timeout=60)
        time.sleep(0.3)
    finally:
        # The worker and its work-horse (RQ puts the horse in its own process group), no cleanup.
        doomed = [worker.pid, *descendants(worker.pid)]
        assert len(doomed) >= 2, "the work-horse running the job must be killed too"
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.wait(timeout=10)
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid) for pid in doomed), timeout=10)
    demo.reset_faults()
    app.config["RUN_STALE_SECONDS"] = 0.5
    time.sleep(0.6)
    with app.app_context():
        assert recover_runs() == [run_id]
        run = db.session.get(Run, run_id)
        assert run.status == RunStatus.INTERRUPTED and "再実行" in run.error_message
        assert [c.status for c in run.calls] == [CallStatus.ACCEPTED, CallStatus.PLANNED]
    user = login("admin")
    page = user.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "中断" in page and "再実行" in page
    assert user.post(f"/runs/{run_id}/rerun").status_code == 302
    with app.app_context():
        run = execute(run_id)  # the resumed job (here in this process)
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert run.ok_count == 10_005
        assert [c.status for c in run.calls] == [CallStatus.COMPLETE, CallStatus.COMPLETE]
    assert import_totals(demo) == [10_000, 5]  # each record reached 楽楽明細 exactly once


def test_call_found_posting_after_a_crash_is_marked_needs_check_not_resent(app, demo):
    run_id = new_run(app)
    with app.app_context():
        run = db.session.get(Run, run_id)
        from webapp.runs import engine

        # Plan the files, then leave call 1 as a dead worker would: persisted as 送信中, outcome unknown.
        engine._claim(run_id)
        engine._plan(run, setting_named(CUSTOMER_SETTING))
        run.calls[0].status = CallStatus.POSTING
        run.status = RunStatus.QUEUED
        db.session.commit()
        run = execute(run_id)
        assert run.calls[0].status == CallStatus.NEEDS_CHECK
        assert run.status == RunStatus.NEEDS_CHECK and "取込履歴を確認" in run.calls[0].error_message
    assert demo.imports() == []


@pytest.fixture
def private_redis():
    """A Redis of our own that the test may stop and start again."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not available for the restart test")
    port = free_port()

    def start():
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _pings(port), timeout=10)
        return process

    holder = {"process": start()}
    holder["restart"] = lambda: (holder["process"].terminate(), holder["process"].wait(10),
                                 holder.__setitem__("process", start()))
    holder["url"] = f"redis://127.0.0.1:{port}/0"
    yield holder
    holder["process"].terminate()
    holder["process"].wait(10)


def _pings(port):
    try:
        return Redis(port=port, socket_connect_timeout=0.2).ping()
    except Exception:
        return False


def test_redis_restarted_between_enqueue_and_work_still_runs_once(app, demo, private_redis):
    app.config["REDIS_URL"] = private_redis["url"]
    run_id = new_run(app)
    with app.app_context():
        from webapp.runs.operations import enqueue_run

        enqueue_run(db.session.get(Run, run_id))
    private_redis["restart"]()  # the queued job is gone with Redis' memory
    assert Redis.from_url(private_redis["url"]).keys("rq:job:*") == []
    time.sleep(2.1)
    worker = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"], env=worker_env(app, private_redis["url"]),
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-2000:]
    with app.app_context():
        run = db.session.get(Run, run_id)
        assert run.status == RunStatus.COMPLETED, worker.stderr[-2000:]
    assert import_totals(demo) == [30]


def test_a_call_already_taken_by_another_worker_is_not_posted_again(app, demo):
    """A worker wrongly thought dead must not POST a call the resumed job already took."""
    run_id = new_run(app)
    with app.app_context():
        from webapp.runs import engine

        run = db.session.get(Run, run_id)
        engine._claim(run_id)
        engine._plan(run, setting_named(CUSTOMER_SETTING))
        call = run.calls[0]
        db.session.execute(db.text("UPDATE run_calls SET status = 'posting' WHERE id = :i"), {"i": call.id})
        db.session.commit()
        with pytest.raises(engine.RunTakenOver):
            engine._post(run, setting_named(CUSTOMER_SETTING), None, call, [])
    assert demo.imports() == []


def test_a_queued_run_whose_job_failed_before_starting_is_queued_again(app, demo):
    from rq import Queue

    with app.app_context():
        from webapp.runs.operations import enqueue_run, job_id_of, redis_connection

        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        enqueue_run(run)
        job = Queue(app.config["RQ_QUEUE"], connection=redis_connection()).fetch_job(job_id_of(run))
        job.set_status("failed")  # e.g. the database was restarting when the worker took it
        db.session.execute(db.text("UPDATE runs SET created_at = :t WHERE id = :i"),
                           {"t": datetime.now(UTC) - timedelta(seconds=10), "i": run.id})
        db.session.commit()
        assert recover_runs() == [run.id]
        assert Queue(app.config["RQ_QUEUE"], connection=redis_connection()).fetch_job(job_id_of(run)).get_status() == "queued"
