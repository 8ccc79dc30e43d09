"""`flask backup create PATH` and `flask backup restore PATH [--force]`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .operations import BackupError, create_backup, restore_backup, token_key_source

backup_cli = AppGroup("backup", help="Backups: the database and FILES_DIR in one .tar.gz archive.")


def key_warning() -> str:
    source = token_key_source()
    where = "環境変数 TOKEN_ENCRYPTION_KEY" if source == "TOKEN_ENCRYPTION_KEY" else \
        "SECRET_KEY。環境変数で指定しない場合は instance/secret_key のファイル"
    return (
        f"注意: 暗号化キー({where})はバックアップに含まれていません。保存されたAPIトークンを読むにはこのキーが必要です。"
        "バックアップとは別に安全に保管してください。キーを失った場合、各「楽楽明細連携設定」のAPIトークンが"
        "「要再入力」と表示されます(入力し直せば使えます)。それ以外のデータは失われません。\n"
        f"WARNING: the encryption key ({source}) is NOT in this backup. It is needed to read the stored API tokens: "
        "keep it safe, separately. If it is lost, each 楽楽明細連携設定 shows 要再入力 for its API token "
        "(enter the token again); nothing else is lost."
    )


def _summary(manifest: dict) -> str:
    counts = manifest["counts"]
    return (f"ユーザ {counts['users']}件、レコード {counts['records']}件、楽楽明細連携設定 {counts['settings']}件、"
            f"実行履歴 {counts['runs']}件、ファイル {manifest['file_count']}件"
            f"(バージョン {manifest['app_version']}、リビジョン {manifest['alembic_revision']}、"
            f"{manifest['database_kind']}、{manifest['created_at']})")


@backup_cli.command("create")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def create_command(path: Path) -> None:
    """Write the database and FILES_DIR to PATH (.tar.gz); safe while the app runs."""
    try:
        manifest = create_backup(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"バックアップを作成しました: {path}")
    click.echo(_summary(manifest))
    click.echo(key_warning())


@backup_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a target that already has users or records.")
def restore_command(path: Path, force: bool) -> None:
    """Restore PATH into this (empty) installation, then upgrade it to this version. Stop the app and workers first."""
    from sqlalchemy import select

    from ..extensions import db
    from ..integrations.models import IntegrationSetting
    from ..integrations.operations import token_readable

    click.echo(key_warning())
    try:
        manifest = restore_backup(path, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"復元しました: {path}")
    click.echo(_summary(manifest))
    if manifest["upgraded_from"]:
        click.echo(f"データベースをリビジョン {manifest['upgraded_from']} から最新に更新しました。")
    settings = db.session.execute(select(IntegrationSetting).where(IntegrationSetting.is_deleted.is_(False))).scalars()
    unreadable = [s.name for s in settings if not token_readable(s)]
    if unreadable:
        click.echo(f"この設定の暗号化キーではAPIトークンを読めない楽楽明細連携設定が {len(unreadable)}件あります"
                   f"(要再入力): {'、'.join(unreadable)}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(backup_cli)
