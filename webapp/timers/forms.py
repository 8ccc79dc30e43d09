"""The タイマー設定 form: the chosen タイマー起動スケジュール decides which fields apply, for rendering and
validation alike (htmx re-renders the form when the schedule kind changes)."""

from __future__ import annotations

from datetime import date, datetime, time

from wtforms import RadioField, SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from ..core.forms import BaseForm
from .operations import PRIORITY_MAX, PRIORITY_MIN, TimerValues
from .schedule import KIND_LABELS, LAST_DAY, LAST_DAY_LABEL, WEEKDAY_LABELS, Kind

SWITCH_CHOICES = [("1", "ON(実行する)"), ("0", "OFF(実行しない)")]
KIND_FIELDS = {
    Kind.ONCE: {"once_date", "at_time"},
    Kind.DAILY: {"at_time"},
    Kind.WEEKLY: {"weekdays", "at_time"},
    Kind.MONTHLY: {"month_day", "at_time"},
}
FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９：／－", "0123456789:/-")


class TimerForm(BaseForm):
    menu_id = SelectField("メニュー設定", choices=[], validate_choice=False)
    enabled = RadioField("タイマースイッチ", choices=SWITCH_CHOICES, default="0", validate_choice=False)
    priority = StringField("タイマー優先度", default="0")
    kind = RadioField("タイマー起動スケジュール", choices=[(k.value, label) for k, label in KIND_LABELS.items()],
                      default=Kind.DAILY.value, validate_choice=False)
    once_date = StringField("実行日")
    at_time = StringField("時刻", default="09:00")
    weekdays = SelectMultipleField("曜日", choices=[(str(i), label) for i, label in enumerate(WEEKDAY_LABELS)],
                                   widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
                                   validate_choice=False)
    month_day = SelectField("日", choices=[(str(d), f"{d}日") for d in range(1, 32)] + [(LAST_DAY, LAST_DAY_LABEL)],
                            default="1", validate_choice=False)

    def __init__(self, *args, menus: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.menu_id.choices = [("", "指定しない(全レコード・全項目)")] + [(str(i), name) for i, name in menus]
        self.values: TimerValues | None = None

    @property
    def chosen_kind(self) -> Kind:
        try:
            return Kind(self.kind.data)
        except ValueError:
            return Kind.DAILY

    def is_active(self, name: str) -> bool:
        return name in KIND_FIELDS[self.chosen_kind]

    def validate(self, extra_validators=None) -> bool:
        """Formats of the active fields; on success `self.values` holds the parsed timer."""
        if not super().validate(extra_validators):
            return False
        kind_text = self.kind.data or ""
        if kind_text not in {k.value for k in Kind}:
            self.kind.errors.append("一回のみ・毎日・毎週・毎月から選んでください。")
        if self.enabled.data not in ("0", "1"):
            self.enabled.errors.append("ONかOFFを選んでください。")
        menu_text = self.menu_id.data or ""
        if menu_text and menu_text not in {value for value, _ in self.menu_id.choices}:
            self.menu_id.errors.append("このDBのレコード一覧メニューから選んでください。")
        priority = _parse_int(self.priority.data)
        if priority is None or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            self.priority.errors.append(f"{PRIORITY_MIN}〜{PRIORITY_MAX}の整数(半角数字)で入力してください。")
        at = _parse_time(self.at_time.data)
        if at is None:
            self.at_time.errors.append("時刻を 時:分(例 09:30)で入力してください。")
        kind = self.chosen_kind
        once_date = None
        if kind == Kind.ONCE:
            once_date = _parse_date(self.once_date.data)
            if once_date is None:
                self.once_date.errors.append("実行日を 年-月-日(例 2026-12-01)で入力してください。")
        weekdays = [int(d) for d in self.weekdays.data or [] if str(d).isdecimal() and 0 <= int(d) <= 6]
        if kind == Kind.WEEKLY and not weekdays:
            self.weekdays.errors.append("曜日を1つ以上選んでください。")
        month_text = self.month_day.data or ""
        last_day = month_text == LAST_DAY
        month_day = int(month_text) if month_text.isdecimal() and len(month_text) <= 2 else None
        if kind == Kind.MONTHLY and not last_day and not (month_day and 1 <= month_day <= 31):
            self.month_day.errors.append("1〜31日または末日を選んでください。")
        if any(f.errors for f in self):
            return False
        self.values = TimerValues(
            enabled=self.enabled.data == "1", priority=priority, kind=kind, at=at,
            menu_id=int(menu_text) if menu_text else None, once_date=once_date, weekdays=weekdays,
            month_day=month_day, last_day=last_day,
        )
        return True


def _parse_int(text: str | None) -> int | None:
    text = (text or "").strip().translate(FULL_WIDTH_DIGITS)
    if not text.isdecimal() or len(text) > 6:
        return None
    return int(text)


def _parse_time(text: str | None) -> time | None:
    text = (text or "").strip().translate(FULL_WIDTH_DIGITS)
    try:
        parsed = datetime.strptime(text, "%H:%M")
    except ValueError:
        return None
    return time(parsed.hour, parsed.minute)


def _parse_date(text: str | None) -> date | None:
    text = (text or "").strip().translate(FULL_WIDTH_DIGITS).replace("/", "-")
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
