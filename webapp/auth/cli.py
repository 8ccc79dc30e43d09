"""`flask create-admin`: the first administrator of a new installation."""

from __future__ import annotations

import click
from flask import Flask

from .operations import UserError, create_user


def register_cli(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--email", default="", help="Mail address for report mails.")
    @click.option("--name", "display_name", default="", help="Display name (氏名).")
    @click.password_option(help="Prompted when omitted (never pass it on a shared machine's command line).")
    def create_admin(username: str, email: str, display_name: str, password: str) -> None:
        """Create an administrator (管理者) account."""
        try:
            create_user(username, password, display_name=display_name, email=email, is_admin=True)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"管理者「{username}」を作成しました。")
