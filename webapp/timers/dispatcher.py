"""The timer dispatcher: every minute, turn the timers' due slots into runs, in priority order, exactly once.

1. For each ON timer, the schedule's instants since the timer was last looked at (`checked_through`) and up to
   now are its slots. A slot of the last hour is due (a late one is a キャッチアップ); an older one is recorded as
   見逃し (missed) and not run.
2. Due slots are ordered like 楽楽販売 does: higher タイマー優先度 first, then fewer records (連携件数) first.
3. Each slot row is inserted in the same transaction as its run (UNIQUE timer_id + scheduled_at): a second
   dispatcher, a retried job or a restarted scheduler finds the row and creates nothing.
4. The runs' jobs are chained with RQ dependencies, so they execute one after another in that order even with
   several workers; a failed run does not hold up the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rq.job import Dependency
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError

from ..core.clock import as_utc, local_tz, utcnow
from ..databases.models import Menu
from ..extensions import db
from ..integrations.models import IntegrationSetting
from ..runs.models import Run
from ..runs.operations import (
    RunError,
    enqueue_run,
    recover_runs,
    selected_record_ids,
    start_run,
)
from .models import SlotOutcome, Timer, TimerSlot
from .operations import beat
from .schedule import Kind, minute_floor, occurrences

log = logging.getLogger(__name__)

CATCH_UP_WINDOW = timedelta(hours=1)
# A slot handled this late is still on time (the scheduler polls every few seconds, a worker may be busy).
ON_TIME_GRACE = timedelta(minutes=2)
# A long downtime records at most this many 見逃し rows per timer (the newest ones).
MISSED_RECORD_LIMIT = 50


@dataclass
class Due:
    timer: Timer
    scheduled_at: datetime
    catch_up: bool
    record_ids: list[int] = field(default_factory=list)
    problem: str = ""


@dataclass
class DispatchResult:
    runs: list[int] = field(default_factory=list)
    skipped: int = 0
    missed: int = 0
    handled_elsewhere: int = 0

    def __str__(self) -> str:
        return (f"runs={self.runs} skipped={self.skipped} missed={self.missed} "
                f"handled_elsewhere={self.handled_elsewhere}")


# _fire()'s answer for a slot recorded as スキップ (None means another dispatcher has the slot).
SKIPPED = "skipped"


def dispatch(now: datetime | None = None, *, enqueue: bool = True) -> DispatchResult:
    """Handle every slot due up to `now` (an injected clock in tests). Safe to run twice, or in two processes.

    With enqueue=False the runs are only created (queued); the caller executes them (tests, CLI without Redis).
    """
    now = as_utc(now) if now else utcnow()
    if enqueue:
        try:
            recover_runs()
        except Exception:  # the timers must fire even if the recovery scan fails
            db.session.rollback()
            log.exception("recover_runs failed")
    result = DispatchResult()
    timers = _enabled_timers()
    due: list[Due] = []
    looked_at = []
    for timer in timers:
        try:
            due.extend(_collect(timer, now, result))
            looked_at.append(timer)
        except Exception:  # one broken timer must not stop the others; it is looked at again next minute
            db.session.rollback()
            log.exception("timer %s: reading its schedule failed", timer.id)
    for item in due:
        _count_records(item)
    # 楽楽販売's rule: higher priority first; equal priority → fewer records first.
    due.sort(key=lambda d: (-d.timer.priority, len(d.record_ids), d.scheduled_at, d.timer.id))
    previous_job: str | None = None
    for item in due:
        try:
            outcome = _fire(item, now)
        except Exception:
            db.session.rollback()
            log.exception("timer %s slot %s failed", item.timer.id, item.scheduled_at)
            outcome = _record_skip(item, now, "タイマー実行の準備中に問題が発生しました。管理者に連絡してください。")
        if outcome is None:
            result.handled_elsewhere += 1
        elif outcome is SKIPPED:
            result.skipped += 1
        else:
            result.runs.append(outcome.id)
            if enqueue:
                previous_job = _enqueue(outcome, previous_job)
    for timer in looked_at:
        _advance(timer, now)
    # Written last: a dispatcher that keeps failing shows as a stale heartbeat.
    beat(now, str(result)[:200])
    log.info("timer dispatch at %s: %s", now.isoformat(timespec="seconds"), result)
    return result


def _enabled_timers() -> list[Timer]:
    return list(db.session.execute(
        select(Timer).join(IntegrationSetting, IntegrationSetting.id == Timer.setting_id)
        .where(Timer.enabled.is_(True), IntegrationSetting.is_deleted.is_(False)).order_by(Timer.id)
    ).scalars())


def _collect(timer: Timer, now: datetime, result: DispatchResult) -> list[Due]:
    """The timer's slots in (checked_through, now]: due ones returned, missed ones recorded."""
    # Only the newest ones matter: older missed slots beyond the limit are not recorded.
    instants = occurrences(timer.schedule, as_utc(timer.checked_through), now, local_tz())[-MISSED_RECORD_LIMIT:]
    if not instants:
        return []
    existing = set(
        as_utc(moment) for moment in db.session.execute(
            select(TimerSlot.scheduled_at).where(TimerSlot.timer_id == timer.id,
                                                 TimerSlot.scheduled_at.in_(instants))
        ).scalars()
    )
    due = []
    missed = []
    on_time_from = minute_floor(now) - ON_TIME_GRACE
    for moment in instants:
        if moment in existing:
            continue
        if moment < now - CATCH_UP_WINDOW:
            missed.append(moment)
        else:
            due.append(Due(timer, moment, catch_up=moment < on_time_from))
    for moment in missed:
        if _insert_slot(TimerSlot(
            timer_id=timer.id, scheduled_at=moment, outcome=SlotOutcome.MISSED, handled_at=now,
            message="スケジューラまたはワーカーが停止していたため実行しませんでした(1時間以上前の予定は実行しません)。",
        )):
            result.missed += 1
    return due


