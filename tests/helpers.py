"""Test helpers shared by modules: the test configuration, logging in (HTTP client and browser), CSRF tokens,
free ports, waiting for a condition, and the worker processes a test starts and stops."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent

PASSWORDS = {"admin": "Tokyo-pass-2026", "editor": "Osaka-pass-2026", "plain": "Nagoya-pass-2026",
             "only_db": "only-db-pass-1", "only_sys": "only-sys-pass-1", "user": "user", "keiri": "keiri"}


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET_KEY = "test-secret-key-not-used-elsewhere"


def app_config(database_url: str, root: Path, **overrides) -> dict:
    """The configuration of every test app: its database, FILES_DIR under `root`, the test Redis, fast runs."""
    config = {
        "TESTING": True,
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "FILES_DIR": str(Path(root) / "files"),
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Runs poll and retry fast against the local emulator.
        "RUN_POLL_FIRST_INTERVAL": 0.05,
        "RUN_POLL_MAX_INTERVAL": 0.2,
        "RUN_POLL_TIMEOUT": 30,
        "RUN_RETRY_BASE_DELAY": 0.05,
        "RUN_RETRY_TOTAL_SECONDS": 5,
        "RQ_QUEUE": f"test-{os.getpid()}",
        # Login throttling on the test Redis (its counts are cleared for every test).
        "RATELIMIT_STORAGE_URI": TEST_REDIS_URL,
    }
    config.update(overrides)
    return config


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def submit_login(client, username: str, password: str | None = None, **kwargs):
    """Fill in the login form as a browser does (its CSRF token from the page) and return the answer.

    The password defaults to the user's in PASSWORDS; ``kwargs`` go to both requests (e.g. ``base_url``).
    """
    token = csrf_token_from(client.get("/login", **kwargs).get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password or PASSWORDS[username],
                                       "csrf_token": token}, **kwargs)


class LoggedInClient:
    """A test client that logs in through the real form and sends CSRF tokens like a browser."""

    def __init__(self, client, username, password=None):
        self.client = client
        self.username = username
        response = submit_login(client, username, password)
        assert response.status_code == 302, f"login failed for {username}"
        self.csrf = csrf_token_from(client.get("/").get_data(as_text=True))

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, **kwargs)


def browser_login(page, base_url: str, username: str, password: str | None = None) -> None:
    """Log in in the browser as a person does: type the name and password, press ログイン, see the app.

    Cookies of an earlier login in the same context are dropped first, so this also switches users.
    """
    from playwright.sync_api import expect

    page.context.clear_cookies()
    page.goto(f"{base_url}/login")
    page.get_by_label("ユーザ名").fill(username)
    page.get_by_label("パスワード", exact=True).fill(password or PASSWORDS[username])
    page.get_by_role("button", name="ログイン").click()
    expect(page.locator(".topbar .who")).to_be_visible()


# ---- time and processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
               message: str | Callable[[], str] = "") -> T:
    """Poll ``predicate`` until it returns something truthy and return that; fail after ``timeout`` seconds.

    For a condition another thread or process brings about (a worker registered, an import finished): the
    test goes on as soon as it holds, and never sleeps a fixed time hoping it did. ``message`` (or a
    function giving it, e.g. a process log) explains the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"condition not reached within {timeout} s{': ' + detail if detail else ''}")
        time.sleep(interval)  # the polling interval: the only sleep the suite's waits need


def worker_env(app, redis_url: str | None = None, **overrides: str) -> dict:
    """The environment of a real worker or scheduler process on the test's database, Redis, queue and files."""
    config = app.config
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url or config["REDIS_URL"],
        "RQ_QUEUE": config["RQ_QUEUE"], "SECRET_KEY": config["SECRET_KEY"], "APP_ENV": "test",
        "FILES_DIR": config["FILES_DIR"], "TZ": config["TIMEZONE"], "RUN_POLL_FIRST_INTERVAL": "0.05",
        "RUN_POLL_MAX_INTERVAL": "0.2", "RUN_RETRY_BASE_DELAY": "0.05", "RUN_RETRY_TOTAL_SECONDS": "5",
        "MAIL_SERVER": "", "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def start_worker(app, *args: str, log_path: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    """``worker.py *args`` as its own process group (RQ's work-horse included), output to ``log_path``.

    Stop it with ``stop_process``.
    """
    output = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115  (closed below: the child has its own copy)
    try:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py"), *args], cwd=ROOT,
                                env=env or worker_env(app), stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        if log_path:
            output.close()


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds; to the whole process group when
    the process leads one (a worker and its work-horse)."""
    if process.poll() is not None:
        return
    try:
        group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return

    def send(sig: int) -> None:
        try:
            os.killpg(process.pid, sig) if group else process.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=5)
