"""Field types (項目タイプ): labels, parsing of user input and display, in one place.

Stored values in a record's JSON:
  text / textarea / select -> str;  number -> int or float;  date -> "YYYY-MM-DD";
  datetime -> "YYYY-MM-DD HH:MM" (wall-clock time in the configured TZ: it is business data typed by a
  person, and 楽楽明細 expects JST in its CSV);  multiselect -> list[str];  checkbox -> bool;
  file / autofile -> {"name", "path", "size", "content_type"} (the bytes live under FILES_DIR).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    SELECT = "select"
    MULTISELECT = "multiselect"
    CHECKBOX = "checkbox"
    FILE = "file"
    AUTOFILE = "autofile"


FIELD_TYPE_LABELS: dict[FieldType, str] = {
    FieldType.TEXT: "テキスト(1行)",
    FieldType.TEXTAREA: "テキスト(複数行)",
    FieldType.NUMBER: "数値",
    FieldType.DATE: "日付",
    FieldType.DATETIME: "日時",
    FieldType.SELECT: "選択肢(1件選択)",
    FieldType.MULTISELECT: "選択肢(複数選択)",
    FieldType.CHECKBOX: "チェックボックス",
    FieldType.FILE: "ファイル",
    FieldType.AUTOFILE: "自動生成ファイル",
}

OPTION_TYPES = {FieldType.SELECT, FieldType.MULTISELECT}
FILE_TYPES = {FieldType.FILE, FieldType.AUTOFILE}
# Types a 明細 (detail row) may hold: files are header-only, as in 楽楽販売.
DETAIL_TYPES = {
    FieldType.TEXT, FieldType.TEXTAREA, FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME,
    FieldType.SELECT, FieldType.CHECKBOX,
}

TEXT_MAX = 255
TEXTAREA_MAX = 10000
NUMBER_MAX_DIGITS = 15
OPTION_MAX = 100


class FieldValueError(ValueError):
    """A value that does not fit its field; the message is shown to the user next to the field."""


def _is_blank(raw) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []


def parse_value(field_type: str, raw, *, options: list[str] | None = None, required: bool = False):
    """Turn form input into the stored value, or raise FieldValueError with a Japanese message."""
    field_type = FieldType(field_type)
    if field_type in FILE_TYPES:
        raise TypeError("file values are not parsed from text")
    if field_type == FieldType.CHECKBOX:
        return bool(raw) and str(raw).lower() not in {"0", "false", "off", "n", ""}
    if _is_blank(raw):
        if required:
            raise FieldValueError("必須項目です。入力してください。")
        return [] if field_type == FieldType.MULTISELECT else None

    if field_type == FieldType.MULTISELECT:
        values = [raw] if isinstance(raw, str) else list(raw)
        unknown = [v for v in values if v not in (options or [])]
        if unknown:
            raise FieldValueError(f"選択肢にない値です: {'、'.join(unknown)}")
        # Keep the options' order so equal selections compare equal.
        return [o for o in options or [] if o in values]

    text = str(raw).strip() if field_type != FieldType.TEXTAREA else str(raw).rstrip()
    if field_type == FieldType.TEXT:
        if "\n" in text or "\r" in text:
            raise FieldValueError("改行は入力できません(1行テキストです)。")
        if len(text) > TEXT_MAX:
            raise FieldValueError(f"{TEXT_MAX}文字以内で入力してください(現在{len(text)}文字)。")
        return text
    if field_type == FieldType.TEXTAREA:
        if len(text) > TEXTAREA_MAX:
            raise FieldValueError(f"{TEXTAREA_MAX}文字以内で入力してください(現在{len(text)}文字)。")
        return text
    if field_type == FieldType.NUMBER:
        return _parse_number(text)
    if field_type == FieldType.DATE:
        return _parse_date(text).isoformat()
    if field_type == FieldType.DATETIME:
        return _parse_datetime(text).strftime("%Y-%m-%d %H:%M")
    if field_type == FieldType.SELECT:
        if text not in (options or []):
            raise FieldValueError(f"選択肢にない値です: {text}")
        return text
    raise AssertionError(field_type)


def _parse_number(text: str):
    cleaned = text.replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
    cleaned = cleaned.translate(str.maketrans("０１２３４５６７８９．－", "0123456789.-"))
    if not re.fullmatch(r"-?\d+(\.\d+)?", cleaned):
        raise FieldValueError("数値で入力してください(例: 1200、-5、3.14)。")
    digits = cleaned.lstrip("-").replace(".", "").lstrip("0")
    if len(digits) > NUMBER_MAX_DIGITS:
        raise FieldValueError(f"数値は{NUMBER_MAX_DIGITS}桁以内で入力してください。")
    try:
        number = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise FieldValueError("数値で入力してください。") from exc
    return int(number) if number == number.to_integral_value() else float(number)


def _parse_date(text: str) -> date:
    normalized = text.replace("/", "-")
    try:
        return datetime.strptime(normalized, "%Y-%m-%d").date()
    except ValueError as exc:
        raise FieldValueError("日付は YYYY-MM-DD の形式で、存在する日付を入力してください。") from exc


def _parse_datetime(text: str) -> datetime:
    normalized = text.replace("/", "-").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(normalized, fmt)
        except ValueError:
            continue
    raise FieldValueError("日時は YYYY-MM-DD HH:MM の形式で入力してください。")


def display_value(field_type: str, value) -> str:
    """The text a person sees for a stored value (also what a CSV export sends)."""
    if value is None or value == "" or value == []:
        return ""
    field_type = FieldType(field_type)
    if field_type == FieldType.CHECKBOX:
        return "✓" if value else ""
    if field_type == FieldType.MULTISELECT:
        return "、".join(value)
    if field_type in FILE_TYPES:
        return value.get("name", "") if isinstance(value, dict) else ""
    if field_type == FieldType.NUMBER:
        if isinstance(value, float):
            return f"{value:,.10f}".rstrip("0").rstrip(".")
        return f"{value:,}"
    if field_type == FieldType.DATE:
        return value.replace("-", "/")
    if field_type == FieldType.DATETIME:
        return value.replace("-", "/")
    return str(value)


def input_value(field_type: str, value) -> str:
    """The value pre-filled into an HTML input for editing."""
    if value is None:
        return ""
    field_type = FieldType(field_type)
    if field_type == FieldType.NUMBER:
        return str(value)
    if field_type == FieldType.DATETIME:
        return value.replace(" ", "T")
    return value if isinstance(value, str) else str(value)


def search_text_of(value) -> str:
    """The part of a value that keyword search looks at."""
    if value is None or value is False:
        return ""
    if isinstance(value, dict):
        return str(value.get("name", ""))
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if value is True:
        return ""
    return str(value)


def csv_value(field_type: str, value) -> str:
    """The text an export sends: like display_value, but machine-readable (no thousands separators)."""
    if value is None or value == "" or value == []:
        return ""
    field_type = FieldType(field_type)
    if field_type == FieldType.NUMBER:
        if isinstance(value, float):
            return f"{value:.10f}".rstrip("0").rstrip(".")
        return str(value)
    if field_type == FieldType.CHECKBOX:
        return "1" if value else "0"
    if field_type == FieldType.MULTISELECT:
        return ",".join(value)
    return display_value(field_type, value)
