"""`flask timers list` and `flask timers dispatch`: the timers from the command line."""

from __future__ import annotations

from datetime import datetime

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from ..core.clock import local_tz
from ..extensions import db
from .models import Timer
from .operations import last_heartbeat, upcoming

timers_cli = AppGroup("timers", help="タイマー設定: list timers, run the dispatcher once.")


def _local(moment: datetime | None) -> str:
    return moment.astimezone(local_tz()).strftime("%Y/%m/%d %H:%M") if moment else "—"


@timers_cli.command("list")
def list_command() -> None:
    """Timers with their schedule and next run time."""
    timers = db.session.execute(select(Timer).order_by(Timer.id)).scalars().all()
    if not timers:
        click.echo("タイマー設定はありません。")
    for timer in timers:
        runs = upcoming(timer, count=1) if timer.enabled else []
        switch = "ON " if timer.enabled else "OFF"
        click.echo(f"{timer.id:>4}  {switch}  優先度{timer.priority:>4}  {timer.schedule.describe():<24}  "
                   f"次回 {_local(runs[0] if runs else None)}  {timer.setting.name}")
    click.echo(f"ディスパッチャの最終実行: {_local(last_heartbeat())}")


@timers_cli.command("dispatch")
@click.option("--no-enqueue", is_flag=True, help="Create the due runs and execute them here, without RQ.")
def dispatch_command(no_enqueue: bool) -> None:
    """Handle the slots due now (what the scheduler does every minute); safe next to a running scheduler."""
    from ..runs.engine import execute_run
    from .dispatcher import dispatch

    result = dispatch(enqueue=not no_enqueue)
    click.echo(f"実行 {len(result.runs)}件、スキップ {result.skipped}件、見逃し {result.missed}件")
    if no_enqueue:
        for run_id in result.runs:
            click.echo(f"実行No.{run_id}: {execute_run(run_id)}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(timers_cli)
