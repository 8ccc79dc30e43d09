"""タイマー設定: save (validated, audited), what the screens show (next runs, last fired, slot history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask_login import current_user
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..core.audit import audit, diff
from ..core.clock import as_utc, local_tz, to_local, utcnow
from ..core.errors import DomainError
from ..databases.models import MENU_TYPE_RECORD_LIST, Menu, Record
from ..extensions import db
from ..integrations.models import IntegrationSetting
from ..runs.models import Run
from ..runs.operations import start_run
from .models import SchedulerHeartbeat, SlotOutcome, Timer, TimerSlot
from .schedule import Kind, Schedule, instant_on, next_runs

PRIORITY_MIN = 0
PRIORITY_MAX = 999
NEXT_RUN_COUNT = 5
HISTORY_LENGTH = 10
HEARTBEAT_NAME = "timer-dispatcher"
# The dispatcher beats every minute; older than this, timers are not firing.
HEARTBEAT_MAX_AGE = timedelta(minutes=2)


class TimerError(DomainError):
    """A refused タイマー設定, with a Japanese message for `field` (a form field name) or the whole form."""


@dataclass
class TimerValues:
    enabled: bool
    priority: int
    kind: Kind
    at: time
    menu_id: int | None = None
    once_date: date | None = None
    weekdays: list[int] = field(default_factory=list)
    month_day: int | None = None
    last_day: bool = False

    @property
    def schedule(self) -> Schedule:
        return Schedule(kind=self.kind, at=self.at, once_date=self.once_date, weekdays=frozenset(self.weekdays),
                        month_day=self.month_day, last_day=self.last_day)


def timer_of(setting: IntegrationSetting) -> Timer | None:
    return db.session.execute(select(Timer).where(Timer.setting_id == setting.id)).scalar_one_or_none()


def timers_using(menu: Menu) -> list[Timer]:
    """The timers whose メニュー設定 is this menu (of settings not deleted), for the menu's settings page."""
    return list(db.session.execute(
        select(Timer).join(IntegrationSetting, Timer.setting_id == IntegrationSetting.id)
        .where(Timer.menu_id == menu.id, IntegrationSetting.is_deleted.is_(False))
        .order_by(Timer.priority.desc(), Timer.id)
    ).scalars())


def menu_choices(setting: IntegrationSetting) -> list[Menu]:
    """メニュー設定 candidates: the レコード一覧 menus of the setting's DB (a timer run sends what the menu shows)."""
    return list(db.session.execute(
        select(Menu).where(Menu.database_id == setting.database_id, Menu.menu_type == MENU_TYPE_RECORD_LIST)
        .order_by(Menu.position, Menu.id)
    ).scalars())


def check_values(setting: IntegrationSetting, values: TimerValues, now: datetime) -> None:
    """The rules of a saveable timer (the form checks the formats; this checks the meaning)."""
    if values.menu_id is not None and values.menu_id not in {m.id for m in menu_choices(setting)}:
        raise TimerError("このDBのレコード一覧メニューから選んでください。", "menu_id")
    if not PRIORITY_MIN <= values.priority <= PRIORITY_MAX:
        raise TimerError(f"{PRIORITY_MIN}〜{PRIORITY_MAX}の整数で入力してください。", "priority")
    if values.kind == Kind.ONCE:
        if values.once_date is None:
            raise TimerError("実行日を入力してください。", "once_date")
        if instant_on(values.schedule, values.once_date, local_tz()) <= now:
            raise TimerError("過去の日時は指定できません。これから先の日時を入力してください。", "once_date")
    if values.kind == Kind.WEEKLY and not values.weekdays:
        raise TimerError("曜日を1つ以上選んでください。", "weekdays")
    if values.kind == Kind.MONTHLY and not values.last_day and not (values.month_day and 1 <= values.month_day <= 31):
        raise TimerError("1〜31日または末日を選んでください。", "month_day")


def snapshot(timer: Timer) -> dict[str, str]:
    """The timer as people read it, for the audit diff."""
    return {
        "メニュー設定": timer.menu_name or "指定しない(全レコード・全項目)",
        "タイマースイッチ": "ON(実行する)" if timer.enabled else "OFF(実行しない)",
        "タイマー優先度": str(timer.priority),
        "タイマー起動スケジュール": timer.schedule.describe(),
    }


def save_timer(setting: IntegrationSetting, values: TimerValues, now: datetime | None = None) -> Timer:
    """確定: validate, store only the settings of the chosen kind, audit, commit (all or nothing)."""
    now = now or utcnow()
    check_values(setting, values, now)
    timer = timer_of(setting)
    before = snapshot(timer) if timer else {}
    previous = (timer.enabled, timer.schedule) if timer else None
    if timer is None:
        timer = Timer(setting_id=setting.id)
        db.session.add(timer)
    menu = db.session.get(Menu, values.menu_id) if values.menu_id else None
    timer.menu_id = menu.id if menu else None
    timer.menu_name = menu.name if menu else ""
    timer.enabled = values.enabled
    timer.priority = values.priority
    timer.kind = values.kind.value
    timer.at_time = values.at.strftime("%H:%M")
    kind = values.kind
    timer.once_date = values.once_date if kind == Kind.ONCE else None
    timer.weekdays = ",".join(str(d) for d in sorted(set(values.weekdays))) if kind == Kind.WEEKLY else ""
    timer.month_day = values.month_day if kind == Kind.MONTHLY and not values.last_day else None
    timer.last_day = kind == Kind.MONTHLY and values.last_day
    # Switching on or changing the schedule starts from now: slots before this moment never fire or count
    # as missed. A change of priority or menu alone keeps the pending minute.
    if previous is None or previous != (timer.enabled, timer.schedule):
        timer.checked_through = now
    if current_user and current_user.is_authenticated:
        timer.updated_by_id = current_user.id
    try:
        db.session.flush()
    except IntegrityError:
        # Someone created this setting's timer at the same moment (one timer per setting).
        db.session.rollback()
        raise TimerError("同じ連携のタイマー設定が同時に保存されました。画面を再読み込みして内容を確認してから、"
                         "もう一度確定してください。") from None
    changes = diff(before, snapshot(timer))
    if previous is None or changes:
        audit("create" if previous is None else "update", "タイマー設定", timer.id, setting.name, changes)
    db.session.commit()
    return timer


