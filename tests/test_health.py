"""/healthz (no login, for monitors) and 稼働状況 (administrators): real worker processes, real Redis."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from conftest import TEST_REDIS_URL
from helpers import free_port, start_worker, stop_process, submit_login, wait_until
from run_helpers import CUSTOMER_MENU, CUSTOMER_SETTING, menu_named, setting_named

from webapp.core.clock import utcnow
from webapp.extensions import db
from webapp.health.operations import WORKER_HEARTBEAT_MAX_AGE, check_health
from webapp.runs.models import Run, RunStatus
from webapp.timers.operations import beat


@pytest.fixture
def worker(app, tmp_path):
    """A real `python worker.py` on the test's database, Redis and queue; stopped (SIGTERM) at the end."""
    process = start_worker(app, log_path=tmp_path / "worker.log")
    process.log_path = tmp_path / "worker.log"
    yield process
    stop_process(process)


def wait_for(client, predicate, process, timeout: float = 60):
    """GET /healthz until `predicate(response)` holds (the worker needs a few seconds to register)."""
    def log() -> str:
        return process.log_path.read_text(errors="replace")[-3000:] if process is not None else ""

    def answer():
        response = client.get("/healthz")
        if predicate(response):
            return response
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited while /healthz said {response.get_json()}\n{log()}")
        return None

    return wait_until(answer, timeout, interval=0.2, message=log)


def assert_no_secrets(app, response) -> None:
    body = response.get_data(as_text=True)
    for secret in (app.config["SECRET_KEY"], app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"],
                   "postgresql", "sqlite", "redis://", "Traceback", "Error"):
        assert secret not in body


def test_healthz_is_ok_with_a_live_worker_and_a_fresh_scheduler_heartbeat(app, client, worker):
    # Before the dispatcher ever ran, timers are not known to work.
    response = wait_for(client, lambda r: r.get_json()["checks"]["workers"]["ok"], worker)
    assert response.status_code == 503
    assert response.get_json()["checks"]["scheduler"] == {"ok": False, "reason": "no heartbeat yet"}

    with app.app_context():
        beat()
    response = client.get("/healthz")
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["workers"] == {"ok": True, "count": 1}
    assert body["checks"]["scheduler"]["ok"] is True and 0 <= body["checks"]["scheduler"]["age_seconds"] < 10
    assert_no_secrets(app, response)


def test_healthz_is_degraded_when_the_scheduler_heartbeat_is_stale(app, client, worker):
    wait_for(client, lambda r: r.get_json()["checks"]["workers"]["ok"], worker)
    with app.app_context():
        beat(utcnow() - timedelta(minutes=3))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    scheduler = body["checks"]["scheduler"]
    assert scheduler["ok"] is False and scheduler["reason"] == "heartbeat too old" and scheduler["age_seconds"] >= 180
    assert body["checks"]["workers"]["ok"] is True


def test_a_stopped_or_silent_worker_no_longer_counts(app, client, worker):
    wait_for(client, lambda r: r.get_json()["checks"]["workers"]["ok"], worker)
    with app.app_context():
        beat()
        # A worker killed without a goodbye stays registered until its key expires; its old heartbeat
        # already marks it dead.
        later = utcnow() + timedelta(seconds=WORKER_HEARTBEAT_MAX_AGE + 5)
        assert check_health(later).checks["workers"] == {"ok": False, "count": 0, "reason": "no live worker"}

    stop_process(worker)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["workers"] == {"ok": False, "count": 0, "reason": "no live worker"}


def test_healthz_is_degraded_without_any_worker(app, client):
    with app.app_context():
        beat()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["workers"] == {"ok": False, "count": 0, "reason": "no live worker"}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"] and body["checks"]["scheduler"]["ok"]


def test_healthz_is_degraded_when_redis_is_unreachable_and_shows_no_url(app, client):
    with app.app_context():
        beat()
    # Nothing listens on this port; the password must not leak into the answer.
    app.config["REDIS_URL"] = f"redis://:hunter2-redis-pass@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"] == {"ok": False, "reason": "redis unreachable"}
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["database"] == {"ok": True}
    assert "hunter2" not in response.get_data(as_text=True)
    assert_no_secrets(app, response)


def test_healthz_needs_no_login_and_is_not_locked_by_failed_logins(app, users):
    client = app.test_client()
    for _ in range(6):
        submit_login(client, "plain", "wrong-password-1")
    for _ in range(60):
        assert client.get("/healthz").status_code == 503  # answered (no worker here), never 429 or a login page


def test_status_page_is_for_administrators_only(app, users, login, client):
    assert login("plain").get("/admin/status").status_code == 403
    assert login("editor").get("/admin/status").status_code == 403
    anonymous = client.get("/admin/status")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    admin = login("admin")
    home = admin.get("/").get_data(as_text=True)
    assert 'href="/admin/status"' in home and "稼働状況" in home


def test_status_page_shows_workers_queues_scheduler_and_failed_runs(app, demo, login, worker):
    client = app.test_client()
    wait_for(client, lambda r: r.get_json()["checks"]["workers"]["ok"], worker)
    with app.app_context():
        beat()
        setting, menu = setting_named(CUSTOMER_SETTING), menu_named(CUSTOMER_MENU)
        runs = {}
        for status, message in ((RunStatus.ERROR, "楽楽明細がメンテナンス中です"), (RunStatus.COMPLETED, "")):
            run = Run(setting_id=setting.id, menu_id=menu.id, database_id=menu.database_id, status=status,
                      error_message=message, finished_at=utcnow())
            db.session.add(run)
            db.session.commit()
            runs[status] = run.id
        queue = app.config["RQ_QUEUE"]

    page = login("admin").get("/admin/status")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>稼働状況</h1>" in html and "正常" in html
    assert f"<code>{queue}</code>" in html and f"<code>{queue}-timers</code>" in html
    assert "待機中" in html and os.uname().nodename in html  # the live worker and its host
    assert f'href="/runs/{runs[RunStatus.ERROR]}"' in html and "楽楽明細がメンテナンス中です" in html
    assert f'href="/runs/{runs[RunStatus.COMPLETED]}"' not in html


def test_status_page_says_when_redis_is_unreachable(app, users, login):
    admin = login("admin")
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    html = admin.get("/admin/status").get_data(as_text=True)
    assert "異常あり" in html and "Redisに接続できません" in html and "稼働中のワーカーはありません" in html


def test_healthz_is_degraded_when_the_database_is_unreachable_and_shows_no_url(tmp_path):
    from webapp import create_app

    # Nothing listens on this port; the password must not leak into the answer.
    url = f"postgresql+psycopg://meisai:hunter2-db-pass@127.0.0.1:{free_port()}/meisai"
    down = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key-not-used-elsewhere", "SQLALCHEMY_DATABASE_URI": url,
                       "REDIS_URL": TEST_REDIS_URL,
                       "RQ_QUEUE": f"test-down-{os.getpid()}"}, instance_path=str(tmp_path / "instance"))
    response = down.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == {"ok": False, "reason": "database unreachable"}
    assert body["checks"]["scheduler"] == {"ok": False, "reason": "database unreachable"}
    assert body["checks"]["redis"] == {"ok": True}
    assert "hunter2" not in response.get_data(as_text=True)
    assert_no_secrets(down, response)
