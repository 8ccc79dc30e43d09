"""`flask backup create` on a working installation, `flask backup restore` into an empty one: every record,
setting, run and file comes back; the encryption key never travels in the archive."""

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from backup_helpers import (
    SECRET_KEY,
    TEST_DATABASE_URL,
    Installations,
    all_rows,
    drop_alembic_version,
    field_index_names,
)
from helpers import LoggedInClient
from run_helpers import (
    CUSTOMER_MENU,
    CUSTOMER_SETTING,
    INVOICE_MENU,
    PDF_CSV_SETTING,
    execute,
    field_named,
    menu_named,
    records_of,
    setting_named,
)
from sqlalchemy import text

from webapp.extensions import db
from webapp.integrations.operations import token_of
from webapp.runs.models import Run

if TEST_DATABASE_URL and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
    pytest.skip("pg_dump/pg_restore not installed (apt-get install postgresql-client): PostgreSQL backups "
                "need them", allow_module_level=True)


@pytest.fixture
def installations(tmp_path):
    made = Installations(tmp_path)
    yield made
    made.close()


@pytest.fixture
def installation(app, demo):
    """The demo after two runs: customers (CSV) and invoices as PDF+CSV (each record's PDF, the ZIP and CSV
    sent), recorded at the code's Alembic head like every installation started with `flask db upgrade`."""
    from flask_migrate import stamp

    from webapp.runs.operations import start_run

    with app.app_context():
        for menu, setting in ((CUSTOMER_MENU, CUSTOMER_SETTING), (INVOICE_MENU, PDF_CSV_SETTING)):
            run = start_run(setting_named(setting), menu_named(menu), executor_id=None, enqueue=False)
            assert execute(run.id).status == "completed"
        stamp()
    yield app
    with app.app_context():
        db.session.remove()
        drop_alembic_version()


def snapshot(app) -> dict:
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        return {
            "rows": all_rows(),
            "revision": db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one(),
            "indexes": field_index_names(),
            "files": {p.relative_to(files_dir).as_posix(): p.read_bytes() for p in files_dir.rglob("*") if p.is_file()},
        }


def create(app, path) -> str:
    result = app.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def restore(app, path, *options) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["backup", "restore", str(path), *options])
    return result.exit_code, result.output


def user_of(app, name="user") -> LoggedInClient:
    return LoggedInClient(app.test_client(), name)


def test_restore_into_an_empty_installation_reproduces_everything(installation, installations, tmp_path, demo):
    source = installation
    archive_path = tmp_path / "backups" / "meisai-backup.tar.gz"
    output = create(source, archive_path)
    assert "バックアップを作成しました" in output
    assert "暗号化キー" in output and "含まれていません" in output and "要再入力" in output
    assert "NOT in this backup" in output
    before = snapshot(source)
    assert before["rows"]["runs"] and before["rows"]["run_calls"] and len(before["files"]) >= 10

    with tarfile.open(archive_path) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("manifest.json"))
    kind = "postgresql" if TEST_DATABASE_URL else "sqlite"
    assert ("database.dump" if TEST_DATABASE_URL else "database.sqlite3") in names
    assert manifest["database_kind"] == kind and manifest["alembic_revision"] == before["revision"]
    assert manifest["counts"] == {"users": 3, "records": 50, "settings": len(before["rows"]["integration_settings"]),
                                  "runs": 2}
    assert manifest["file_count"] == len(before["files"]) == sum(n.startswith("files/") for n in names)
    # Neither the configured key nor the generated instance/secret_key file is anywhere in the archive.
    raw = gzip.decompress(archive_path.read_bytes())
    assert SECRET_KEY.encode() not in raw
    assert (Path(source.instance_path) / "secret_key").read_bytes().strip() not in raw
    assert archive_path.stat().st_mode & 0o077 == 0

    target = installations.new("restored")
    code, output = restore(target, archive_path)
    assert code == 0, output
    assert "復元しました" in output and "ユーザ 3件、レコード 50件" in output and "NOT in this backup" in output
    after = snapshot(target)
    for table, rows in before["rows"].items():
        assert len(after["rows"][table]) == len(rows), table
        assert after["rows"][table] == rows, table
    assert after["revision"] == before["revision"]
    assert after["files"] == before["files"]
    assert after["indexes"] == before["indexes"] and after["indexes"]

    # What users see: the token works, the sent files and a record's PDF download byte for byte, lists show.
    with target.app_context():
        assert token_of(setting_named(CUSTOMER_SETTING)) == demo.token
        customer_run = min(run.id for run in db.session.query(Run))
        invoice = next(r for r in records_of("請求書") if r.data.get(field_named("請求書", "請求書PDF").key))
        pdf_field_id = field_named("請求書", "請求書PDF").id
        database_id, menu_id = invoice.database_id, menu_named("顧客一覧").id
    for url in (f"/runs/{customer_run}/calls/1/files/0", f"/records/{invoice.id}/documents/{pdf_field_id}"):
        restored = user_of(target).get(url)
        assert restored.status_code == 200 and restored.data == user_of(source).get(url).data, url
    assert user_of(target).get(f"/records/{invoice.id}/documents/{pdf_field_id}").data[:5] == b"%PDF-"
    listing = user_of(target).get(f"/menus/{menu_id}").get_data(as_text=True)
    assert "C00001" in listing and "C00030" in listing
    settings_page = user_of(target, "keiri").get(f"/dbs/{database_id}/integrations").get_data(as_text=True)
    assert "設定済み" in settings_page and "要再入力" not in settings_page


