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
from pathlib import Path, PurePosixPath, PureWindowsPath

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import inspect, text
from sqlalchemy.pool import NullPool

from ..core.files import files_root
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


def _pg_connection(url=None) -> tuple[str, dict]:
    url = url or db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # not on the command line, where `ps` would show it
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _pg_run(command: list[str], url=None) -> None:
    dsn, env = _pg_connection(url)
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
            root = files_root()
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
#
# A restore reads only the members it knows (manifest.json, the database member of its kind, files/…) after
# checking every member of the archive, builds the new database beside the target (a temporary SQLite file, a
# temporary PostgreSQL database) and swaps it in only when its row counts match the manifest: a refused or
# failed restore leaves the target exactly as it was.

UNSAFE_LABELS = {"absolute": "絶対パス", "parent": "「..」を含むパス", "link": "リンク", "device": "デバイスファイル",
                 "special": "通常のファイルでもフォルダでもない項目", "duplicate": "同じ名前が2回"}
DATABASE_MEMBERS = {"sqlite": SQLITE_MEMBER, "postgresql": POSTGRESQL_MEMBER}


def _unreadable(path: Path, why: str) -> BackupError:
    return BackupError(f"{path} はこのアプリのバックアップとして読めません({why})。")


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be restored (a key of UNSAFE_LABELS), or None."""
    name = member.name
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "absolute"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "parent"
    if member.issym() or member.islnk():
        return "link"
    if member.ischr() or member.isblk():
        return "device"
    if not (member.isfile() or member.isdir()):
        return "special"
    return None


def _clean_name(member: tarfile.TarInfo) -> str:
    return PurePosixPath(member.name).as_posix().removeprefix("./")


def _checked_members(path: Path, archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Every member checked before anything is read: refuses the whole archive on one unsafe member."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in archive.getmembers():
        problem = _member_problem(member)
        name = _clean_name(member)
        if problem is None and member.isfile() and name in members:
            problem = "duplicate"
        if problem:
            raise BackupError(f"{path} に安全でない項目があるため復元しません: {member.name[:200]!r}"
                              f"({UNSAFE_LABELS[problem]})。バックアップは `flask backup create` で作り直してください。")
        if member.isfile():
            members[name] = member
    return members


def _check_manifest(path: Path, manifest) -> dict:
    """The manifest's shape: a hand-edited or foreign one is refused with a message, never a traceback."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise _unreadable(path, "manifest.json の形式が正しくありません")
    if manifest["format"] > FORMAT:
        raise BackupError("新しいバージョンのバックアップです(形式が新しい)。アプリを更新してから復元してください。")
    kind = manifest.get("database_kind")
    if kind not in DATABASE_MEMBERS:
        raise _unreadable(path, "manifest.json のデータベースの種類が正しくありません")
    # The database member is named by the kind: the manifest cannot point at another file, in or out of it.
    if manifest.get("database_file") != DATABASE_MEMBERS[kind]:
        raise _unreadable(path, f"manifest.json のデータベースファイルは {DATABASE_MEMBERS[kind]} だけです")
    tables = manifest.get("tables")
    counts_ok = isinstance(tables, dict) and all(isinstance(k, str) and type(v) is int for k, v in tables.items())
    if not counts_ok or type(manifest.get("file_count")) is not int or not isinstance(manifest.get("alembic_revision"), str):
        raise _unreadable(path, "manifest.json の件数またはリビジョンが正しくありません")
    return manifest


