"""Faults during a run end in a correct, explained state, and nothing is sent twice."""

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import ROOT, free_port, start_worker, stop_process, wait_until, worker_env
from redis import Redis
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    add_customers,
    execute,
    import_totals,
    menu_named,
    setting_named,
)
from sqlalchemy import create_engine, text

from webapp.core.clock import utcnow
from webapp.extensions import db
from webapp.runs.models import CallStatus, Run, RunStatus
from webapp.runs.operations import recover_runs, start_run


def call_status(app, run_id, index=1):
    """Read a call's state through a separate connection, as another process would see it."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return connection.execute(text('SELECT status FROM run_calls WHERE run_id = :r AND "index" = :i'),
                                      {"r": run_id, "i": index}).scalar()
    finally:
        engine.dispose()


def new_run(app):
    with app.app_context():
        run = start_run(setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU), executor_id=None, enqueue=False)
        return run.id


def posts_and_polls(run: Run) -> tuple[list[int], list[int]]:
    """HTTP statuses of call 1's POST attempts and of its state polls, in order."""
    exchanges = run.calls[0].exchanges
    return ([x["http_status"] for x in exchanges if x["method"] == "POST"],
            [x["http_status"] for x in exchanges if x["method"] == "GET"])


def test_maintenance_during_polling_is_waited_out(app, demo):
    demo.set_faults(next_count=2, next_fault="maintenance", next_on="state")  # the first two polls: 503
    run_id = new_run(app)
    with app.app_context():
        run = execute(run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        posts, polls = posts_and_polls(run)
        assert posts == [200] and polls[:2] == [503, 503] and polls[-1] == 200
    assert import_totals(demo) == [30]


def test_maintenance_html_page_on_post_is_retried(app, demo):
    demo.set_faults(next_count=3, next_fault="maintenance_html", next_on="import")
    run_id = new_run(app)
    with app.app_context():
        run = execute(run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        # The HTML maintenance page answers 200: it is told from the acceptance by what it says.
        posts = [x for x in run.calls[0].exchanges if x["method"] == "POST"]
        assert [x["http_status"] for x in posts] == [200] * 4
        assert all("メンテナンス" in x["response_text"] for x in posts[:3]) and '"importId"' in posts[3]["response_text"]
    assert import_totals(demo) == [30]  # accepted once


def test_server_errors_on_post_are_retried_then_succeed(app, demo):
    demo.set_faults(next_count=2, next_fault="500", next_on="import")
    run_id = new_run(app)
    with app.app_context():
        run = execute(run_id)
        assert run.status == RunStatus.COMPLETED, run.error_message
        assert posts_and_polls(run)[0] == [500, 500, 200]
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
    # Call 1's first poll hangs, so the worker is inside it when it is killed.
    demo.set_faults(next_count=1, next_fault="slow", next_on="state", next_slow_ms=60_000)
    run_id = new_run(app)
    with app.app_context():
        from webapp.runs.operations import enqueue_run

        enqueue_run(db.session.get(Run, run_id))
    worker = start_worker(app)
    try:
        wait_until(lambda: call_status(app, run_id) == CallStatus.ACCEPTED, timeout=60)
        wait_until(lambda: demo.faults()["next_count"] == 0, timeout=30)  # the emulator holds that poll
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
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid) for pid in doomed),
               timeout=10)
    with app.app_context():
        # Nothing is recovered while the run's heartbeat is fresh, and it is once RUN_STALE_SECONDS have passed.
        stale = utcnow() + timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 1)
        assert recover_runs() == []
        assert recover_runs(now=stale) == [run_id]
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
        wait_until(lambda: _pings(port), timeout=10)
        return process

    holder = {"process": start()}

    def restart():
        stop_process(holder["process"])
        holder["process"] = start()

    holder["restart"] = restart
    holder["url"] = f"redis://127.0.0.1:{port}/0"
    yield holder
    stop_process(holder["process"])


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

        run = db.session.get(Run, run_id)
        enqueue_run(run)
        created = run.created_at.replace(tzinfo=UTC)
    private_redis["restart"]()  # the queued job is gone with Redis' memory
    assert Redis.from_url(private_redis["url"]).keys("rq:job:*") == []
    with app.app_context():
        # Within the grace between committing a run and enqueueing its job, a missing job is not yet lost.
        grace = app.config["RUN_ENQUEUE_GRACE_SECONDS"]
        assert recover_runs(now=created + timedelta(seconds=grace / 2)) == []
    # A worker starting later recovers it (here "later" is a grace of 0 for that process).
    worker = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"],
                            env=worker_env(app, private_redis["url"], RUN_ENQUEUE_GRACE_SECONDS="0"),
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
