"""Self-hosters upgrade in place: a database filled at the first migration (0001) keeps every row through
`flask db upgrade`, and the app works on it; a backup made at 0001 restores into today's version."""

import shutil

import pytest
from backup_helpers import TEST_DATABASE_URL, Installations, drop_alembic_version, field_index_names
from flask_migrate import upgrade
from helpers import PASSWORDS, LoggedInClient
from sqlalchemy import MetaData, select, text
from werkzeug.security import generate_password_hash

from webapp.extensions import db

# Reflecting the 0001 tables meets the per-field expression indexes, which SQLAlchemy cannot reflect (harmless).
pytestmark = pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")

FIRST_REVISION = "0001"
FIRST_TABLES = ["users", "databases", "fields", "records", "menus", "menu_columns", "menu_filters"]


@pytest.fixture
def first_version(app):
    """An empty database migrated to 0001 only, as the first release created it."""
    with app.app_context():
        db.drop_all()
        drop_alembic_version()
        upgrade(revision=FIRST_REVISION)
    yield app
    with app.app_context():
        db.session.remove()
        drop_alembic_version()


def fill_first_version(app) -> dict:
    """Rows as the 0001 code wrote them: plain inserts into the 0001 tables (today's models are newer)."""
    from datetime import UTC, datetime

    now = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    with app.app_context(), db.engine.begin() as connection:
        tables = MetaData()
        tables.reflect(bind=connection, only=FIRST_TABLES)
        t = tables.tables

        def insert(table, **values) -> int:
            return connection.execute(t[table].insert().values(**values)).inserted_primary_key[0]

        hash_method = app.config["PASSWORD_HASH_METHOD"]
        common = {"is_active_user": True, "created_at": now, "can_db_settings": False, "can_system_integration": False}
        admin = insert("users", username="admin", display_name="管理 太郎", email="admin@example.co.jp",
                       password_hash=generate_password_hash(PASSWORDS["admin"], method=hash_method), is_admin=True,
                       **common)
        insert("users", username="plain", display_name="一般 次郎", email="",
               password_hash=generate_password_hash(PASSWORDS["plain"], method=hash_method), is_admin=False, **common)
        database = insert("databases", name="請求書(旧)", description="最初の版で作ったDB", position=1, created_at=now)
        fields = {}
        for position, (name, kind, placement, options) in enumerate([
            ("請求番号", "text", "header", []), ("請求金額", "number", "header", []),
            ("ステータス", "select", "header", ["未連携", "連携済"]), ("請求日", "date", "header", []),
            ("品名", "text", "detail", []),
        ], start=1):
            fields[name] = insert("fields", database_id=database, name=name, field_type=kind, placement=placement,
                                  origin="input", position=position, required=name == "請求番号", options=options,
                                  settings={}, help_text="")
        key = {name: str(field_id) for name, field_id in fields.items()}
        records = []
        for number, (amount, status) in enumerate([(1100, "未連携"), (22000, "連携済"), (330, "未連携")], start=1):
            data = {key["請求番号"]: f"OLD-{number:04d}", key["請求金額"]: amount, key["ステータス"]: status,
                    key["請求日"]: f"2026-10-{number:02d}"}
            details = [{key["品名"]: f"旧商品{number}"}]
            records.append(insert("records", database_id=database, data=data, details=details,
                                  search_text=f"old-{number:04d} {amount} {status} 旧商品{number}", created_at=now,
                                  updated_at=now, created_by_id=admin, updated_by_id=admin))
        menu = insert("menus", database_id=database, name="未連携の請求書(旧)", menu_type="record_list", position=1,
                      sort_field_id=fields["請求金額"], sort_desc=True, page_size=50)
        for position, name in enumerate(["請求番号", "請求金額", "ステータス"], start=1):
            insert("menu_columns", menu_id=menu, field_id=fields[name], position=position)
        insert("menu_filters", menu_id=menu, field_id=fields["ステータス"], operator="eq", value="未連携", position=1)
    return {"database": database, "menu": menu, "records": records, "fields": fields}


def first_table_rows() -> dict[str, list[dict]]:
    """Every 0001 table, only its 0001 columns, in id order."""
    with db.engine.connect() as connection:
        tables = MetaData()
        tables.reflect(bind=connection, only=FIRST_TABLES)
        return {name: [dict(row) for row in connection.execute(select(table).order_by(table.c.id)).mappings()]
                for name, table in tables.tables.items()}


def test_first_version_database_upgrades_with_every_row_and_works(first_version):
    app = first_version
    made = fill_first_version(app)
    with app.app_context():
        before = first_table_rows()
        upgrade()
        after = first_table_rows()
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert head != FIRST_REVISION
    for table in FIRST_TABLES:
        assert len(before[table]) > 0, table
        assert [{c: row[c] for c in before[table][0]} for row in after[table]] == before[table], table

    admin = LoggedInClient(app.test_client(), "admin")
    listing = admin.get(f"/menus/{made['menu']}")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "未連携の請求書(旧)" in page
    # The menu's filter (ステータス = 未連携) and sort (請求金額, descending) still apply.
    assert "OLD-0001" in page and "OLD-0003" in page and "OLD-0002" not in page
    assert page.index("OLD-0001") < page.index("OLD-0003")
    record_page = admin.get(f"/records/{made['records'][1]}").get_data(as_text=True)
    assert "OLD-0002" in record_page and "旧商品2" in record_page
    # The per-field indexes follow the fields: created for the old fields, and the list reads the same.
    from webapp.databases.operations import ensure_field_indexes

    with app.app_context():
        ensure_field_indexes()
        db.session.commit()
        assert {f"ix_records_f{made['fields'][n]}" for n in ("請求番号", "請求金額", "ステータス", "請求日")} \
            <= field_index_names()
    assert admin.get(f"/menus/{made['menu']}").get_data(as_text=True).count("OLD-000") == page.count("OLD-000")
    # New work lands after the old rows (sequences and autoincrement survived the upgrade).
    with app.app_context():
        from webapp.auth.operations import create_user

        assert create_user("newcomer", "Kobe-pass-2026", display_name="新 規").id > 2


@pytest.mark.skipif(bool(TEST_DATABASE_URL) and not shutil.which("pg_dump"),
                    reason="pg_dump/pg_restore not installed (apt-get install postgresql-client)")
def test_backup_of_the_first_version_restores_into_today_and_is_upgraded(first_version, tmp_path):
    app = first_version
    made = fill_first_version(app)
    with app.app_context():
        before = first_table_rows()
    created = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "v1.tar.gz")])
    assert created.exit_code == 0, created.output
    installations = Installations(tmp_path)
    try:
        target = installations.new("today")
        restored = target.test_cli_runner().invoke(args=["backup", "restore", str(tmp_path / "v1.tar.gz")])
        assert restored.exit_code == 0, restored.output
        assert f"リビジョン {FIRST_REVISION} から最新に更新しました" in restored.output
        with target.app_context():
            after = first_table_rows()
            assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one() != FIRST_REVISION
            assert f"ix_records_f{made['fields']['請求金額']}" in field_index_names()
        for table in FIRST_TABLES:
            assert [{c: row[c] for c in before[table][0]} for row in after[table]] == before[table], table
        page = LoggedInClient(target.test_client(), "admin").get(f"/menus/{made['menu']}").get_data(as_text=True)
        assert "OLD-0001" in page and "OLD-0003" in page and "OLD-0002" not in page
    finally:
        installations.close()
