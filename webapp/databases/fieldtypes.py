"""Field types (項目タイプ): one registry of type objects, in the spirit of CTFd's challenge types.

A type is a class: its label; how it parses what people type, shows a value and exports it (CSV); how the record
list's query reads the stored value (sort key, filter operators, index); the widget of the record form; and the
roles a field of that type may play — list column, filter, sort key, レコード更新 target, 連携対象PDF, 明細 field. Code elsewhere asks `field.kind` and never switches on a type
name, so a new type is one new class passed to `register` (a module outside databases may register one: the
自動生成ファイル type lives in documents/fieldtype.py). Types whose values people do not type (`typed = False`:
自動生成ファイル today, 数値計算 or 自動採番 later) fill them in `on_save`, which save_record calls in
`save_order` after the typed values are set; they may add inputs of their own to the field settings form
(`settings_fields`, `settings_template`).

Stored values in a record's JSON:
  text / textarea / select -> str;  number -> int or float;  date -> "YYYY-MM-DD";
  datetime -> "YYYY-MM-DD HH:MM" (wall-clock time in the configured TZ: it is business data typed by a
  person, and 楽楽明細 expects JST in its CSV);  multiselect -> list[str];  checkbox -> bool;
  file / autofile -> {"name", "path", "size", "content_type"} (the bytes live under FILES_DIR).
Keyword search reads every stored value by its shape (search_text_of), so a type stores one of these shapes: the
run's bulk レコード更新 rewrites search text from the values alone, without the fields.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, ClassVar

from flask_wtf.file import FileField
from sqlalchemy import and_, func, or_
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField, widgets

from ..core.errors import DomainError

if TYPE_CHECKING:
    from .models import Field, Record

TEXT_MAX = 255
TEXTAREA_MAX = 10000
NUMBER_MAX_DIGITS = 15
OPTION_MAX = 100

# Filter operators of a レコード一覧 menu.
OP_EQUALS = "eq"
OP_CONTAINS = "contains"
OP_EMPTY = "empty"
OP_NOT_EMPTY = "not_empty"
OP_RANGE = "range"
OP_IN = "in"

OPERATOR_LABELS = {
    OP_EQUALS: "等しい",
    OP_CONTAINS: "含む",
    OP_EMPTY: "空である",
    OP_NOT_EMPTY: "空ではない",
    OP_RANGE: "範囲(期間)",
    OP_IN: "いずれかに一致",
}
_BLANKS = (OP_EMPTY, OP_NOT_EMPTY)


class FieldValueError(DomainError):
    """A value that does not fit its field; the message is shown to the user next to the field."""


def is_blank(raw) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []


def search_text_of(value) -> str:
    """The part of a stored value that keyword search looks at (by the value's shape)."""
    if value is None or value is False or value is True:
        return ""
    if isinstance(value, dict):
        return str(value.get("name", ""))
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


class StoredValue:
    """SQL views of one header field's value in Record.data, built by query.py for a type to compare and sort:
    `text`, `number`, `boolean`, `json_text` (lists and objects as JSON text) and `missing` (no value at all)."""

    text = number = boolean = json_text = missing = None


class FieldKind:
    """A field type. Subclasses set the class attributes and override what differs; one instance is registered."""

    name: ClassVar[str]  # stored in Field.field_type
    label: ClassVar[str]  # shown in 項目タイプ
    # ---- roles a field of this type may play
    detail: ClassVar[bool] = True  # may be a 明細 field (files are header-only, as in 楽楽販売)
    list_column: ClassVar[bool] = True  # a menu's 表示項目 (and what an integration sends)
    default_column: ClassVar[bool] = True  # among the columns a new menu starts with
    sort_key: ClassVar[bool] = True  # a menu's 並び順 (header fields)
    operators: ClassVar[tuple[str, ...]] = _BLANKS  # filter operators on a header field
    detail_operators: ClassVar[tuple[str, ...]] = ()  # on a 明細 field
    record_update: ClassVar[bool] = False  # a レコード更新 target (a run writes it after sending)
    record_update_blank: ClassVar[bool] = False  # … whose new value may be empty
    accepts_run_time: ClassVar[bool] = False  # … which may take 実行日時
    pdf_target: ClassVar[bool] = False  # the 連携対象PDF of a PDF integration
    record_label: ClassVar[bool] = False  # may name its record (監査ログ: 請求書 › レコード12(INV-0001))
    # ---- values
    typed: ClassVar[bool] = True  # people type the value in the record form; False: the app makes it (on_save)
    save_order: ClassVar[int] = 0  # on_save order of the untyped types (a PDF after the values it prints)
    has_options: ClassVar[bool] = False  # 選択肢 in the field settings
    is_file: ClassVar[bool] = False  # a stored file ({"name", "path", …}); uploads and downloads
    numeric: ClassVar[bool] = False  # right-aligned in lists
    indexed: ClassVar[bool] = False  # the list's filters and sort read a per-field expression index
    # ---- widgets
    widget: ClassVar[str] = "input"  # the record form's input: "input", "textarea", "check", "checks"
    input_type: ClassVar[str | None] = None  # the HTML input type of "input" (date, datetime-local)
    filter_widget: ClassVar[str] = "text"  # a filter's value: "text", "date", "checkbox", "choice"
    range_by_day: ClassVar[bool] = False  # a range filter is given in days (to 23:59 of the last day)
    view_template: ClassVar[str | None] = None  # the record page shows the value with this template, not text
    form_template: ClassVar[str | None] = None  # the record form shows this template instead of an input
    settings_template: ClassVar[str | None] = None  # this type's inputs on the field settings form
    field_page_template: ClassVar[str | None] = None  # a card on the field's edit page

    # ---- parsing and showing values ------------------------------------------------------------------

    def blank_value(self):
        return None

    def parse(self, raw, *, options: list[str] | None = None, required: bool = False, field: Field | None = None):
        """Turn form (or CSV) input into the stored value, or raise FieldValueError with a Japanese message.

        `field` is there for a type whose parsing needs the field's own settings (a DBリンク項目: its linked DB).
        """
        if is_blank(raw):
            if required:
                raise FieldValueError("必須項目です。入力してください。")
            return self.blank_value()
        return self.parse_text(str(raw).strip(), options or [])

    def parse_text(self, text: str, options: list[str]):
        return text

    def display(self, value) -> str:
        """The text a person sees for a stored value."""
        if value is None or value == "" or value == []:
            return ""
        return self.display_text(value)

    def display_text(self, value) -> str:
        return str(value)

    def csv(self, value) -> str:
        """The text an export sends: like display, but machine-readable (no thousands separators)."""
        if value is None or value == "" or value == []:
            return ""
        return self.csv_text(value)

    def csv_text(self, value) -> str:
        return self.display_text(value)

    def input_value(self, value):
        """The value pre-filled into the record form's input for editing."""
        if value is None:
            return ""
        return value if isinstance(value, str) else str(value)

    def filter_value(self, raw: str, field: Field):
        """The stored value of a filter compared with `=` or 含む (raises FieldValueError)."""
        return self.parse(raw, options=field.options, field=field)

    def filter_text(self, value) -> str:
        """A filter's value as the 監査ログ shows it."""
        return self.display(value)

    # ---- the record form ---------------------------------------------------------------------------

    def form_field(self, field: Field, validators: list):
        """The record form's WTForms field for `field` (an unbound field)."""
        render_kw = {"type": self.input_type} if self.input_type else None
        return StringField(field.name, validators=validators, description=field.help_text, render_kw=render_kw)

    # ---- the field settings form --------------------------------------------------------------------

    def settings_fields(self) -> dict:
        """Extra inputs of the field settings form for this type: {name: unbound WTForms field}."""
        return {}

    def prepare_settings(self, form, editing: Field | None) -> None:
        """Choices and first values of this type's settings inputs (before validation)."""

    def settings_from(self, form, current: dict) -> dict:
        """Field.settings from the submitted form (raise DatabaseError naming the input to refuse)."""
        return current

    # ---- saving a record ------------------------------------------------------------------------------

    def on_save(self, field: Field, record: Record) -> list[str]:
        """Make an untyped value after the typed ones are set (save_record; a 明細 field's in every row);
        returns messages for the user."""
        return []

    # ---- the record list's query ------------------------------------------------------------------------

    def sort_expression(self, stored: StoredValue):
        return stored.text

    def filter_clause(self, stored: StoredValue, operator: str, value):
        if operator == OP_EMPTY:
            return self.is_empty(stored)
        if operator == OP_NOT_EMPTY:
            return ~self.is_empty(stored)
        if operator == OP_EQUALS:
            return self.equals(stored, value)
        if operator == OP_CONTAINS:
            return self.contains(stored, value)
        if operator == OP_IN:
            return stored.text.in_([str(v) for v in value or []])
        if operator == OP_RANGE:
            low, high = (list(value or []) + [None, None])[:2]
            return self.in_range(stored, None if low in (None, "") else low, None if high in (None, "") else high)
        raise ValueError(f"unknown operator {operator}")

    def is_empty(self, stored: StoredValue):
        return func.coalesce(stored.text, "") == ""

    def equals(self, stored: StoredValue, value):
        return stored.text == str(value)

    def contains(self, stored: StoredValue, value):
        return stored.text.contains(str(value), autoescape=True)

    def in_range(self, stored: StoredValue, low, high):
        expr = self.sort_expression(stored)
        conditions = [expr >= low] if low is not None else []
        if high is not None:
            conditions.append(expr <= high)
        return and_(*conditions) if conditions else None


FIELD_KINDS: dict[str, FieldKind] = {}


def register(kind_class: type[FieldKind]) -> type[FieldKind]:
    """Register a type (a class decorator); its instance answers for every field of that type."""
    FIELD_KINDS[kind_class.name] = kind_class()
    return kind_class


def kind_of(name: str) -> FieldKind:
    try:
        return FIELD_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown field type {name!r} (is the module that registers it imported?)") from None


def kinds() -> list[FieldKind]:
    """Every type, in the order of the 項目タイプ choices."""
    return list(FIELD_KINDS.values())


# ---- the built-in types -------------------------------------------------------------------------------------


@register
class TextKind(FieldKind):
    name, label = "text", "テキスト(1行)"
    operators = (OP_EQUALS, OP_CONTAINS, *_BLANKS)
    detail_operators = (OP_CONTAINS,)
    record_update = record_update_blank = True
    record_label = indexed = True

    def parse_text(self, text: str, options: list[str]):
        if "\n" in text or "\r" in text:
            raise FieldValueError("改行は入力できません(1行テキストです)。")
        if len(text) > TEXT_MAX:
            raise FieldValueError(f"{TEXT_MAX}文字以内で入力してください(現在{len(text)}文字)。")
        return text


@register
class TextareaKind(FieldKind):
    name, label = "textarea", "テキスト(複数行)"
    operators = (OP_CONTAINS, *_BLANKS)
    detail_operators = (OP_CONTAINS,)
    default_column = False
    widget = "textarea"

    def parse(self, raw, *, options=None, required=False, field=None):
        if is_blank(raw):
            return super().parse(raw, options=options, required=required)
        text = str(raw).rstrip()  # leading spaces of the first line are kept in multi-line text
        if len(text) > TEXTAREA_MAX:
            raise FieldValueError(f"{TEXTAREA_MAX}文字以内で入力してください(現在{len(text)}文字)。")
        return text

    def form_field(self, field: Field, validators: list):
        return TextAreaField(field.name, validators=validators, description=field.help_text)


@register
class NumberKind(FieldKind):
    name, label = "number", "数値"
    operators = (OP_EQUALS, OP_RANGE, *_BLANKS)
    numeric = record_label = indexed = True

    def parse_text(self, text: str, options: list[str]):
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

    def display_text(self, value) -> str:
        if isinstance(value, float):
            return f"{value:,.10f}".rstrip("0").rstrip(".")
        return f"{value:,}"

    def csv_text(self, value) -> str:
        if isinstance(value, float):
            return f"{value:.10f}".rstrip("0").rstrip(".")
        return str(value)

    def input_value(self, value):
        return "" if value is None else str(value)

    def form_field(self, field: Field, validators: list):
        return StringField(field.name, validators=validators, description=field.help_text,
                           render_kw={"inputmode": "decimal"})

    def sort_expression(self, stored: StoredValue):
        return stored.number

    def equals(self, stored: StoredValue, value):
        return stored.number == float(value)

    def in_range(self, stored: StoredValue, low, high):
        return super().in_range(stored, None if low is None else float(low), None if high is None else float(high))


@register
class DateKind(FieldKind):
    name, label = "date", "日付"
    operators = (OP_EQUALS, OP_RANGE, *_BLANKS)
    record_label = indexed = True
    input_type = filter_widget = "date"

    def parse_text(self, text: str, options: list[str]):
        try:
            return datetime.strptime(text.replace("/", "-"), "%Y-%m-%d").date().isoformat()
        except ValueError as exc:
            raise FieldValueError("日付は YYYY-MM-DD の形式で、存在する日付を入力してください。") from exc

    def display_text(self, value) -> str:
        return value.replace("-", "/")


@register
class DateTimeKind(FieldKind):
    name, label = "datetime", "日時"
    operators = (OP_RANGE, *_BLANKS)
    record_update = accepts_run_time = indexed = True
    input_type = "datetime-local"
    filter_widget = "date"
    range_by_day = True

    def parse_text(self, text: str, options: list[str]):
        normalized = text.replace("/", "-").replace("T", " ")
        for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(normalized, fmt).strftime("%Y-%m-%d %H:%M")
            except ValueError:
                continue
        raise FieldValueError("日時は YYYY-MM-DD HH:MM の形式で入力してください。")

    def display_text(self, value) -> str:
        return value.replace("-", "/")

    def input_value(self, value):
        return "" if value is None else value.replace(" ", "T")

    def in_range(self, stored: StoredValue, low, high):
        if high is not None and len(str(high)) == 10:
            high = f"{high} 23:59"  # a day as the end of a range: up to its last minute
        return super().in_range(stored, low, high)


@register
class SelectKind(FieldKind):
    name, label = "select", "選択肢(1件選択)"
    operators = (OP_EQUALS, OP_IN, *_BLANKS)
    record_update = has_options = indexed = True
    filter_widget = "choice"

    def parse_text(self, text: str, options: list[str]):
        if text not in options:
            raise FieldValueError(f"選択肢にない値です: {text}")
        return text

    def form_field(self, field: Field, validators: list):
        choices = [("", "(未選択)")] + [(o, o) for o in field.options]
        return SelectField(field.name, choices=choices, validators=validators, description=field.help_text,
                           validate_choice=False)


@register
class MultiSelectKind(FieldKind):
    name, label = "multiselect", "選択肢(複数選択)"
    operators = (OP_CONTAINS, *_BLANKS)
    detail = False
    has_options = True
    widget = "checks"
    filter_widget = "choice"

    def blank_value(self):
        return []

    def parse(self, raw, *, options=None, required=False, field=None):
        if is_blank(raw):
            return super().parse(raw, options=options, required=required)
        values = [raw] if isinstance(raw, str) else list(raw)
        unknown = [v for v in values if v not in (options or [])]
        if unknown:
            raise FieldValueError(f"選択肢にない値です: {'、'.join(unknown)}")
        return [o for o in options or [] if o in values]  # the options' order: equal selections compare equal

    def display_text(self, value) -> str:
        return "、".join(value)

    def csv_text(self, value) -> str:
        return ",".join(value)

    def input_value(self, value):
        return value

    def filter_value(self, raw: str, field: Field):
        if raw not in field.options:
            raise FieldValueError(f"選択肢にない値です: {raw}")
        return raw

    def form_field(self, field: Field, validators: list):
        return SelectMultipleField(
            field.name, choices=[(o, o) for o in field.options], validators=validators, description=field.help_text,
            validate_choice=False, widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
        )

    def is_empty(self, stored: StoredValue):
        # A list is never NULL text; compare its JSON text instead.
        return or_(stored.missing, func.coalesce(stored.json_text, "[]").in_(["[]", ""]))

    def contains(self, stored: StoredValue, value):
        return stored.json_text.contains(json.dumps(str(value), ensure_ascii=False), autoescape=True)


@register
class CheckboxKind(FieldKind):
    name, label = "checkbox", "チェックボックス"
    operators = (OP_EQUALS,)
    widget = "check"
    filter_widget = "checkbox"

    def parse(self, raw, *, options=None, required=False, field=None):
        return bool(raw) and str(raw).lower() not in {"0", "false", "off", "n", ""}

    def display_text(self, value) -> str:
        return "✓" if value else ""

    def csv_text(self, value) -> str:
        return "1" if value else "0"

    def input_value(self, value):
        return value

    def filter_value(self, raw: str, field: Field):
        return raw in ("1", "true", "on")

    def filter_text(self, value) -> str:
        return "チェックあり" if value else "チェックなし"

    def form_field(self, field: Field, validators: list):
        return BooleanField(field.name, validators=validators, description=field.help_text)

    def equals(self, stored: StoredValue, value):
        return stored.boolean.is_(True) if value else or_(stored.boolean.is_(None), stored.boolean.is_(False))


class StoredFileKind(FieldKind):
    """A value that is a stored file under FILES_DIR (uploaded, or made by the app)."""

    detail = False
    is_file = True

    def parse(self, raw, *, options=None, required=False, field=None):
        raise TypeError("file values are not parsed from text")

    def display_text(self, value) -> str:
        return value.get("name", "") if isinstance(value, dict) else ""

    def is_empty(self, stored: StoredValue):
        return func.coalesce(stored.json_text, "null").in_(["null", ""])


@register
class FileKind(StoredFileKind):
    name, label = "file", "ファイル"
    view_template = "databases/_file_value.html"

    def form_field(self, field: Field, validators: list):
        return FileField(field.name, description=field.help_text)
