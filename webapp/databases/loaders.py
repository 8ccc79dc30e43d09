"""The DB entities a URL names, or a Japanese 404: every blueprint that takes a DB, field, menu or record id from
its URL (databases, documents, integrations, runs, timers) loads it here."""

from __future__ import annotations

from flask import abort

from ..extensions import db
from .models import Database, Field, Menu, Record


def get_database(database_id: int) -> Database:
    return db.get_or_404(Database, database_id, description="指定されたDBは存在しないか、削除されました。")


def get_field(database: Database, field_id: int) -> Field:
    """A field of `database` (a field of another DB is not found)."""
    found = db.session.get(Field, field_id)
    if found is None or found.database_id != database.id:
        abort(404, description="指定された項目は存在しないか、削除されました。")
    return found


def get_menu(menu_id: int, database: Database | None = None) -> Menu:
    """A menu, of `database` when given."""
    found = db.session.get(Menu, menu_id)
    if found is None or (database is not None and found.database_id != database.id):
        abort(404, description="指定されたメニューは存在しないか、削除されました。")
    return found


def get_record(record_id: int) -> Record:
    return db.get_or_404(Record, record_id, description="指定されたレコードは存在しないか、削除されました。")
