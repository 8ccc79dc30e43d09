"""Files the app writes are private to its user, whatever umask the process was started with.

The SQLite database, everything under FILES_DIR (uploads, generated PDFs, the exact files each run sent),
backups and instance/secret_key hold personal data, password hashes or keys. Every process of the app (web,
workers, scheduler, CLI) builds it through create_app(), which sets the umask once, so that files and folders
created anywhere later are owner-only (SQLite's -wal/-shm files take the database file's mode), and tightens
what an older version or a permissive umask left readable.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def make_files_private() -> None:
    """From now on, files and folders this process creates are readable by its user only."""
    os.umask(PRIVATE_UMASK)


def tighten_existing(config, instance_path: Path) -> None:
    """Owner-only modes for the folders and files the app already wrote (a no-op when they are already)."""
    folders = [instance_path, Path(config["FILES_DIR"])]
    files = [instance_path / "secret_key"]
    database = _sqlite_file(config["SQLALCHEMY_DATABASE_URI"])
    if database is not None:
        files += [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
    for path, mode in [(folder, 0o700) for folder in folders] + [(file, 0o600) for file in files]:
        _restrict(path, mode)


def _sqlite_file(uri: str) -> Path | None:
    url = make_url(uri)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _restrict(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, current & 0o700 or mode)
    except OSError as exc:  # not ours (e.g. a shared folder set up by the operator): say so, keep running
        log.warning("cannot make %s private (%s); check its owner and mode", path, type(exc).__name__)
