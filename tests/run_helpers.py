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
