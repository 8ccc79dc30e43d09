"""Shared fixtures: the app on a fresh database, real Redis, logged-in clients, a headless browser.

The suite runs once on SQLite and once on PostgreSQL: set TEST_DATABASE_URL to a PostgreSQL URL for the
second pass (the test runner script does). Redis is real; tests use their own DB number (TEST_REDIS_URL).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading

import pytest
from werkzeug.serving import make_server

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app(tmp_path):
    from webapp import create_app
    from webapp.extensions import db

    database_url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    app = create_app(
        {
            "TESTING": True,
            "APP_ENV": "test",
            "SECRET_KEY": "test-secret-key-not-used-elsewhere",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "FILES_DIR": str(tmp_path / "files"),
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(app):
    """Three users: an administrator, a user with DB設定+システム連携, and one without."""
    from webapp.auth.operations import create_user

    with app.app_context():
        admin = create_user("admin", "admin-pass-1", display_name="管理 太郎", is_admin=True)
        editor = create_user(
            "editor", "editor-pass-1", display_name="設定 花子", can_db_settings=True, can_system_integration=True
        )
        plain = create_user("plain", "plain-pass-1", display_name="一般 次郎")
        return {"admin": admin.id, "editor": editor.id, "plain": plain.id}


PASSWORDS = {"admin": "admin-pass-1", "editor": "editor-pass-1", "plain": "plain-pass-1"}


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


class LoggedInClient:
    """A test client that logs in through the real form and sends CSRF tokens like a browser."""

    def __init__(self, client, username):
        self.client = client
        self.username = username
        page = client.get("/login").get_data(as_text=True)
        response = client.post(
            "/login",
            data={"username": username, "password": PASSWORDS[username], "csrf_token": csrf_token_from(page)},
        )
        assert response.status_code == 302, f"login failed for {username}"
        self.csrf = csrf_token_from(client.get("/").get_data(as_text=True))

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, **kwargs)


@pytest.fixture
def login(app, users):
    def _login(username: str) -> LoggedInClient:
        return LoggedInClient(app.test_client(), username)

    return _login


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free loopback port (for the browser)."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """Playwright driving Debian's Chromium (a test tool's own browser download does not work here)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs it with apt")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
