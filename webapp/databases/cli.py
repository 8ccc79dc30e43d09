"""`flask ensure-indexes`: rebuild the per-field indexes (they follow the fields, not Alembic migrations)."""

from __future__ import annotations

import click
from flask import Flask


def register_cli(app: Flask) -> None:
    @app.cli.command("ensure-indexes")
    def ensure_indexes_command() -> None:
        """Create the record indexes of every field (after an upgrade or a restore); safe to repeat."""
        from .operations import ensure_field_indexes

        count = ensure_field_indexes()
        click.echo(f"{count}項目のインデックスを確認しました。")
