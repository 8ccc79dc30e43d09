"""The 楽楽明細連携設定 a URL names, or a Japanese 404 (integrations and timers load it here)."""

from __future__ import annotations

from flask import abort

from ..databases.models import Database
from ..extensions import db
from .models import IntegrationSetting


def get_setting(database: Database, setting_id: int) -> IntegrationSetting:
    """A setting of `database` that is not deleted."""
    setting = db.session.get(IntegrationSetting, setting_id)
    if setting is None or setting.database_id != database.id or setting.is_deleted:
        abort(404, description="指定された楽楽明細連携設定は存在しないか、削除されました。")
    return setting