def read_manifest(path: Path) -> dict:
    """The checked manifest of the archive at `path` (every member is checked first)."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = _checked_members(path, archive)
            if MANIFEST not in members:
                raise _unreadable(path, "manifest.json がありません")
            manifest = json.loads(archive.extractfile(members[MANIFEST]).read())
    except BackupError:
        raise
    except (OSError, EOFError, tarfile.TarError, ValueError) as exc:
        raise _unreadable(path, exc.__class__.__name__) from exc
    return _check_manifest(path, manifest)


def _extract_known(path: Path, manifest: dict, scratch: Path) -> tuple[Path, int]:
    """Write the database member and files/… (nothing else) under `scratch`; returns (database copy, files)."""
    database_member, files = manifest["database_file"], 0
    dump = None
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = _checked_members(path, archive)
            if database_member not in members:
                raise BackupError(f"バックアップに {database_member} がありません。")
            for name, member in members.items():
                if name != database_member and not name.startswith(f"{FILES_PREFIX}/"):
                    continue  # not ours: never read
                target = scratch.joinpath(*PurePosixPath(name).parts)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(archive.extractfile(member), out)
                if name == database_member:
                    dump = target
                else:
                    files += 1
    except BackupError:
        raise
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise BackupError(f"{path} を展開できませんでした({exc.__class__.__name__}: {exc})。"
                          "ファイルが壊れているか、ディスクの空きが足りません。") from exc
    return dump, files


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


def _check_facts(manifest: dict, revision: str | None, counts: dict[str, int]) -> None:
    """The restored copy against the manifest, before it replaces anything."""
    differing = {table: (count, counts.get(table)) for table, count in manifest["tables"].items()
                 if counts.get(table) != count}
    if differing or revision != manifest["alembic_revision"]:
        detail = "、".join(f"{table}: 記録 {want}件 / 復元 {f'{got}件' if got is not None else 'なし'}"
                          for table, (want, got) in list(differing.items())[:5]) or f"リビジョン {revision}"
        raise BackupError(f"復元したデータベースがバックアップの記録と一致しないため、置き換えませんでした({detail})。"
                          "復元先は元のままです。")


def _sqlite_restore(dump: Path, manifest: dict) -> None:
    """Copy into a temporary file beside the target, check it, then swap it in with one rename."""
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.restore-{os.getpid()}")
    try:
        _sqlite_copy(dump, temporary)
        _check_facts(manifest, *_sqlite_facts(temporary))
        # The old database's WAL must not be replayed onto the new file: fold it in and empty it first.
        if target.exists():
            connection = sqlite3.connect(target, timeout=30)
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise BackupError(f"復元先のSQLiteを切り替えられません({exc})。アプリとワーカーを止めてから実行してください。") from exc
            finally:
                connection.close()
        os.replace(temporary, target)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)


def _pg_admin_engine():
    """An engine on the server's maintenance database: a database can only be renamed from another one."""
    from sqlalchemy import create_engine

    return create_engine(db.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _pg_restore(dump: Path, manifest: dict) -> None:
    """pg_restore into a new database, check it, then swap the names (the target is renamed, not dropped,
    until the new one is in place)."""
    from sqlalchemy import create_engine

    pg_restore = _pg_tool("pg_restore")
    target = db.engine.url.database
    suffix = f"{os.getpid()}_{int(time.time())}"
    # Distinct whatever the target's length (PostgreSQL cuts names at 63 bytes).
    temporary, previous = f"{target[:30]}_restore_{suffix}", f"{target[:30]}_replaced_{suffix}"
    with db.engine.connect() as connection:
        encoding, collate, ctype = connection.execute(text(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
            "WHERE datname = current_database()")).one()
    db.session.remove()
    db.engine.dispose()
    admin = _pg_admin_engine()
    quote = admin.dialect.identifier_preparer.quote
    try:
        with admin.connect() as connection:
            connection.execute(text(
                f"CREATE DATABASE {quote(temporary)} TEMPLATE template0 ENCODING '{encoding}' "
                f"LC_COLLATE '{collate}' LC_CTYPE '{ctype}'"))
        swapped = False
        try:
            url = db.engine.url.set(database=temporary)
            _pg_run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                     str(dump)], url=url)
            restored = create_engine(url, poolclass=NullPool)
            try:
                with restored.connect() as connection:
                    _check_facts(manifest, *_pg_facts(connection))
            finally:
                restored.dispose()
            with admin.connect() as connection:
                try:
                    connection.execute(text(f"ALTER DATABASE {quote(target)} RENAME TO {quote(previous)}"))
                except Exception as exc:
                    raise BackupError("復元先のデータベースを切り替えられません(他の接続が使用中です)。"
                                      "アプリとワーカーを止めてから実行してください。復元先は元のままです。") from exc
                connection.execute(text(f"ALTER DATABASE {quote(temporary)} RENAME TO {quote(target)}"))
                swapped = True
                connection.execute(text(f"DROP DATABASE {quote(previous)}"))
        finally:
            if not swapped:
                with admin.connect() as connection:
                    connection.execute(text(f"DROP DATABASE IF EXISTS {quote(temporary)}"))
    finally:
        admin.dispose()


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
    root = files_root()
    root.mkdir(parents=True, exist_ok=True)
    # Extracted next to FILES_DIR so that the files are moved into place, not copied twice.
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=root.parent) as scratch:
        dump, file_count = _extract_known(path, manifest, Path(scratch))
        if file_count != manifest["file_count"]:
            raise BackupError(f"バックアップのファイルの数({file_count})が記録({manifest['file_count']})と一致しません。"
                              "復元先は元のままです。")
        db.session.remove()
        db.engine.dispose()
        if kind == "sqlite":
            _sqlite_restore(dump, manifest)
        else:
            _pg_restore(dump, manifest)
        _move_files(Path(scratch, FILES_PREFIX), root)
    head = code_head()
    manifest["upgraded_from"] = None
    if manifest["alembic_revision"] != head:
        upgrade()
        manifest["upgraded_from"] = manifest["alembic_revision"]
    # Per-field indexes follow the fields, not Alembic: bring back any the dump or the upgrade lacks.
    ensure_field_indexes()
    db.session.commit()
    return manifest
