"""What the run history keeps of a 楽楽明細連携設定: a setting with runs is hidden on delete, never removed, so the
history keeps its name (registered in core.dependents; integrations asks there)."""

from __future__ import annotations

from sqlalchemy import select

from ..core import dependents
from ..core.dependents import ORDER_HISTORY, Dependent
from ..extensions import db
from .models import Run


def _runs_of_setting(setting) -> list[Dependent]:
    run_id = db.session.execute(select(Run.id).where(Run.setting_id == setting.id).limit(1)).scalar()
    return [Dependent(("runs", setting.id), "システム連携状況確認の実行履歴", ORDER_HISTORY)] if run_id else []


dependents.register("runs", setting=_runs_of_setting)
