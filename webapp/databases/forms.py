"""Forms of the DB screens, and the mapping between each form and its operation's terms (FieldSpec, MenuSpec,
RecordChanges). The record form is built per DB from its fields, each input by its field type."""

from __future__ import annotations

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
from wtforms.validators import DataRequired, Length, ValidationError

from ..core.forms import BaseForm, FieldList
from ..core.params import parse_id
from ..core.rows import edit_rows
from .fieldtypes import OP_IN, OP_RANGE, OPERATOR_LABELS, FieldKind, FieldValueError, kinds
from .models import ORIGIN_LABELS, PLACEMENT_LABELS, Database, Field, Menu
from .operations import (
    DETAIL_ROWS_MAX,
    PAGE_SIZES,
    FieldSpec,
    FilterInputs,
    FilterSpec,
    MenuSpec,
    RecordChanges,
)
from .query import operators_for

NAME_VALIDATORS = [
    DataRequired(message="名前を入力してください。"),
    Length(max=100, message="100文字以内で入力してください。"),
]


class DatabaseForm(BaseForm):
    name = StringField("DB名", validators=NAME_VALIDATORS)
    description = TextAreaField("説明", validators=[Length(max=2000, message="2000文字以内で入力してください。")])


class FieldForm(BaseForm):
    """項目の追加・編集. Build it with field_form_class(): each field type may add inputs of its own settings."""

    name = StringField("項目名", validators=NAME_VALIDATORS)
    field_type = SelectField("項目タイプ", choices=[])  # every registered type (set in __init__)
    placement = RadioField("配置", choices=list(PLACEMENT_LABELS.items()), default="header")
    origin = SelectField("項目の種類", choices=list(ORIGIN_LABELS.items()), default="input")
    required = BooleanField("必須")
    options = TextAreaField(
        "選択肢", description="1行に1つ入力してください(選択肢タイプのみ)。",
        validators=[Length(max=5000, message="5000文字以内で入力してください。")],
    )
    help_text = StringField("説明文", validators=[Length(max=500, message="500文字以内で入力してください。")])

    def __init__(self, *args, editing: Field | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.field_type.choices = [(kind.name, kind.label) for kind in kinds()]
        if editing is not None:
            # Type and placement are fixed after creation; the form shows them read-only.
            self.field_type.data, self.placement.data = editing.field_type, editing.placement
            if not self.is_submitted():
                self.options.data = "\n".join(editing.options)
        for kind in self.settings_kinds:
            kind.prepare_settings(self, editing)

    @property
    def settings_kinds(self) -> list[FieldKind]:
        """The types whose settings inputs the page shows: the field's own, or every type for a new field."""
        shown = [self.editing.kind] if self.editing is not None else kinds()
        return [kind for kind in shown if kind.settings_template]

    def spec(self) -> FieldSpec:
        """What was entered, for add_field / update_field (raises DatabaseError for a type's settings)."""
        settings = dict(self.editing.settings or {}) if self.editing else {}
        kind = next((k for k in kinds() if k.name == self.field_type.data), None)
        if kind is not None:
            settings = kind.settings_from(self, settings)
        return FieldSpec(
            name=self.name.data,
            field_type=self.field_type.data,
            placement=self.placement.data or "header",
            required=self.required.data,
            options=(self.options.data or "").splitlines(),
            origin=self.origin.data or "input",
            help_text=self.help_text.data or "",
            settings=settings,
        )


def field_form_class() -> type[FieldForm]:
    """The field settings form with the settings inputs of every registered field type."""
    extra = {name: unbound for kind in kinds() for name, unbound in kind.settings_fields().items()}
    return type("FieldForm", (FieldForm,), extra)


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

    @staticmethod
    def data_of(menu: Menu | None, database: Database) -> dict:
        """A stored menu (or the defaults of a new one) as the form's data."""
        if menu is None:
            header = [f.id for f in database.header_fields if f.kind.default_column][:8]
            return {"name": "", "columns": [{"field_id": str(fid)} for fid in header], "filters": [],
                    "sort_field_id": "", "sort_desc": "0", "page_size": "50"}
        return {
            "name": menu.name,
            "columns": [{"field_id": str(c.field_id)} for c in menu.columns],
            "filters": [_filter_row_data(f) for f in menu.filters],
            "sort_field_id": str(menu.sort_field_id or ""),
            "sort_desc": "1" if menu.sort_desc else "0",
            "page_size": str(menu.page_size),
        }

    @staticmethod
    def edit_rows(state: dict, action: str) -> None:
        """Row edits that re-render the form without saving (add/remove/reorder columns and filters)."""
        edit_rows(state["columns"], action, "column", lambda: {"field_id": ""})
        edit_rows(state["filters"], action, "filter",
                  lambda: {"field_id": "", "operator": "", "value": "", "value_to": "", "values": []})

    def set_choices(self, database: Database, saving: bool) -> dict[str, Field]:
        """The DB's fields as choices of every row; returns the fields by id (as the form posts them)."""
        fields_by_id = {str(f.id): f for f in database.fields}
        column_choices = [("", "(項目を選択)")] + [
            (str(f.id), f"{f.name}{'(明細)' if f.is_detail else ''}") for f in database.fields if f.kind.list_column
        ]
        filter_choices = [("", "(項目を選択)")] + [(str(f.id), f.name) for f in database.fields if operators_for(f)]
        for row in self.columns:
            row.form.field_id.choices = column_choices
        for row in self.filters:
            row.form.field_id.choices = filter_choices
            chosen = fields_by_id.get(row.form.field_id.data or "")
            operators = operators_for(chosen) if chosen else []
            row.form.operator.choices = [(op, OPERATOR_LABELS[op]) for op in operators] or [("", "(先に項目を選択)")]
            if chosen and row.form.operator.data not in operators and not saving:
                row.form.operator.data = operators[0]  # the field changed: offer its first condition
            row.form.values.choices = [(o, o) for o in (chosen.options if chosen else [])]
        self.sort_field_id.choices = [("", "登録順(レコードID)")] + [
            (str(f.id), f.name) for f in database.header_fields if f.kind.sort_key
        ]
        return fields_by_id

    def spec(self, fields_by_id: dict[str, Field]) -> MenuSpec:
        """What was entered, for create_menu / update_menu (which check it: operators, values, fields)."""
        filters = [
            FilterSpec(field_id=target.id, operator=row.form.operator.data or "",
                       inputs=FilterInputs(row.form.value.data or "", row.form.value_to.data or "",
                                           list(row.form.values.data or [])))
            for row in self.filters
            # a row left without a field is ignored, like an empty line
            if (target := fields_by_id.get(row.form.field_id.data or "")) is not None
        ]
        return MenuSpec(
            name=self.name.data or "",
            column_field_ids=[i for i in (parse_id(row.form.field_id.data) for row in self.columns) if i is not None],
            filters=filters,
            sort_field_id=parse_id(self.sort_field_id.data),
            sort_desc=self.sort_desc.data == "1",
            page_size=parse_id(self.page_size.data) or 0,
        )


def _filter_row_data(menu_filter) -> dict:
    """A stored filter as the texts of its form row."""
    value, value_to, values = "", "", []
    if menu_filter.operator == OP_RANGE:
        low, high = (list(menu_filter.value or []) + [None, None])[:2]
        value, value_to = low if low is not None else "", high if high is not None else ""
    elif menu_filter.operator == OP_IN:
        values = list(menu_filter.value or [])
    elif menu_filter.value is not None:
        value = "1" if menu_filter.value is True else ("" if menu_filter.value is False else menu_filter.value)
    return {"field_id": str(menu_filter.field_id), "operator": menu_filter.operator,
            "value": str(value), "value_to": str(value_to), "values": values}


# ---- the record form -------------------------------------------------------------------------------------


class DetailRowBase(Form):
    def is_blank(self) -> bool:
        return all(f.data in (None, "", [], False) for f in self)


class TypedValue:
    """Validator that parses the input with the field's type and keeps the parsed value."""

    def __init__(self, model_field: Field):
        self.model_field = model_field

    def __call__(self, form, wtf_field):
        raw = wtf_field.data
        if isinstance(form, DetailRowBase) and form.is_blank():
            wtf_field.parsed = None  # an empty 明細 row is dropped, not validated
            return
        try:
            wtf_field.parsed = self.model_field.kind.parse(
                raw, options=self.model_field.options, required=self.model_field.required, field=self.model_field
            )
        except FieldValueError as exc:
            raise ValidationError(str(exc)) from exc


def _wtf_field(model_field: Field):
    validators = [] if model_field.kind.is_file else [TypedValue(model_field)]
    return model_field.kind.form_field(model_field, validators)


def field_attr(model_field: Field) -> str:
    return model_field.input_name


def record_form_class(database: Database) -> type[BaseForm]:
    """A form class with one input per typed field of the DB (header), and 明細 rows as a FieldList."""

    class DetailRowForm(DetailRowBase):
        pass

    class RecordForm(BaseForm):
        pass

    for model_field in database.header_fields:
        if model_field.is_input:
            setattr(RecordForm, field_attr(model_field), _wtf_field(model_field))
            if model_field.kind.is_file:
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
        if model_field.is_input and not model_field.kind.is_file:
            initial[field_attr(model_field)] = model_field.kind.input_value(data.get(model_field.key))
    detail_fields = [f for f in database.detail_fields if f.is_input]
    if database.detail_fields:
        initial["details"] = [{field_attr(f): f.kind.input_value(row.get(f.key)) for f in detail_fields}
                              for row in details]
    return initial


def record_changes(database: Database, form) -> RecordChanges:
    """After validate(): what the form sets — typed header values, 明細 rows (blank rows dropped), new files and
    files to remove — for save_record."""
    changes = RecordChanges()
    for model_field in database.header_fields:
        if not model_field.is_input:
            continue
        if model_field.kind.is_file:
            storage = getattr(form, field_attr(model_field)).data
            if storage and getattr(storage, "filename", ""):
                changes.uploads[model_field.key] = storage
            elif getattr(form, f"{field_attr(model_field)}_clear").data:
                changes.cleared.add(model_field.key)
        else:
            changes.data[model_field.key] = getattr(form, field_attr(model_field)).parsed
    detail_fields = [f for f in database.detail_fields if f.is_input]
    if detail_fields:
        rows = [{f.key: getattr(entry.form, field_attr(f)).parsed for f in detail_fields} for entry in form.details.entries]
        changes.details = [row for row in rows if any(v not in (None, "", [], False) for v in row.values())]
    return changes
