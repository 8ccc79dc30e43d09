"""Forms of the DB screens. The record form is built per DB from its fields."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    Form,
    FormField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms import (
    Field as WTFField,
)
from wtforms.validators import DataRequired, Length, ValidationError

from ..core.forms import BaseForm, FieldList
from .fieldtypes import FIELD_TYPE_LABELS, FieldType, FieldValueError, input_value, parse_value
from .models import ORIGIN_LABELS, PLACEMENT_LABELS, Database, Field
from .operations import PAGE_SIZES

DETAIL_ROWS_MAX = 500

NAME_VALIDATORS = [
    DataRequired(message="名前を入力してください。"),
    Length(max=100, message="100文字以内で入力してください。"),
]


class DatabaseForm(BaseForm):
    name = StringField("DB名", validators=NAME_VALIDATORS)
    description = TextAreaField("説明", validators=[Length(max=2000, message="2000文字以内で入力してください。")])


class FieldForm(BaseForm):
    name = StringField("項目名", validators=NAME_VALIDATORS)
    field_type = SelectField("項目タイプ", choices=[(t.value, label) for t, label in FIELD_TYPE_LABELS.items()])
    placement = RadioField("配置", choices=list(PLACEMENT_LABELS.items()), default="header")
    origin = SelectField("項目の種類", choices=list(ORIGIN_LABELS.items()), default="input")
    required = BooleanField("必須")
    options = TextAreaField(
        "選択肢", description="1行に1つ入力してください(選択肢タイプのみ)。",
        validators=[Length(max=5000, message="5000文字以内で入力してください。")],
    )
    help_text = StringField("説明文", validators=[Length(max=500, message="500文字以内で入力してください。")])
    # 自動生成ファイル only; choices are the template files found (set by the view).
    template = SelectField("帳票テンプレート", choices=[], validate_choice=False)


class ColumnRowForm(Form):
    field_id = SelectField("項目", coerce=str, validate_choice=False)


class FilterRowForm(Form):
    field_id = SelectField("項目", coerce=str, validate_choice=False)
    operator = SelectField("条件", coerce=str, validate_choice=False)
    value = StringField("値")
    value_to = StringField("まで")
    values = SelectMultipleField(
        "選択肢", coerce=str, validate_choice=False,
        widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
    )


class MenuForm(BaseForm):
    name = StringField("メニュー名", validators=NAME_VALIDATORS)
    columns = FieldList(FormField(ColumnRowForm), "表示項目", min_entries=0, max_entries=60)
    filters = FieldList(FormField(FilterRowForm), "絞り込み条件", min_entries=0, max_entries=20)
    sort_field_id = SelectField("並び順の項目", coerce=str, validate_choice=False)
    sort_desc = RadioField("並び順", choices=[("0", "昇順"), ("1", "降順")], default="0")
    page_size = SelectField("1ページの表示件数", choices=[(str(n), f"{n}件") for n in PAGE_SIZES], default="50")


# ---- the record form -------------------------------------------------------------------------------------


class DetailRowBase(Form):
    def is_blank(self) -> bool:
        return all(f.data in (None, "", [], False) for f in self)


class TypedValue:
    """Validator that parses the input with the field's type rules and keeps the parsed value."""

    def __init__(self, model_field: Field):
        self.model_field = model_field

    def __call__(self, form, wtf_field):
        raw = wtf_field.data
        if isinstance(form, DetailRowBase) and form.is_blank():
            wtf_field.parsed = None  # an empty 明細 row is dropped, not validated
            return
        try:
            wtf_field.parsed = parse_value(
                self.model_field.field_type, raw, options=self.model_field.options, required=self.model_field.required
            )
        except FieldValueError as exc:
            raise ValidationError(str(exc)) from exc


def _wtf_field(model_field: Field) -> WTFField:
    label = model_field.name
    validators = [TypedValue(model_field)]
    description = model_field.help_text
    kind = model_field.type
    if kind == FieldType.TEXTAREA:
        return TextAreaField(label, validators=validators, description=description)
    if kind == FieldType.NUMBER:
        return StringField(label, validators=validators, description=description, render_kw={"inputmode": "decimal"})
    if kind == FieldType.DATE:
        return StringField(label, validators=validators, description=description, render_kw={"type": "date"})
    if kind == FieldType.DATETIME:
        return StringField(label, validators=validators, description=description, render_kw={"type": "datetime-local"})
    if kind == FieldType.SELECT:
        choices = [("", "(未選択)")] + [(o, o) for o in model_field.options]
        return SelectField(label, choices=choices, validators=validators, description=description, validate_choice=False)
    if kind == FieldType.MULTISELECT:
        return SelectMultipleField(
            label, choices=[(o, o) for o in model_field.options], validators=validators, description=description,
            validate_choice=False, widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
        )
    if kind == FieldType.CHECKBOX:
        return BooleanField(label, validators=validators, description=description)
    if kind == FieldType.FILE:
        return FileField(label, description=description)
    return StringField(label, validators=validators, description=description)


def field_attr(model_field: Field) -> str:
    return f"f{model_field.id}"


def record_form_class(database: Database) -> type[BaseForm]:
    """A form class with one input per typed field of the DB (header), and 明細 rows as a FieldList."""

    class DetailRowForm(DetailRowBase):
        pass

    class RecordForm(BaseForm):
        pass

    for model_field in database.header_fields:
        if model_field.is_input:
            setattr(RecordForm, field_attr(model_field), _wtf_field(model_field))
            if model_field.type == FieldType.FILE:
                setattr(RecordForm, f"{field_attr(model_field)}_clear", BooleanField("このファイルを削除する"))
    detail_fields = [f for f in database.detail_fields if f.is_input]
    for model_field in detail_fields:
        setattr(DetailRowForm, field_attr(model_field), _wtf_field(model_field))
    if detail_fields:
        RecordForm.details = FieldList(FormField(DetailRowForm), "明細", min_entries=0, max_entries=DETAIL_ROWS_MAX)
    return RecordForm


def record_form_data(database: Database, data: dict, details: list[dict]) -> dict:
    """Stored values → the form's initial data."""
    initial: dict = {}
    for model_field in database.header_fields:
        if model_field.is_input and model_field.type != FieldType.FILE:
            value = data.get(model_field.key)
            if model_field.type in (FieldType.MULTISELECT, FieldType.CHECKBOX):
                initial[field_attr(model_field)] = value
            else:
                initial[field_attr(model_field)] = input_value(model_field.field_type, value)
    rows = []
    for row in details:
        rows.append(
            {
                field_attr(f): (row.get(f.key) if f.type == FieldType.CHECKBOX else input_value(f.field_type, row.get(f.key)))
                for f in database.detail_fields
                if f.is_input
            }
        )
    if database.detail_fields:
        initial["details"] = rows
    return initial


def parsed_values(database: Database, form) -> tuple[dict, list[dict]]:
    """After validate(): the typed header values and 明細 rows (blank rows dropped)."""
    data = {}
    for model_field in database.header_fields:
        if model_field.is_input and model_field.type != FieldType.FILE:
            data[model_field.key] = getattr(form, field_attr(model_field)).parsed
    details = []
    detail_fields = [f for f in database.detail_fields if f.is_input]
    if detail_fields:
        for entry in form.details.entries:
            row = {f.key: getattr(entry.form, field_attr(f)).parsed for f in detail_fields}
            if any(v not in (None, "", [], False) for v in row.values()):
                details.append(row)
    return data, details
