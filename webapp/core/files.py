"""Stored files: everything under FILES_DIR (uploads, generated PDFs, the exact files each run sent).

Records and runs keep paths relative to FILES_DIR; `path_of` is the one way back to a file, and never leaves
FILES_DIR whatever a stored path says. Files follow the transaction that refers to them: a file written for a
change that is rolled back is removed (`remove_unless_committed`), a file the change replaced is removed once
it committed (`remove_after_commit`) — so operations only flush, and whoever commits (view, job, CLI) also
decides what stays on disk. Sending a stored file to a browser is core/downloads.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db

log = logging.getLogger(__name__)

# Keys in Session.info: relative paths to remove when the transaction commits / ends without a commit.
_ON_COMMIT = "files_removed_on_commit"
_ON_ROLLBACK = "files_removed_on_rollback"


def files_root() -> Path:
    """FILES_DIR (default instance/files)."""
    return Path(current_app.config["FILES_DIR"])


def path_of(relative: str | os.PathLike | None) -> Path | None:
    """The stored file at `relative` (to FILES_DIR), or None when there is none or the path leads outside."""
    if not relative:
        return None
    root = files_root().resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def relative_to_root(path: Path) -> str:
    """How a stored file is referred to in the database."""
    return str(path.relative_to(files_root()))


def write_bytes(relative: str | os.PathLike, data: bytes) -> Path:
    """Write a file under FILES_DIR, aside and renamed: a reader never sees half a file, even while it is being
    rewritten."""
    absolute = files_root() / relative
    absolute.parent.mkdir(parents=True, exist_ok=True)
    partial = absolute.with_name(f".{absolute.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, absolute)
    return absolute


def save_upload(relative: str | os.PathLike, storage) -> int:
    """Store an uploaded file (a werkzeug FileStorage) under FILES_DIR; returns its size in bytes."""
    absolute = files_root() / relative
    absolute.parent.mkdir(parents=True, exist_ok=True)
    storage.save(absolute)
    return absolute.stat().st_size


def remove(relative: str | os.PathLike | None) -> None:
    """Delete a stored file now (a no-op when it is gone or the path leads outside FILES_DIR)."""
    path = path_of(relative)
    if path:
        path.unlink(missing_ok=True)


def remove_after_commit(paths: Iterable[str], session: Session | None = None) -> None:
    """Delete these stored files once the current transaction commits (files a change replaced)."""
    _pending(session, _ON_COMMIT).extend(p for p in paths if p)


def remove_unless_committed(paths: Iterable[str], session: Session | None = None) -> None:
    """Delete these stored files if the current transaction ends without a commit (files written for it)."""
    _pending(session, _ON_ROLLBACK).extend(p for p in paths if p)


def _pending(session: Session | None, key: str) -> list[str]:
    session = session or db.session()
    return session.info.setdefault(key, [])


@event.listens_for(Session, "after_commit")
def _commit_done(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)  # they belong to committed rows now
    _remove_all(session.info.pop(_ON_COMMIT, []))


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:  # a savepoint or subtransaction: the outer transaction decides
        return
    # After a commit both lists are empty already; otherwise nothing refers to the written files.
    session.info.pop(_ON_COMMIT, None)
    _remove_all(session.info.pop(_ON_ROLLBACK, []))


def _remove_all(paths: list[str]) -> None:
    for relative in paths:
        try:
            remove(relative)
        except OSError:  # a leftover file is harmless; a failing request after a good commit is not
            log.warning("could not remove stored file %s", relative, exc_info=True)