def test_restore_with_another_key_asks_only_for_the_tokens_again(installation, installations, tmp_path):
    create(installation, tmp_path / "b.tar.gz")
    before = snapshot(installation)
    target = installations.new("otherkey", secret_key="a-different-secret-key-after-a-lost-one")
    code, output = restore(target, tmp_path / "b.tar.gz")
    assert code == 0, output
    assert "要再入力" in output and CUSTOMER_SETTING in output
    after = snapshot(target)
    assert after["rows"] == before["rows"] and after["files"] == before["files"]
    with target.app_context():
        database_id = setting_named(CUSTOMER_SETTING).database_id
        menu_id = menu_named("顧客一覧").id
    keiri = user_of(target, "keiri")
    settings_page = keiri.get(f"/dbs/{database_id}/integrations").get_data(as_text=True)
    assert "要再入力" in settings_page and "設定済み" not in settings_page
    listing = keiri.get(f"/menus/{menu_id}").get_data(as_text=True)
    assert "C00001" in listing


def test_restore_refuses_an_installation_with_data_unless_forced(installation, installations, tmp_path):
    create(installation, tmp_path / "b.tar.gz")
    target = installations.new("used")
    with target.app_context():
        from webapp.auth.operations import create_user

        create_user("someone", "Sapporo-pass-2026", display_name="既存 利用者")
        db.session.commit()
    code, output = restore(target, tmp_path / "b.tar.gz")
    assert code != 0 and "空ではありません" in output and "--force" in output
    with target.app_context():
        assert [row["username"] for row in all_rows()["users"]] == ["someone"]  # nothing changed
    code, output = restore(target, tmp_path / "b.tar.gz", "--force")
    assert code == 0, output
    assert snapshot(target)["rows"] == snapshot(installation)["rows"]


