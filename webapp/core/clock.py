"""Time: instants are stored and compared in UTC; people read and type them in the configured time zone (TZ)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_tz() -> ZoneInfo:
    """The configured time zone (TZ, default Asia/Tokyo): schedules, 実行日時 and every time shown."""
    return ZoneInfo(current_app.config["TIMEZONE"])


def to_local(moment: datetime) -> datetime:
    """A stored instant in the configured time zone."""
    return as_utc(moment).astimezone(local_tz())


def format_local(value: datetime | str | None, fmt: str = "%Y/%m/%d %H:%M") -> str:
    """An instant (stored in UTC, or an ISO text of one, as in the JSON of a run's calls) in the configured
    time zone, as people read it (the `localtime` filter); "%Z" in `fmt` names the zone (JST)."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return to_local(value).strftime(fmt)
