"""Create and restore backups: the database and FILES_DIR in one .tar.gz.

Archive members:
  database.sqlite3 | database.dump   SQLite online-backup copy, or `pg_dump -Fc`
  files/...                          FILES_DIR: uploads, generated PDFs, the exact files each run sent
  manifest.json                      app version, Alembic revision, database kind, row counts, file count

The encryption key of the stored API tokens is configuration, not data: it is never written into an archive.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import inspect, text

from ..extensions import db

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
POSTGRESQL_MEMBER = "database.dump"
FILES_PREFIX = "files"
KIND_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# Counts shown to the user; the manifest also keeps every table's count for the check after a restore.
SUMMARY_TABLES = {"users": "users", "records": "records", "settings": "integration_settings", "runs": "runs"}


class BackupError(Exception):
    """A refused or failed backup/restore; the message is for the user (Japanese)."""


# ---- shared ------------------------------------------------------------------------------------------


def database_kind() -> str:
    kind = db.engine.dialect.name
    if kind not in KIND_LABELS:
        raise BackupError(f"このデータベース({kind})のバックアップには対応していません(SQLite または PostgreSQL)。")
    return kind


def token_key_source() -> str:
    return "TOKEN_ENCRYPTION_KEY" if current_app.config.get("TOKEN_ENCRYPTION_KEY") else "SECRET_KEY"


def _app_version() -> str:
    try:
        return metadata.version("rakuraku-meisai-renkei")
    except metadata.PackageNotFoundError:
        return "unknown"


def _migrations() -> ScriptDirectory:
    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config)


def code_head() -> str:
    return _migrations().get_current_head()


def _files_root() -> Path:
    return Path(current_app.config["FILES_DIR"])


def _never_archived() -> set[Path]:
    """Files that must not enter an archive even when FILES_DIR is configured around them."""
    excluded = {Path(current_app.instance_path, "secret_key").resolve()}
    if database_kind() == "sqlite":
        base = _sqlite_path()
        excluded |= {Path(f"{base}{suffix}").resolve() for suffix in ("", "-wal", "-shm", "-journal")}
    return excluded


def _list_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    excluded = _never_archived()
    found = []
    for directory, _, names in os.walk(root):  # symlinks are not followed: only FILES_DIR's own files
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink() and path.resolve() not in excluded:
                found.append(path)
    return sorted(found)


# ---- SQLite --------------------------------------------------------------------------------------------


def _sqlite_path() -> Path:
    name = db.engine.url.database
    if not name or name == ":memory:":
        raise BackupError("メモリ上のSQLiteデータベースはバックアップ・復元できません。")
    return Path(name)


def _sqlite_copy(source: Path, target: Path) -> None:
    # The online backup API copies in one step (pages=-1): a consistent snapshot even while the app writes.
    src, dst = sqlite3.connect(source, timeout=30), sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLiteのコピーに失敗しました({exc})。復元の場合はアプリとワーカーを止めてから実行してください。") from exc
    finally:
        dst.close()
        src.close()


def _sqlite_facts(path: Path) -> tuple[str | None, dict[str, int]]:
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return _facts(tables, lambda sql: connection.execute(sql).fetchone())
    finally:
        connection.close()


def _facts(tables: list[str], fetch_one) -> tuple[str | None, dict[str, int]]:
    counts = {name: fetch_one(f'SELECT count(*) FROM "{name}"')[0] for name in tables if name != "alembic_version"}
    revision = None
    if "alembic_version" in tables:
        row = fetch_one("SELECT version_num FROM alembic_version")
        revision = row[0] if row else None
    return revision, counts


# ---- PostgreSQL ----------------------------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(
            f"{name} が見つかりません。PostgreSQLのクライアント(サーバと同じメジャーバージョン。Debian: "
            "apt-get install postgresql-client)を入れてください。")
    return path


def _pg_connection() -> tuple[str, dict]:
    url = db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # not on the command line, where `ps` would show it
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _pg_run(command: list[str]) -> None:
    dsn, env = _pg_connection()
    result = subprocess.run([*command, "--dbname", dsn], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        name = Path(command[0]).name
        raise BackupError(f"{name} が失敗しました(終了コード {result.returncode}): {result.stderr.strip()[-2000:]}")


def _pg_facts(connection) -> tuple[str | None, dict[str, int]]:
    tables = [row[0] for row in connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"))]
    return _facts(tables, lambda sql: connection.execute(text(sql)).fetchone())


def _pg_dump(target: Path) -> tuple[str | None, dict[str, int]]:
    pg_dump = _pg_tool("pg_dump")
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            # pg_dump reads the snapshot this transaction exported, so the manifest's counts match the dump.
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = _pg_facts(connection)
            _pg_run([pg_dump, "--format=custom", f"--snapshot={snapshot}", "--file", str(target)])
    return facts


def _pg_restore(dump: Path) -> None:
    pg_restore = _pg_tool("pg_restore")
    # Tables the dump does not know (a newer schema of the target) would make the later upgrade fail.
    with db.engine.begin() as connection:
        db.metadata.drop_all(bind=connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.engine.dispose()
    _pg_run([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", str(dump)])


# ---- create --------------------------------------------------------------------------------------------


def create_backup(path: Path) -> dict:
    """Write the archive to `path` (refused if it exists); returns the manifest."""
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} は既に存在します。別のファイル名を指定してください。")
    kind = database_kind()
    member = SQLITE_MEMBER if kind == "sqlite" else POSTGRESQL_MEMBER
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="meisai-backup-") as scratch:
            snapshot = Path(scratch, member)
            if kind == "sqlite":
                source = _sqlite_path()
                if not source.is_file():
                    raise BackupError(f"データベースファイル {source} がありません。")
                _sqlite_copy(source, snapshot)
                revision, counts = _sqlite_facts(snapshot)
            else:
                revision, counts = _pg_dump(snapshot)
            if revision is None:
                raise BackupError("データベースにマイグレーションの記録(alembic_version)がありません。"
                                  "先に `flask db upgrade` を実行してください。")
            # Files after the database: a file created meanwhile is only an extra, never a missing one.
            root = _files_root()
            file_count = file_bytes = 0
            # Owner-only: the archive holds personal data and password hashes.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
                archive.add(snapshot, arcname=member)
                for file in _list_files(root):
                    try:
                        info = archive.gettarinfo(file, arcname=f"{FILES_PREFIX}/{file.relative_to(root).as_posix()}")
                        with file.open("rb") as handle:
                            archive.addfile(info, handle)
                    except FileNotFoundError:  # removed since listed (its record was deleted meanwhile)
                        continue
                    file_count += 1
                    file_bytes += info.size
                manifest = {
                    "format": FORMAT,
                    "app": "rakuraku-meisai-renkei",
                    "app_version": _app_version(),
                    "alembic_revision": revision,
                    "database_kind": kind,
                    "database_file": member,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "counts": {label: counts.get(table, 0) for label, table in SUMMARY_TABLES.items()},
                    "tables": counts,
                    "file_count": file_count,
                    "file_bytes": file_bytes,
                    "encryption_key_included": False,
                    "token_key_source": token_key_source(),
                }
                data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                archive.addfile(info, io.BytesIO(data))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


# ---- restore -------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict:
    try:
        with tarfile.open(path, "r:gz") as archive:
            handle = archive.extractfile(MANIFEST)
            manifest = json.loads(handle.read()) if handle else None
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{path} はこのアプリのバックアップとして読めません({exc.__class__.__name__})。") from exc
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise BackupError(f"{path} はこのアプリのバックアップとして読めません(manifest.json がありません)。")
    if manifest["format"] > FORMAT:
        raise BackupError("新しいバージョンのバックアップです(形式が新しい)。アプリを更新してから復元してください。")
    return manifest


def existing_data() -> dict[str, int]:
    """Users and records already in the target database (missing tables count as empty)."""
    tables = set(inspect(db.engine).get_table_names())
    found = {}
    for table in ("users", "records"):
        if table in tables:
            found[table] = db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    db.session.remove()
    return {table: count for table, count in found.items() if count}


def _check_restorable(manifest: dict, force: bool) -> None:
    kind = database_kind()
    if manifest.get("database_kind") != kind:
        source = KIND_LABELS.get(manifest.get("database_kind"), manifest.get("database_kind"))
        raise BackupError(f"このバックアップは{source}のものです。復元先は{KIND_LABELS[kind]}です。"
                          "同じ種類のデータベースに復元してください。")
    revision = manifest.get("alembic_revision")
    migrations = _migrations()
    if revision not in {script.revision for script in migrations.walk_revisions()}:
        raise BackupError(f"新しいバージョンのバックアップです(リビジョン {revision}、このアプリは "
                          f"{migrations.get_current_head()} まで)。アプリを更新してから復元してください。")
    if not force:
        found = existing_data()
        if found:
            raise BackupError(
                f"復元先は空ではありません(ユーザ {found.get('users', 0)}件、レコード {found.get('records', 0)}件)。"
                "空のインストールに復元してください。今のデータを消して置き換える場合は --force を付けてください。")


def _move_files(extracted: Path, root: Path) -> int:
    moved = 0
    if not extracted.is_dir():
        return moved
    for source in sorted(extracted.rglob("*")):
        if source.is_file():
            target = root / source.relative_to(extracted)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
            moved += 1
    return moved


def restore_backup(path: Path, force: bool = False) -> dict:
    """Restore the archive into this installation, upgrade it to the code's schema; returns the manifest
    with `upgraded_from` (the backup's revision when it was older, else None)."""
    from flask_migrate import upgrade

    from ..databases.operations import ensure_field_indexes

    manifest = read_manifest(path)
    _check_restorable(manifest, force)
    kind = manifest["database_kind"]
    root = _files_root()
    root.mkdir(parents=True, exist_ok=True)
    # Extracted next to FILES_DIR so that the files are moved into place, not copied twice.
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=root.parent) as scratch:
        with tarfile.open(path, "r:gz") as archive:
            archive.extractall(scratch, filter="data")  # refuses absolute paths, `..` and links out of it
        dump = Path(scratch, manifest["database_file"])
        if not dump.is_file():
            raise BackupError(f"バックアップに {manifest['database_file']} がありません。")
        db.session.remove()
        db.engine.dispose()
        if kind == "sqlite":
            target = _sqlite_path()
            target.parent.mkdir(parents=True, exist_ok=True)
            _sqlite_copy(dump, target)
            revision, counts = _sqlite_facts(target)
        else:
            _pg_restore(dump)
            with db.engine.connect() as connection:
                revision, counts = _pg_facts(connection)
        differing = {table: (count, counts.get(table)) for table, count in manifest["tables"].items()
                     if counts.get(table) != count}
        if differing or revision != manifest["alembic_revision"]:
            raise BackupError(f"復元したデータベースがバックアップの記録と一致しません: {differing or revision}")
        moved = _move_files(Path(scratch, FILES_PREFIX), root)
        if moved != manifest["file_count"]:
            raise BackupError(f"復元したファイルの数({moved})がバックアップの記録({manifest['file_count']})と一致しません。")
    head = code_head()
    manifest["upgraded_from"] = None
    if manifest["alembic_revision"] != head:
        upgrade()
        manifest["upgraded_from"] = manifest["alembic_revision"]
    # Per-field indexes follow the fields, not Alembic: bring back any the dump or the upgrade lacks.
    ensure_field_indexes()
    return manifest
