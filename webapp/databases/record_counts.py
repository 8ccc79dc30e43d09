"""The 「N件中」 of a record list, counted once per change of the DB's records rather than on every page view.

Counting the matches of a 100,000-record DB costs PostgreSQL 10-60 ms of CPU, and with 20 people paging and
searching it was most of the server's CPU. Each DB carries a records_version; every transaction that changes
its records bumps it as it commits (the session hooks below), so a count cached under the version a request
reads is exactly the count that request's own query would give. A second version, records_added_version, moves
only when records are added or removed: all a list without filters or keyword depends on, so the plain lists
are not recounted while a run's レコード更新 rewrites 100,000 records. The cache is per process (no network
hop, no shared state to invalidate); the time limit only bounds edits made outside the app (psql, a restore).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import current_app
from sqlalchemy import update
from sqlalchemy.event import listens_for
from sqlalchemy.orm import Session

from .models import Database, Record

EVERY_DB = "*"
# Keys in Session.info: DB ids (or EVERY_DB) whose records this transaction changed / added or removed.
_CHANGED = "records_changed"
_ADDED_OR_REMOVED = "records_added_or_removed"
_RECORDS_OF = "records_of_database"


def note_records_changed(session: Session, database_id: int | str, added_or_removed: bool) -> None:
    session.info.setdefault(_CHANGED, set()).add(database_id)
    if added_or_removed:
        session.info.setdefault(_ADDED_OR_REMOVED, set()).add(database_id)


def records_of(database_id: int) -> dict:
    """Execution options of a bulk statement on one DB's records: only that DB's counts are recounted."""
    return {_RECORDS_OF: int(database_id)}


@listens_for(Session, "before_flush")
def _note_changed_objects(session: Session, flush_context, instances) -> None:
    for objects, added_or_removed in ((session.new, True), (session.deleted, True), (session.dirty, False)):
        for obj in objects:
            if isinstance(obj, Record):
                database_id = obj.database_id or (obj.database.id if obj.database is not None else None)
                note_records_changed(session, database_id or EVERY_DB, added_or_removed)


@listens_for(Session, "do_orm_execute")
def _note_changed_statements(state) -> None:
    """Bulk INSERT / UPDATE / DELETE on records (imports, レコード更新, 自動生成ファイル): the DB named by
    records_of() in their execution options, else every DB (their WHERE clauses or rows do not say it plainly)."""
    if (state.is_insert or state.is_update or state.is_delete) and state.bind_mapper is Record.__mapper__:
        note_records_changed(state.session, state.execution_options.get(_RECORDS_OF, EVERY_DB),
                             added_or_removed=not state.is_update)


@listens_for(Session, "before_commit")
def _bump_versions(session: Session) -> None:
    session.flush()  # objects still pending are noted by before_flush first
    changed = session.info.pop(_CHANGED, None)
    added_or_removed = session.info.pop(_ADDED_OR_REMOVED, set())
    if not changed:
        return
    # Last in the transaction: the row lock on databases is held only for the commit itself.
    for ids, values in ((changed - added_or_removed, {"records_version": Database.records_version + 1}),
                        (added_or_removed, {"records_version": Database.records_version + 1,
                                            "records_added_version": Database.records_added_version + 1})):
        if ids:
            statement = update(Database).values(**values)
            if EVERY_DB not in ids:
                statement = statement.where(Database.id.in_(sorted(ids)))
            session.execute(statement, execution_options={"synchronize_session": False})


@listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
    session.info.pop(_ADDED_OR_REMOVED, None)


class CountCache:
    """A small LRU map (key -> count) shared by a process's threads, each entry valid for ttl seconds."""

    def __init__(self, size: int = 1024, ttl: float = 60.0):
        self.size, self.ttl = size, ttl
        self._entries: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_count(self, key: Hashable, count: Callable[[], int]) -> int:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end(key)
                return entry[1]
        value = count()  # outside the lock: a slow count must not hold up other lists
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


def count_cache() -> CountCache:
    return current_app.extensions.setdefault("record_count_cache", CountCache())
