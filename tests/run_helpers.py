"""Helpers for run tests: find demo objects by name, run jobs in-process, read the emulator."""

from __future__ import annotations

from sqlalchemy import select

from webapp.databases.models import Database, Field, Menu, Record
from webapp.extensions import db
from webapp.integrations.models import IntegrationSetting
from webapp.runs.models import Run

CUSTOMER_MENU = "楽楽明細 未連携顧客"
INVOICE_MENU = "楽楽明細 送信待ち請求書"
CUSTOMER_SETTING = "楽楽明細へ顧客を連携"
INVOICE_SETTING = "楽楽明細へ請求書を発行(CSV)"
PDF_CSV_SETTING = "楽楽明細へ請求書を発行(PDF+CSV)"
PDF_SETTING = "楽楽明細へ請求書PDFを発行(PDFのみ)"


def menu_named(name: str) -> Menu:
    return db.session.execute(select(Menu).where(Menu.name == name)).scalar_one()


def setting_named(name: str) -> IntegrationSetting:
    return db.session.execute(select(IntegrationSetting).where(IntegrationSetting.name == name)).scalar_one()


def field_named(database_name: str, name: str) -> Field:
    return db.session.execute(
        select(Field).join(Database).where(Database.name == database_name, Field.name == name)
    ).scalar_one()


def records_of(database_name: str) -> list[Record]:
    return list(db.session.execute(
        select(Record).join(Database).where(Database.name == database_name).order_by(Record.id)
    ).scalars())


def latest_run() -> Run:
    return db.session.execute(select(Run).order_by(Run.id.desc())).scalars().first()


def execute(run_id: int) -> Run:
    """Run the job in this process (the same function the RQ worker calls)."""
    from webapp.runs.engine import execute_run

    execute_run(run_id)
    db.session.expire_all()
    return db.session.get(Run, run_id)


def run_url(app, menu_name: str, setting_name: str, action: str) -> str:
    with app.app_context():
        return f"/menus/{menu_named(menu_name).id}/integrations/{setting_named(setting_name).id}/{action}"


def add_customers(count: int, start: int = 1001, address2: str = "") -> None:
    """Bulk-insert customers (未連携) into the demo 顧客 DB: fast enough for tens of thousands."""
    from sqlalchemy import insert

    from webapp.databases.operations import build_search_text

    keys = {name: field_named("顧客", name).key for name in
            ("顧客コード", "顧客名", "郵便番号", "住所1", "住所2", "会社名", "部署名", "担当者名", "メールアドレス", "連携ステータス")}
    database_id = field_named("顧客", "顧客コード").database_id
    rows = []
    for number in range(start, start + count):
        data = {keys["顧客コード"]: f"K{number:06d}", keys["顧客名"]: f"株式会社テスト{number}", keys["郵便番号"]: "100-0001",
                keys["住所1"]: "東京都千代田区千代田1-1", keys["住所2"]: address2, keys["会社名"]: f"株式会社テスト{number}",
                keys["部署名"]: "経理部", keys["担当者名"]: "山田 太郎", keys["メールアドレス"]: f"k{number}@example.jp",
                keys["連携ステータス"]: "未連携"}
        rows.append({"database_id": database_id, "data": data, "details": [], "search_text": build_search_text(data, [])})
    for begin in range(0, len(rows), 5000):
        db.session.execute(insert(Record), rows[begin:begin + 5000])
    db.session.commit()


def import_totals(emulator) -> list[int]:
    """Rows 楽楽明細 counted in each customer import, in order."""
    client = emulator.client()
    return [client.get_customer_import_state(i["importId"]).total for i in emulator.imports() if i["kind"] == "customers"]


def imported_rows(emulator) -> int:
    return sum(import_totals(emulator))