def _count_records(item: Due) -> None:
    """連携件数 of the slot: what the run would send now (also the ordering key)."""
    timer = item.timer
    setting = timer.setting
    menu = db.session.get(Menu, timer.menu_id) if timer.menu_id else None
    if timer.menu_name and menu is None:
        item.problem = (f"メニュー設定のメニュー「{timer.menu_name}」が削除されています。"
                        "タイマー設定でメニューを選び直してください。")
        return
    try:
        item.record_ids = selected_record_ids(setting, menu)
    except Exception:
        db.session.rollback()
        log.exception("timer %s: counting records failed", timer.id)
        item.problem = "送信するレコードを取得できませんでした。メニューの絞り込み条件を確認してください。"


def _fire(item: Due, now: datetime) -> Run | str | None:
    """Claim the slot and create its run in one transaction: the Run, SKIPPED, or None (another's slot)."""
    timer = item.timer
    if item.problem:
        return _record_skip(item, now, item.problem)
    if not item.record_ids:
        return _record_skip(item, now, "送信するレコードがありません(0件)。")
    slot = _new_slot(item, now, SlotOutcome.CATCH_UP if item.catch_up else SlotOutcome.RUN)
    if not _take_slot(item, slot):
        return None
    setting = timer.setting
    menu = db.session.get(Menu, timer.menu_id) if timer.menu_id else None
    label = "タイマー実行(キャッチアップ)" if item.catch_up else "タイマー実行"
    memo = f"{label} {item.scheduled_at.astimezone(local_tz()):%Y/%m/%d %H:%M}"
    try:
        with _linking_new_run(slot):
            run = start_run(setting, menu, executor_id=None, trigger="timer", memo=memo,
                            record_ids=item.record_ids, enqueue=False)
    except RunError as exc:
        # start_run may have rolled back our slot row with it: start again from a clean transaction.
        db.session.rollback()
        return _record_skip(item, now, str(exc))
    log.info("timer %s: slot %s → run %s (%s records, priority %s)", timer.id, item.scheduled_at.isoformat(),
             run.id, len(item.record_ids), timer.priority)
    return run


class _linking_new_run:
    """Sets slot.run_id to the run start_run() creates, before start_run's own commit: slot and run are saved
    together or not at all, so a dispatcher dying in between leaves neither."""

    def __init__(self, slot: TimerSlot):
        self.slot = slot
        self.session = db.session()
        self.run_id: int | None = None

    def _after_flush(self, session, flush_context) -> None:
        # The new Run has its id here; changing other objects must wait for after_flush_postexec.
        for obj in session.new:
            if isinstance(obj, Run) and self.run_id is None:
                self.run_id = obj.id

    def _after_flush_postexec(self, session, flush_context) -> None:
        if self.run_id is not None and self.slot.run_id is None:
            self.slot.run_id = self.run_id

    def __enter__(self):
        event.listen(self.session, "after_flush", self._after_flush)
        event.listen(self.session, "after_flush_postexec", self._after_flush_postexec)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.session, "after_flush", self._after_flush)
        event.remove(self.session, "after_flush_postexec", self._after_flush_postexec)


def _new_slot(item: Due, now: datetime, outcome: str, message: str = "") -> TimerSlot:
    return TimerSlot(timer_id=item.timer.id, scheduled_at=item.scheduled_at, outcome=outcome, handled_at=now,
                     record_count=len(item.record_ids) if not item.problem else None,
                     priority=item.timer.priority, message=message)


def _take_slot(item: Due, slot: TimerSlot) -> bool:
    """Insert the slot row (the unique key makes it once per timer and minute); False when another dispatcher
    has it. A 一回のみ timer switches itself off in the same transaction."""
    db.session.add(slot)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    _switch_off_once(item.timer, slot)
    return True


def _record_skip(item: Due, now: datetime, reason: str) -> str | None:
    """スキップ with the reason (USERS.md: a record for every tick). None when another dispatcher has the slot."""
    prefix = "キャッチアップ: " if item.catch_up else ""
    slot = _new_slot(item, now, SlotOutcome.SKIPPED, prefix + reason)
    if not _take_slot(item, slot):
        return None
    db.session.commit()
    log.info("timer %s: slot %s skipped: %s", item.timer.id, item.scheduled_at.isoformat(), reason)
    return SKIPPED


def _switch_off_once(timer: Timer, slot: TimerSlot) -> None:
    """一回のみ has had its one slot: the switch goes OFF in the same transaction."""
    if timer.kind == Kind.ONCE and timer.enabled:
        timer.enabled = False
        slot.message = (slot.message + " " if slot.message else "") + "一回のみのため、タイマースイッチをOFFにしました。"


def _insert_slot(slot: TimerSlot) -> bool:
    db.session.add(slot)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _advance(timer: Timer, now: datetime) -> None:
    """Everything up to now has been looked at (never moves backwards: a late dispatcher changes nothing)."""
    db.session.execute(update(Timer).where(Timer.id == timer.id, Timer.checked_through < now)
                       .values(checked_through=now).execution_options(synchronize_session=False))
    db.session.commit()


def _enqueue(run: Run, previous_job: str | None) -> str | None:
    """Queue the run's job after the previous timer run of this minute (failed or not)."""
    depends_on = Dependency(jobs=[previous_job], allow_failure=True) if previous_job else None
    return run.job_id if enqueue_run(run, depends_on=depends_on) else previous_job
