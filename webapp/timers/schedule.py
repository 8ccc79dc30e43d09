"""タイマー起動スケジュール maths: which instants a schedule fires at. Pure functions, no clock, no database.

A schedule is written in wall-clock time of the configured time zone (TZ, Asia/Tokyo by default); the instants
it produces are UTC minutes, the unit of a timer slot. Every local date yields at most one instant: a time that a
DST change skips runs at the shifted wall time, a repeated one runs at its first occurrence (fold=0).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Kind(StrEnum):
    ONCE = "once"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


KIND_LABELS = {Kind.ONCE: "一回のみ", Kind.DAILY: "毎日", Kind.WEEKLY: "毎週", Kind.MONTHLY: "毎月"}
# date.weekday(): Monday is 0.
WEEKDAY_LABELS = ["月", "火", "水", "木", "金", "土", "日"]
LAST_DAY = "last"
LAST_DAY_LABEL = "末日"
# Longest gap between two firings of a valid schedule is one month; a search never needs more than this.
SEARCH_LIMIT_DAYS = 400


@dataclass(frozen=True)
class Schedule:
    kind: Kind
    at: time
    once_date: date | None = None
    weekdays: frozenset[int] = field(default_factory=frozenset)
    # 1–31, or None with last_day=True for 末日.
    month_day: int | None = None
    last_day: bool = False

    def fires_on(self, day: date) -> bool:
        if self.kind == Kind.ONCE:
            return day == self.once_date
        if self.kind == Kind.DAILY:
            return True
        if self.kind == Kind.WEEKLY:
            return day.weekday() in self.weekdays
        last = calendar.monthrange(day.year, day.month)[1]
        if self.last_day:
            return day.day == last
        # A day the month lacks (31st in June, 30th in February) runs on the month's last day.
        return day.day == min(self.month_day or 0, last)

    def describe(self) -> str:
        """The schedule as people read it, e.g. 毎週 月・木 09:30."""
        at = self.at.strftime("%H:%M")
        if self.kind == Kind.ONCE:
            return f"一回のみ {self.once_date:%Y/%m/%d} {at}" if self.once_date else f"一回のみ {at}"
        if self.kind == Kind.DAILY:
            return f"毎日 {at}"
        if self.kind == Kind.WEEKLY:
            return f"毎週 {'・'.join(WEEKDAY_LABELS[d] for d in sorted(self.weekdays))} {at}"
        day = LAST_DAY_LABEL if self.last_day else f"{self.month_day}日"
        return f"毎月 {day} {at}"


def instant_on(schedule: Schedule, day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of the schedule's wall time on a local date."""
    local = datetime.combine(day, schedule.at.replace(second=0, microsecond=0), tzinfo=tz)
    return local.astimezone(UTC)


def occurrences(schedule: Schedule, after: datetime, until: datetime, tz: ZoneInfo) -> list[datetime]:
    """Instants in (after, until], oldest first. Both bounds are aware datetimes."""
    if until <= after:
        return []
    found = []
    # One day of margin each side: a local date can straddle two UTC dates.
    day = after.astimezone(tz).date() - timedelta(days=1)
    last_day = until.astimezone(tz).date() + timedelta(days=1)
    while day <= last_day:
        if schedule.fires_on(day):
            moment = instant_on(schedule, day, tz)
            if after < moment <= until:
                found.append(moment)
        day += timedelta(days=1)
    return found


def next_runs(schedule: Schedule, after: datetime, tz: ZoneInfo, count: int = 5) -> list[datetime]:
    """The next `count` instants strictly after `after` (fewer for 一回のみ, none when it has passed)."""
    if schedule.kind == Kind.ONCE:
        if schedule.once_date is None:
            return []
        moment = instant_on(schedule, schedule.once_date, tz)
        return [moment] if moment > after else []
    if schedule.kind == Kind.WEEKLY and not schedule.weekdays:
        return []
    found: list[datetime] = []
    day = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(SEARCH_LIMIT_DAYS * count):
        if schedule.fires_on(day):
            moment = instant_on(schedule, day, tz)
            if moment > after:
                found.append(moment)
                if len(found) == count:
                    break
        day += timedelta(days=1)
    return found


def minute_floor(moment: datetime) -> datetime:
    """The UTC minute an instant falls in: the unit of a timer slot."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


JAPAN_TIME_ZONE = "Asia/Tokyo"


def tz_label(tz: ZoneInfo) -> str:
    """Shown next to every time field: "日本時間 (Asia/Tokyo)", or the configured zone's name with its offset."""
    if tz.key == JAPAN_TIME_ZONE:
        return f"日本時間 ({JAPAN_TIME_ZONE})"
    offset = datetime.now(tz).strftime("%z")
    return f"{tz.key} (UTC{offset[:3]}:{offset[3:]})"
