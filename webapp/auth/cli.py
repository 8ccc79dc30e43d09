"""`flask create-admin` (the first administrator of a new installation) and `flask set-password`."""

from __future__ import annotations

import click
from flask import Flask

from ..extensions import db
from .operations import UserError, change_password, create_user, find_user
from .passwords import PASSWORD_RULES


def _password_option():
    # The rules are in the prompt itself: read before typing, not only after a refusal.
    return click.password_option(prompt=f"パスワード({PASSWORD_RULES})\nパスワード",
                                 confirmation_prompt="パスワード(確認)",
                                 help="Prompted when omitted (never pass it on a shared machine's command line).")


def register_cli(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--email", default="", help="Mail address for report mails.")
    @click.option("--name", "display_name", default="", help="Display name (氏名).")
    @_password_option()
    def create_admin(username: str, email: str, display_name: str, password: str) -> None:
        """Create an administrator (管理者) account."""
        try:
            create_user(username, password, display_name=display_name, email=email, is_admin=True)
            db.session.commit()
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"管理者「{username}」を作成しました。")

    @app.cli.command("set-password")
    @click.argument("username")
    @_password_option()
    def set_password(username: str, password: str) -> None:
        """Set a user's password (e.g. a forgotten one); every session of the user ends."""
        user = find_user(username)
        if user is None:
            raise click.ClickException(f"ユーザ「{username}」はありません。")
        try:
            change_password(user, password)
            db.session.commit()
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"ユーザ「{user.username}」のパスワードを変更しました。ログイン中のセッションはすべて終了しました。")
