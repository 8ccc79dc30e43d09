"""タイマー設定 of a 楽楽明細連携設定, the record of every timer slot, and the scheduler heartbeat."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..core.clock import utcnow
from ..databases.models import Menu
from ..extensions import db
from ..integrations.models import IntegrationSetting
from ..runs.models import Run
from .schedule import Kind, Schedule


class Timer(db.Model):
    """The タイマー設定 of one integration setting (at most one per setting)."""

    __tablename__ = "timers"
    __table_args__ = (UniqueConstraint("setting_id", name="uq_timers_setting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    setting_id: Mapped[int] = mapped_column(ForeignKey("integration_settings.id", ondelete="CASCADE"), nullable=False)
    # メニュー設定: the records and columns of this menu; None = all records, all fields of the DB.
    menu_id: Mapped[int | None] = mapped_column(ForeignKey("menus.id", ondelete="SET NULL"))
    # The chosen menu's name: when the menu is deleted later, slots are skipped with this name in the reason
    # instead of silently sending every record of the DB.
    menu_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    kind: Mapped[str] = mapped_column(String(10), nullable=False, default=Kind.DAILY)
    # "HH:MM", wall-clock time in the configured time zone.
    at_time: Mapped[str] = mapped_column(String(5), nullable=False, default="09:00")
    once_date: Mapped[date | None] = mapped_column(Date)
    # Comma-separated date.weekday() numbers (Monday = 0).
    weekdays: Mapped[str] = mapped_column(String(20), nullable=False, default="")
    month_day: Mapped[int | None] = mapped_column(Integer)
    last_day: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Slots up to this instant (UTC) have been looked at; set on save so a change never fires the past.
    checked_through: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    setting: Mapped[IntegrationSetting] = relationship()
    menu: Mapped[Menu | None] = relationship()
    updated_by: Mapped[User | None] = relationship()

    @property
    def schedule(self) -> Schedule:
        hour, minute = (int(part) for part in self.at_time.split(":"))
        return Schedule(
            kind=Kind(self.kind), at=time(hour, minute), once_date=self.once_date,
            weekdays=frozenset(int(d) for d in self.weekdays.split(",") if d.strip().isdigit()),
            month_day=self.month_day, last_day=self.last_day,
        )


class SlotOutcome(StrEnum):
    RUN = "run"
    CATCH_UP = "catch_up"
    SKIPPED = "skipped"
    MISSED = "missed"


SLOT_OUTCOME_LABELS = {
    SlotOutcome.RUN: "実行",
    SlotOutcome.CATCH_UP: "キャッチアップ実行",
    SlotOutcome.SKIPPED: "スキップ",
    SlotOutcome.MISSED: "見逃し",
}


class TimerSlot(db.Model):
    """One scheduled minute of one timer and what became of it.

    The unique (timer_id, scheduled_at) key is what makes a slot fire exactly once: the row is inserted in the
    same transaction as its run, so a second scheduler, a restarted one or a retried dispatcher job finds the row
    (or waits on it and then fails to insert) and creates nothing.
    """

    __tablename__ = "timer_slots"
    # Also the index of the history (newest slots of a timer first).
    __table_args__ = (UniqueConstraint("timer_id", "scheduled_at", name="uq_timer_slots_timer_id_scheduled_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timer_id: Mapped[int] = mapped_column(ForeignKey("timers.id", ondelete="CASCADE"), nullable=False)
    # The slot's minute, UTC, seconds zero.
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    record_count: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # When the dispatcher handled the slot.
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    run: Mapped[Run | None] = relationship()

    @property
    def outcome_label(self) -> str:
        return SLOT_OUTCOME_LABELS.get(self.outcome, self.outcome)


class SchedulerHeartbeat(db.Model):
    """Last time the timer dispatcher ran (the scheduler, Redis and a worker are all alive when it beats)."""

    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    detail: Mapped[str] = mapped_column(String(200), nullable=False, default="")
