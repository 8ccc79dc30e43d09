"""The タイマー that depend on a menu or a field (registered in core.dependents, which the permission policy and
the menu screens ask)."""

from __future__ import annotations

from sqlalchemy import select

from ..core import dependents
from ..core.dependents import ORDER_TIMER, Dependent
from ..extensions import db
from ..integrations.models import IntegrationSetting
from .models import Timer
from .operations import timer_label, timers_using


def _timer_dependent(timer: Timer) -> Dependent:
    return Dependent(("timer", timer.id), timer_label(timer), ORDER_TIMER)


def _whole_db_timers(target) -> list[Dependent]:
    """Timers without メニュー設定 send every field of their setting's DB."""
    timers = db.session.execute(
        select(Timer).join(IntegrationSetting, Timer.setting_id == IntegrationSetting.id)
        .where(Timer.menu_id.is_(None), IntegrationSetting.database_id == target.database_id,
               IntegrationSetting.is_deleted.is_(False))
        .order_by(Timer.id)
    ).scalars()
    return [_timer_dependent(t) for t in timers]


dependents.register(
    "timers",
    menu=lambda menu: [_timer_dependent(t) for t in timers_using(menu)],
    field=_whole_db_timers,
)
