"""A realistic installation seeded once per test module and cloned for each test (the permission matrix).

Seeding — the demo DBs, integrations and users, a timer, an uploaded file, a run really sent to the emulator —
takes a few seconds; a clone is a file copy on SQLite and ``CREATE DATABASE … TEMPLATE`` on PostgreSQL, so
each test starts from the same state whatever the previous one deleted.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

import psycopg
from helpers import app_config
from sqlalchemy.engine import make_url

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _pg_admin():
    url = make_url(TEST_DATABASE_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def _pg_url(database: str) -> str:
    url = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def make_app(database_url: str, root: Path):
    from webapp import create_app

    return create_app(
        app_config(database_url, root, RECORD_UPDATE_PAUSE=0),
        instance_path=str(root / "instance"),
    )


@dataclass
class SeededTemplate:
    """The seeded database (a SQLite file or a PostgreSQL template database) and its FILES_DIR."""

    root: Path
    ids: dict = field(default_factory=dict)
    pg_template: str = ""
    clones: dict = field(default_factory=dict)  # app -> its PostgreSQL database
    made: int = 0

    @property
    def database_url(self) -> str:
        return _pg_url(self.pg_template) if self.pg_template else f"sqlite:///{self.root / 'template.sqlite3'}"

    def build(self, seed) -> None:
        """Create the schema and run `seed(app) -> ids` once."""
        from webapp.extensions import db

        if TEST_DATABASE_URL:
            self.pg_template = f"{make_url(TEST_DATABASE_URL).database}_tpl_{os.getpid()}"[:63]
            with _pg_admin() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.pg_template}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{self.pg_template}"')
        app = make_app(self.database_url, self.root)
        with app.app_context():
            db.create_all()
            self.ids = seed(app)
            db.session.remove()
            db.engine.dispose()  # a template database must have no connections left

    def clone(self, target: Path):
        """A new app on a copy of the seeded database and files."""
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.root / "files", target / "files", dirs_exist_ok=True)
        self.made += 1
        name = ""
        if self.pg_template:
            name = f"{self.pg_template}_c{self.made}"[:63]
            with _pg_admin() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.pg_template}"')
            url = _pg_url(name)
        else:
            shutil.copyfile(self.root / "template.sqlite3", target / "app.sqlite3")
            url = f"sqlite:///{target / 'app.sqlite3'}"
        app = make_app(url, target)
        self.clones[app] = name
        return app

    def drop_clone(self, app) -> None:
        from webapp.extensions import db

        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        # Login sessions live in Redis for SESSION_HOURS: leave none behind (as conftest's app does).
        sessions = app.session_interface.client
        for key in sessions.scan_iter(match=app.config["SESSION_KEY_PREFIX"] + "*", count=500):
            sessions.delete(key)
        name = self.clones.pop(app, "")
        if name:
            with _pg_admin() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.pg_template:
            with _pg_admin() as connection:
                for name in [*self.clones.values(), self.pg_template]:
                    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_installation(app, emulator_url: str, token: str) -> dict:
    """The demo installation (small) plus everything each route needs, returning the ids the routes take.

    - users of every role: admin (管理者), keiri (DB設定 + システム連携), user (none), only_db, only_sys
    - 顧客 and 請求書 with their 楽楽明細 menus and integrations (demo seed); a timer on 楽楽明細 送信待ち請求書
    - a DB without integrations (備品), a 添付 file on an invoice, and a customer run sent to the emulator
    """
    from werkzeug.datastructures import FileStorage

    from webapp.auth.operations import create_user
    from webapp.databases.models import Database, Field, Menu, Record
    from webapp.databases.operations import (
        FieldSpec,
        MenuSpec,
        add_field,
        create_database,
        create_menu,
        store_upload,
    )
    from webapp.demo import seed_demo
    from webapp.extensions import db
    from webapp.integrations.models import IntegrationSetting
    from webapp.runs.engine import execute_run
    from webapp.runs.models import Run
    from webapp.runs.operations import start_run
    from webapp.timers.operations import TimerValues, save_timer
    from webapp.timers.schedule import Kind

    def one(model, **where):
        return db.session.query(model).filter_by(**where).one()

    previous = {k: os.environ.get(k) for k in ("MEISAI_DEMO_TOKEN", "MEISAI_EMULATOR_URL")}
    os.environ.update(MEISAI_DEMO_TOKEN=token, MEISAI_EMULATOR_URL=emulator_url)
    try:
        assert seed_demo(customer_count=6, invoice_count=6, admin_password="Tokyo-pass-2026")
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    create_user("only_db", "only-db-pass-1", display_name="DB設定のみ", can_db_settings=True)
    create_user("only_sys", "only-sys-pass-1", display_name="システム連携のみ", can_system_integration=True)
    db.session.commit()

    customers, invoices = one(Database, name="顧客"), one(Database, name="請求書")
    customer_menu, invoice_menu = one(Menu, name="楽楽明細 未連携顧客"), one(Menu, name="楽楽明細 送信待ち請求書")
    customer_setting = one(IntegrationSetting, name="楽楽明細へ顧客を連携")
    invoice_setting = one(IntegrationSetting, name="楽楽明細へ請求書を発行(CSV)")
    save_timer(invoice_setting, TimerValues(enabled=True, priority=1, kind=Kind.DAILY, at=time(9, 0),
                                            menu_id=invoice_menu.id))

    attachment = add_field(invoices, FieldSpec("添付", "file"))
    invoice = db.session.query(Record).filter_by(database_id=invoices.id).order_by(Record.id).first()
    with open(Path(__file__).with_name("conftest.py"), "rb") as handle:
        stored = store_upload(invoice, attachment, FileStorage(handle, filename="見積書.txt", content_type="text/plain"))
    invoice.data = {**invoice.data, attachment.key: stored}
    db.session.commit()

    spare = create_database("備品", "連携のないDB")
    spare_field = add_field(spare, FieldSpec("品名", "text"))
    create_menu(spare, MenuSpec(name="備品一覧", column_field_ids=[spare_field.id]))
    db.session.commit()

    run = start_run(customer_setting, customer_menu, executor_id=one_user("keiri").id, enqueue=False)
    execute_run(run.id)
    db.session.expire_all()
    run = db.session.get(Run, run.id)
    assert run.status == "completed" and run.calls and run.calls[0].files, run.status

    def field_of(database, name):
        return one(Field, database_id=database.id, name=name).id

    return {
        "customers": customers.id, "invoices": invoices.id, "spare": spare.id,
        "customer_menu": customer_menu.id, "invoice_menu": invoice_menu.id,
        "invoice_list": one(Menu, name="請求書一覧").id, "spare_menu": one(Menu, name="備品一覧").id,
        "customer_setting": customer_setting.id, "invoice_setting": invoice_setting.id,
        "invoice": invoice.id, "attachment": attachment.id, "pdf": field_of(invoices, "請求書PDF"),
        "status_field": field_of(invoices, "連携ステータス"), "memo_field": field_of(invoices, "備考"),
        "spare_field": spare_field.id,
        "run": run.id, "call": run.calls[0].index, "user": one_user("user").id, "keiri": one_user("keiri").id,
    }


def one_user(username: str):
    from webapp.auth.models import User
    from webapp.extensions import db

    return db.session.query(User).filter_by(username=username).one()
