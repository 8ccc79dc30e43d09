"""RQ jobs of 自動生成ファイル: plain functions taking ids, run in the worker's app context."""

from __future__ import annotations

from dataclasses import asdict

from ..runs.tasks import fresh_database_connections


@fresh_database_connections
def generate_missing_documents(field_id: int) -> dict:
    """Every missing or stale PDF of one autofile field (after a template change, an import, the demo seed)."""
    from .operations import generate_missing

    return asdict(generate_missing(field_id))
