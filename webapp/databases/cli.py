"""`flask ensure-indexes`: the per-field indexes (they follow the fields, not Alembic migrations)."""

from __future__ import annotations

import click
from flask import Flask


def register_cli(app: Flask) -> None:
    @app.cli.command("ensure-indexes")
    @click.option("--rebuild", is_flag=True, help="Drop and create every per-field index (not only missing ones).")
    def ensure_indexes_command(rebuild: bool) -> None:
        """Create the missing record indexes of every field (after an upgrade, a restore, on start); safe to repeat."""
        from ..extensions import db
        from .operations import ensure_field_indexes

        count = ensure_field_indexes(rebuild=rebuild)
        db.session.commit()
        verb = "作り直しました" if rebuild else "確認しました"
        click.echo(f"{count}項目のインデックスを{verb}。")