def test_restore_refuses_a_backup_of_a_newer_version(installation, installations, tmp_path):
    create(installation, tmp_path / "b.tar.gz")
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(tmp_path / "b.tar.gz") as src, tarfile.open(newer, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest["alembic_revision"] = "9999_from_the_future"
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    target = installations.new("older_code")
    code, output = restore(target, newer)
    assert code != 0 and "新しいバージョンのバックアップです" in output
    with target.app_context():
        assert all(not rows for rows in all_rows().values())


def test_create_refuses_to_overwrite_an_existing_file(installation, tmp_path):
    existing = tmp_path / "b.tar.gz"
    existing.write_bytes(b"keep me")
    result = installation.test_cli_runner().invoke(args=["backup", "create", str(existing)])
    assert result.exit_code != 0 and "既に存在します" in result.output
    assert existing.read_bytes() == b"keep me"


def test_the_generated_secret_key_stays_out_even_when_files_dir_encloses_it(installation, tmp_path):
    # A FILES_DIR configured as the instance folder itself: the key file there must still not be archived.
    key_file = Path(installation.instance_path) / "secret_key"
    shutil.copytree(installation.config["FILES_DIR"], Path(installation.instance_path) / "files", dirs_exist_ok=True)
    installation.config["FILES_DIR"] = installation.instance_path
    create(installation, tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        names = archive.getnames()
    assert "files/secret_key" not in names and any(n.startswith("files/files/records/") for n in names)
    assert key_file.read_bytes().strip() not in gzip.decompress((tmp_path / "b.tar.gz").read_bytes())


def test_restore_into_a_never_started_installation(installation, installations, tmp_path):
    # No tables at all yet (`flask db upgrade` never ran there): the restore brings the schema with the data.
    create(installation, tmp_path / "b.tar.gz")
    target = installations.new("blank", migrate=False)
    code, output = restore(target, tmp_path / "b.tar.gz")
    assert code == 0, output
    assert snapshot(target)["rows"] == snapshot(installation)["rows"]


# ---- what a restore refuses: unsafe members, a manifest pointing elsewhere, a copy that does not match -------


@pytest.fixture
def small_source(app, sample):
    """The sample 請求書 DB with an uploaded file, recorded at the code's head like a started installation."""
    from flask_migrate import stamp

    with app.app_context():
        files = Path(app.config["FILES_DIR"], "records", "1")
        files.mkdir(parents=True)
        (files / "upload.txt").write_bytes("請求書の添付".encode())
        stamp()
    yield app
    with app.app_context():
        db.session.remove()
        drop_alembic_version()


def rewrite(source: Path, target: Path, manifest_changes=None, replace=None, extra=()):
    """A copy of the archive with manifest keys changed, members' bytes replaced and members added."""
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json" and manifest_changes:
                manifest = json.loads(data)
                for key, value in manifest_changes.items():
                    if callable(value):
                        value(manifest)
                    else:
                        manifest[key] = value
                data = json.dumps(manifest).encode()
            if replace and member.name in replace:
                data = replace[member.name]
            if data is not None:
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for member, data in extra:
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def member(name: str, kind=tarfile.REGTYPE, data: bytes | None = b"x", linkname: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    else:
        data = None
    return info, data


def target_state(app) -> dict:
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        return {"rows": all_rows(), "files": sorted(p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*"))}


@pytest.mark.parametrize("bad,label", [
    (member("/tmp/meisai-absolute.txt"), "絶対パス"),
    (member("files/../../meisai-parent.txt"), "「..」を含むパス"),
    (member("files/records/link", tarfile.SYMTYPE, linkname="/etc/passwd"), "リンク"),
    (member("files/records/hard", tarfile.LNKTYPE, linkname="manifest.json"), "リンク"),
    (member("files/records/tty", tarfile.CHRTYPE), "デバイスファイル"),
    (member("files/records/disk", tarfile.BLKTYPE), "デバイスファイル"),
    (member("files/records/pipe", tarfile.FIFOTYPE), "通常のファイルでもフォルダでもない項目"),
    (member("database.sqlite3" if not TEST_DATABASE_URL else "database.dump", data=b"second copy"), "同じ名前が2回"),
], ids=["absolute", "parent", "symlink", "hardlink", "char-device", "block-device", "fifo", "duplicate"])
def test_restore_refuses_an_archive_with_an_unsafe_member_in_japanese(small_source, installations, tmp_path,
                                                                     bad, label):
    create(small_source, tmp_path / "b.tar.gz")
    archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "bad.tar.gz", extra=[bad])
    target = installations.new("unsafe")
    before = target_state(target)
    code, output = restore(target, archive)
    assert code == 1 and "安全でない項目があるため復元しません" in output and f"({label})" in output, output
    assert "Traceback" not in output and bad[0].name in output
    assert target_state(target) == before
    assert not Path("/tmp/meisai-absolute.txt").exists() and not (tmp_path.parent / "meisai-parent.txt").exists()


def test_the_manifest_cannot_point_at_a_database_outside_the_archive(small_source, installations, tmp_path):
    # Another installation's database lies on the same machine: a crafted manifest must not restore it.
    create(small_source, tmp_path / "b.tar.gz")
    outside = tmp_path / "outside-copy"
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        database_member = json.load(archive.extractfile("manifest.json"))["database_file"]
        outside.write_bytes(archive.extractfile(database_member).read())
    for pointer in (str(outside), f"../{outside.name}", "files/records/1/upload.txt"):
        archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "pointer.tar.gz", {"database_file": pointer})
        target = installations.new(f"pointer{len(installations.apps)}")
        code, output = restore(target, archive)
        assert code == 1 and "manifest.json のデータベースファイルは" in output and "だけです" in output, output
        assert target_state(target)["rows"]["users"] == []


@pytest.mark.parametrize("changes", [
    {"format": "1"}, {"tables": "many"}, {"file_count": None}, {"database_kind": "oracle"},
], ids=["format-text", "tables-text", "file-count-missing", "unknown-kind"])
def test_a_malformed_manifest_is_refused_with_a_message(small_source, installations, tmp_path, changes):
    create(small_source, tmp_path / "b.tar.gz")
    archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "odd.tar.gz", changes)
    code, output = restore(installations.new("odd"), archive)
    assert code == 1 and "このアプリのバックアップとして読めません(manifest.json の" in output, output


def test_members_the_restore_does_not_know_are_never_read(small_source, installations, tmp_path):
    create(small_source, tmp_path / "b.tar.gz")
    archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "extra.tar.gz",
                      extra=[member("instance/secret_key", data=b"planted"), member("notes.txt")])
    target = installations.new("extra")
    code, output = restore(target, archive)
    assert code == 0, output
    assert target_state(target)["files"] == ["records", "records/1", "records/1/upload.txt"]
    assert not Path(target.instance_path, "secret_key").exists() or \
        Path(target.instance_path, "secret_key").read_bytes() != b"planted"


def _one_more_record(manifest):
    manifest["tables"]["records"] += 1


@pytest.mark.parametrize("how", ["counts-differ", "corrupt-database"])
def test_a_failed_restore_leaves_the_target_as_it_was(small_source, installations, tmp_path, how):
    create(small_source, tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        database_member = json.load(archive.extractfile("manifest.json"))["database_file"]
    if how == "counts-differ":
        archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "bad.tar.gz", {"tables": _one_more_record})
    else:
        archive = rewrite(tmp_path / "b.tar.gz", tmp_path / "bad.tar.gz",
                          replace={database_member: b"not a database at all" * 100})
    target = installations.new("kept")
    with target.app_context():
        from webapp.auth.operations import create_user

        create_user("someone", "Sapporo-pass-2026", display_name="既存 利用者")
        db.session.commit()
    before = target_state(target)
    code, output = restore(target, archive, "--force")
    assert code == 1 and "Traceback" not in output, output
    if how == "counts-differ":
        assert "バックアップの記録と一致しないため、置き換えませんでした(records: 記録 2件 / 復元 1件)" in output
        assert "復元先は元のままです" in output
    assert target_state(target) == before
    # The target still works as before, and a good archive restores afterwards.
    assert LoggedInClient(target.test_client(), "someone", password="Sapporo-pass-2026").get("/").status_code == 200
    code, output = restore(target, tmp_path / "b.tar.gz", "--force")
    assert code == 0, output
    assert target_state(target)["rows"]["records"] == target_state(small_source)["rows"]["records"]
