"""Shared fixtures: the app on a fresh database, real Redis, logged-in clients, a headless browser.

The suite runs once on SQLite and once on PostgreSQL: set TEST_DATABASE_URL to a PostgreSQL URL for the
second pass (the test runner script does). Redis is real; tests use their own DB number (TEST_REDIS_URL).
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager

import pytest
from helpers import LoggedInClient, app_config, free_port, start_worker, stop_process
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


@contextmanager
def app_on(tmp_path):
    """The test app on a fresh database under ``tmp_path`` (a function- or module-scoped fixture builds on it)."""
    from webapp import create_app
    from webapp.extensions import db, limiter

    database_url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    app = create_app(
        app_config(database_url, tmp_path),
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        limiter.reset()  # a lockout provoked by one test must not lock out the next
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
        # Login sessions live in Redis for SESSION_HOURS: leave none behind.
        sessions = app.session_interface.client
        for key in sessions.scan_iter(match=app.config["SESSION_KEY_PREFIX"] + "*", count=500):
            sessions.delete(key)


@pytest.fixture
def app(tmp_path):
    with app_on(tmp_path) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(app):
    """Three users: an administrator, a user with DB設定+システム連携, and one without."""
    from webapp.auth.operations import create_user
    from webapp.extensions import db

    with app.app_context():
        admin = create_user("admin", "Tokyo-pass-2026", display_name="管理 太郎", is_admin=True)
        editor = create_user(
            "editor", "Osaka-pass-2026", display_name="設定 花子", can_db_settings=True, can_system_integration=True
        )
        plain = create_user("plain", "Nagoya-pass-2026", display_name="一般 次郎")
        db.session.commit()
        return {"admin": admin.id, "editor": editor.id, "plain": plain.id}


@pytest.fixture
def login(app):
    """Log in through the real form as an existing user: ``login("admin")`` → a ``LoggedInClient``.

    The users come from the test's other fixtures (``users``, ``demo`` …); the password defaults to the one
    in ``helpers.PASSWORDS``.
    """
    def _login(username: str, password: str | None = None) -> LoggedInClient:
        return LoggedInClient(app.test_client(), username, password)

    return _login


@contextmanager
def serving(app):
    """``app`` served over real HTTP on a free loopback port; yields the base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free loopback port (for the browser)."""
    with serving(app) as url:
        yield url


@pytest.fixture
def worker(app):
    """A real RQ worker process on the test's database and Redis."""
    process = start_worker(app)
    yield process
    stop_process(process)


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


@pytest.fixture
def sample(app, users):
    """A small 請求書-like DB: header fields of every type, 明細 fields, one menu and one record."""
    from webapp.databases.operations import (
        FieldSpec,
        MenuSpec,
        add_field,
        create_database,
        create_menu,
        new_record,
    )
    from webapp.extensions import db

    with app.app_context():
        database = create_database("請求書", "テスト用")
        specs = [
            FieldSpec("請求番号", "text", required=True),
            FieldSpec("備考", "textarea"),
            FieldSpec("請求金額", "number"),
            FieldSpec("請求日", "date"),
            FieldSpec("連携日時", "datetime"),
            FieldSpec("連携ステータス", "select", options=["未連携", "連携済"]),
            FieldSpec("タグ", "multiselect", options=["至急", "郵送", "FAX"]),
            FieldSpec("確認済", "checkbox"),
            FieldSpec("添付", "file"),
            FieldSpec("請求書PDF", "autofile"),
            FieldSpec("品名", "text", placement="detail"),
            FieldSpec("数量", "number", placement="detail"),
        ]
        fields = {spec.name: add_field(database, spec) for spec in specs}
        menu = create_menu(
            database,
            MenuSpec(name="請求書一覧", column_field_ids=[fields[n].id for n in ("請求番号", "請求金額", "請求日")]),
        )
        record = new_record(
            database,
            {fields["請求番号"].key: "INV-0001", fields["請求金額"].key: 1100, fields["連携ステータス"].key: "未連携"},
            [{fields["品名"].key: "コピー用紙", fields["数量"].key: 2}],
            users["admin"],
        )
        db.session.commit()
        return {
            "database": database.id,
            "menu": menu.id,
            "record": record.id,
            "fields": {name: f.id for name, f in fields.items()},
        }


@pytest.fixture
def emulator(tmp_path):
    """A running 楽楽明細 emulator over real HTTP: tenant ``demo`` with token ``TOKEN``, imports active 0.2 s.

    ``.base_url``, ``.token``, ``.client()``, ``.set_faults(**knobs)``, ``.documents()``, ``.imports()`` …
    """
    with emulator_in(tmp_path / "emulator") as server:
        yield server


@contextmanager
def emulator_in(data_dir):
    """The emulator fixture's server with its data under ``data_dir`` (for module-scoped fixtures too)."""
    from meisai_testlib import ACCOUNT, TOKEN, EmulatorServer, start_emulator

    from meisai_emulator.tenants import create_tenant

    emulator_app, root_url, stop = start_emulator(data_dir)
    create_tenant(emulator_app.extensions["meisai_emulator"].store, ACCOUNT, TOKEN)
    try:
        yield EmulatorServer(root_url=root_url, account=ACCOUNT, token=TOKEN, data_dir=data_dir, app=emulator_app)
    finally:
        stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback; `.messages` holds what it received."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    class Collector:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append({"to": list(envelope.rcpt_tos), "subject": str(message["subject"]),
                                  "body": message.get_content()})
            return "250 OK"

    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    collector.port = port
    yield collector
    controller.stop()


@pytest.fixture
def demo(app, emulator, smtp_server, monkeypatch):
    """The demo installation (small) with its integrations pointed at the test emulator and SMTP server."""
    from webapp.demo import seed_demo
    from webapp.extensions import db

    monkeypatch.setenv("MEISAI_DEMO_TOKEN", emulator.token)
    monkeypatch.setenv("MEISAI_EMULATOR_URL", emulator.base_url)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        assert seed_demo(customer_count=30, invoice_count=20, admin_password="Tokyo-pass-2026")
        db.session.commit()
    return emulator


@pytest.fixture
def listing(app, sample):
    """Sixty records with varied values in the sample DB."""
    from webapp.databases.models import Database
    from webapp.databases.operations import new_record
    from webapp.extensions import db

    f = sample["fields"]
    with app.app_context():
        database = db.session.get(Database, sample["database"])
        for i in range(1, 61):
            data = {
                str(f["請求番号"]): f"INV-{i:04d}",
                str(f["請求金額"]): i * 1000,
                str(f["請求日"]): f"2026-{(i % 12) + 1:02d}-15",
                str(f["連携日時"]): f"2026-11-{(i % 28) + 1:02d} 10:00" if i % 2 else None,
                str(f["連携ステータス"]): "連携済" if i % 3 == 0 else "未連携",
                str(f["タグ"]): ["至急"] if i % 5 == 0 else [],
                str(f["確認済"]): i % 4 == 0,
                str(f["備考"]): "東京本社宛" if i % 10 == 0 else "",
            }
            details = [{str(f["品名"]): "トナー" if i % 6 == 0 else "用紙", str(f["数量"]): 1}]
            new_record(database, data, details, None)
        db.session.commit()
    return sample
