"""Helpers for backup and upgrade tests: a second, empty installation (own instance, files and database)."""

from __future__ import annotations

import os

import psycopg
from helpers import TEST_SECRET_KEY, app_config
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from webapp.extensions import db

SECRET_KEY = TEST_SECRET_KEY  # the key of conftest's app
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _admin_connect():
    url = make_url(TEST_DATABASE_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


class Installations:
    """Creates apps on new, empty databases (SQLite files, or PostgreSQL databases created and dropped here)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.apps = []
        self.pg_databases = []

    def new(self, name: str, secret_key: str = SECRET_KEY, migrate: bool = True):
        """A fresh installation; `migrate` runs `flask db upgrade` as every start of the app does."""
        from flask_migrate import upgrade

        from webapp import create_app

        root = self.tmp_path / name
        if TEST_DATABASE_URL:
            database = f"{make_url(TEST_DATABASE_URL).database}_{name}"[:63]
            with _admin_connect() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{database}"')
            self.pg_databases.append(database)
            url = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg", database=database)
            database_url = url.render_as_string(hide_password=False)
        else:
            database_url = f"sqlite:///{root / 'app.sqlite3'}"
        app = create_app(
            app_config(database_url, root, SECRET_KEY=secret_key),
            instance_path=str(root / "instance"),
        )
        if migrate:
            with app.app_context():
                upgrade()
        self.apps.append(app)
        return app

    def close(self):
        for app in self.apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        if self.pg_databases:
            with _admin_connect() as connection:
                for database in self.pg_databases:
                    connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def all_rows() -> dict[str, list[dict]]:
    """Every row of every table of the models, in primary-key order."""
    rows = {}
    for table in db.metadata.sorted_tables:
        statement = select(table).order_by(*table.primary_key.columns)
        rows[table.name] = [dict(row) for row in db.session.execute(statement).mappings()]
    return rows


def field_index_names() -> set[str]:
    if db.engine.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_records_f%'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_records_f%'"
    return {row[0] for row in db.session.execute(text(sql))}


def drop_alembic_version() -> None:
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