def run_now(setting: IntegrationSetting, executor_id: int) -> Run:
    """「今すぐ実行」: the timer's integration once now, as its next slot would run it (the same メニュー設定: its
    filters, columns and every record it shows; none → the whole DB), with the person who pressed it as 実行者.
    Raises TimerError or RunError (e.g. the integration is already running) with a Japanese message."""
    timer = timer_of(setting)
    if timer is None:
        raise TimerError("タイマーがまだ設定されていません。タイマー設定を確定してから実行してください。")
    menu = db.session.get(Menu, timer.menu_id) if timer.menu_id else None
    if timer.menu_name and menu is None:
        raise TimerError(f"メニュー設定のメニュー「{timer.menu_name}」が削除されています。メニュー設定を選び直して確定してください。")
    memo = f"タイマー設定から今すぐ実行 {to_local(utcnow()):%Y/%m/%d %H:%M}"
    return start_run(setting, menu, executor_id=executor_id, trigger="timer_now", memo=memo)


def whole_database_count(setting: IntegrationSetting) -> int:
    """What a timer without メニュー設定 sends at every slot: every record of the DB."""
    return db.session.execute(select(func.count()).where(Record.database_id == setting.database_id)).scalar_one()


def filtered_menus(setting: IntegrationSetting) -> list[Menu]:
    """The DB's レコード一覧 menus with 絞り込み条件: what to choose instead of sending every record."""
    return [menu for menu in menu_choices(setting) if menu.filters]


def timer_label(timer: Timer) -> str:
    """タイマー「楽楽明細へ顧客を連携」(ON・毎日 09:00) — a timer named by its integration, as messages name it."""
    switch = "ON" if timer.enabled else "OFF"
    return f"タイマー「{timer.setting.name}」({switch}・{timer.schedule.describe()})"


def upcoming(timer: Timer, now: datetime | None = None, count: int = NEXT_RUN_COUNT) -> list[datetime]:
    """The next run times of the schedule (shown even when the switch is OFF, marked as such)."""
    return next_runs(timer.schedule, now or utcnow(), local_tz(), count)


def recent_slots(timer: Timer, limit: int = HISTORY_LENGTH) -> list[TimerSlot]:
    return list(db.session.execute(
        select(TimerSlot).where(TimerSlot.timer_id == timer.id)
        .order_by(TimerSlot.scheduled_at.desc(), TimerSlot.id.desc()).limit(limit)
    ).scalars())


def last_fired(timer: Timer) -> TimerSlot | None:
    """The latest slot that started a run (最終実行)."""
    return db.session.execute(
        select(TimerSlot).where(TimerSlot.timer_id == timer.id,
                                TimerSlot.outcome.in_([SlotOutcome.RUN, SlotOutcome.CATCH_UP]))
        .order_by(TimerSlot.scheduled_at.desc(), TimerSlot.id.desc()).limit(1)
    ).scalar_one_or_none()


@dataclass
class TimerSummary:
    """One line of the タイマー column of the setting list."""

    timer: Timer | None
    next_run: datetime | None = None


def summary(setting: IntegrationSetting, now: datetime | None = None) -> TimerSummary:
    timer = timer_of(setting)
    if timer is None:
        return TimerSummary(None)
    runs = upcoming(timer, now, 1) if timer.enabled else []
    return TimerSummary(timer, runs[0] if runs else None)


# ---- scheduler heartbeat -----------------------------------------------------------------------------------


def beat(now: datetime | None = None, detail: str = "") -> None:
    """Record that the dispatcher ran (health checks want it younger than two minutes)."""
    now = now or utcnow()
    changed = db.session.execute(
        update(SchedulerHeartbeat).where(SchedulerHeartbeat.name == HEARTBEAT_NAME).values(beat_at=now, detail=detail)
    ).rowcount
    if not changed:
        db.session.add(SchedulerHeartbeat(name=HEARTBEAT_NAME, beat_at=now, detail=detail))
    try:
        db.session.commit()
    except IntegrityError:
        # Another dispatcher created the row at the same moment; its beat is as good as ours.
        db.session.rollback()


def last_heartbeat() -> datetime | None:
    """When the dispatcher last ran (UTC), or None if it never did."""
    beat_at = db.session.execute(
        select(SchedulerHeartbeat.beat_at).where(SchedulerHeartbeat.name == HEARTBEAT_NAME)
    ).scalar_one_or_none()
    return as_utc(beat_at)
