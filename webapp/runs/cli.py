"""`flask meisai run` and `flask meisai runs`: integrations from the command line."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from ..core import format_local
from ..databases.models import Menu
from ..extensions import db
from ..integrations.models import IntegrationSetting
from .models import Run

meisai_cli = AppGroup("meisai", help="楽楽明細連携: run integrations and list runs.")


def _find_setting(ref: str) -> IntegrationSetting:
    statement = select(IntegrationSetting).where(IntegrationSetting.is_deleted.is_(False))
    statement = statement.where(IntegrationSetting.id == int(ref)) if ref.isdigit() else statement.where(
        IntegrationSetting.name == ref)
    found = db.session.execute(statement).scalars().all()
    if len(found) != 1:
        raise click.ClickException(f"楽楽明細連携設定「{ref}」が見つかりません(IDか名前で指定してください)。" if not found else
                                   f"「{ref}」という名前の設定が複数あります。IDで指定してください。")
    return found[0]


@meisai_cli.command("run")
@click.argument("setting")
@click.option("--menu", "menu_ref", help="Menu id or name (default: all records and fields of the DB).")
@click.option("--memo", default="", help="メモ (sent as importProcessName).")
@click.option("--publication-date", default="", help="予約発行日時 'YYYY-MM-DD HH:MM' (local time) when required.")
def run_command(setting: str, menu_ref: str | None, memo: str, publication_date: str) -> None:
    """Run an integration now, in this process, and print the result."""
    from .engine import execute_run
    from .operations import RunError, parse_publication_date, start_run

    found = _find_setting(setting)
    menu = None
    if menu_ref:
        statement = select(Menu).where(Menu.database_id == found.database_id)
        statement = statement.where(Menu.id == int(menu_ref)) if menu_ref.isdigit() else statement.where(Menu.name == menu_ref)
        menu = db.session.execute(statement).scalar_one_or_none()
        if menu is None:
            raise click.ClickException(f"メニュー「{menu_ref}」がこのDBにありません。")
    try:
        when = parse_publication_date(found, publication_date)
        run = start_run(found, menu, executor_id=None, memo=memo, publication_date=when, trigger="cli", enqueue=False)
    except RunError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"実行No.{run.id}: {run.record_count}件を送信します…")
    execute_run(run.id)
    db.session.refresh(run)
    click.echo(f"実行No.{run.id}: {run.status_label}(成功 {run.ok_count}件、エラー {run.error_count}件、API呼び出し {run.call_count}回)")
    if run.error_message:
        click.echo(run.error_message)
    if run.status not in ("completed",):
        raise SystemExit(1)


@meisai_cli.command("runs")
@click.option("--limit", default=20, show_default=True)
def runs_command(limit: int) -> None:
    """List recent runs."""
    runs = db.session.execute(select(Run).order_by(Run.id.desc()).limit(limit)).scalars().all()
    if not runs:
        click.echo("実行履歴はありません。")
    for run in runs:
        click.echo(f"{run.id:>6}  {format_local(run.created_at)}  {run.status_label:<6}  {run.setting.name}  "
                   f"{run.executor_label}  {run.record_count}件  成功{run.ok_count}  エラー{run.error_count}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(meisai_cli)
