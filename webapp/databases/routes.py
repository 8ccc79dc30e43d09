"""DB設定: 基本設定 (DB, 項目, メニュー設定) and the システム連携 tab."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core import htmx_redirect, render
from ..core.params import parse_id
from ..core.permissions import (
    Permission,
    has_permission,
    menu_change_permissions,
    permission_required,
    require_for_database_delete,
    require_for_field,
    require_for_menu,
)
from ..core.rows import edit_rows
from ..extensions import db
from . import bp
from .fieldtypes import OPTION_TYPES, FieldType
from .forms import DatabaseForm, FieldForm, MenuForm
from .models import Database, Field, Menu
from .operations import (
    DatabaseError,
    FieldSpec,
    FilterSpec,
    MenuSpec,
    add_field,
    create_database,
    create_menu,
    delete_database,
    delete_field,
    delete_menu,
    filter_value_from_inputs,
    move_field,
    update_database,
    update_field,
    update_menu,
)
from .query import OP_IN, OP_RANGE, OPERATOR_LABELS, operators_for

SETTINGS_TABS = {"basic": "基本設定", "integration": "システム連携"}


def get_database(database_id: int) -> Database:
    return db.get_or_404(Database, database_id, description="指定されたDBは存在しないか、削除されました。")


def get_field(database: Database, field_id: int) -> Field:
    found = db.session.get(Field, field_id)
    if found is None or found.database_id != database.id:
        abort(404, description="指定された項目は存在しないか、削除されました。")
    return found


def get_menu(menu_id: int, database: Database | None = None) -> Menu:
    found = db.session.get(Menu, menu_id)
    if found is None or (database is not None and found.database_id != database.id):
        abort(404, description="指定されたメニューは存在しないか、削除されました。")
    return found


def _report(form, error: DatabaseError) -> None:
    target = getattr(form, error.field, None) if error.field else None
    if target is not None:
        target.errors = list(target.errors) + [str(error)]
    else:
        form.form_errors.append(str(error))


@bp.get("/")
@login_required
def home():
    databases = db.session.execute(
        select(Database).options(selectinload(Database.menus), selectinload(Database.fields)).order_by(
            Database.position, Database.id
        )
    ).scalars().all()
    return render("databases/home.html", databases=databases)


@bp.route("/dbs/new", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def database_new():
    form = DatabaseForm()
    if form.validate_on_submit():
        try:
            database = create_database(form.name.data, form.description.data or "")
        except DatabaseError as exc:
            _report(form, exc)
        else:
            flash(f"DB「{database.name}」を作成しました。続けて項目を追加してください。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return render("databases/database_new.html", form=form)


@bp.get("/dbs/<int:database_id>/settings")
@permission_required(Permission.DB_SETTINGS)
def settings(database_id: int):
    database = get_database(database_id)
    tab = request.args.get("tab", "basic")
    if tab not in SETTINGS_TABS:
        tab = "basic"
    form = DatabaseForm(obj=database)
    return _render_settings(database, tab, form)


def _render_settings(database: Database, tab: str, form: DatabaseForm):
    return render(
        "databases/settings.html",
        block="tab_body",
        database=database,
        tab=tab,
        tabs=SETTINGS_TABS,
        form=form,
        OPTION_TYPES=OPTION_TYPES,
    )


@bp.post("/dbs/<int:database_id>/settings")
@permission_required(Permission.DB_SETTINGS)
def settings_save(database_id: int):
    database = get_database(database_id)
    form = DatabaseForm()
    if form.validate_on_submit():
        try:
            update_database(database, form.name.data, form.description.data or "")
        except DatabaseError as exc:
            db.session.rollback()
            _report(form, exc)
        else:
            flash("基本設定を保存しました。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return _render_settings(database, "basic", form)


@bp.post("/dbs/<int:database_id>/delete")
@permission_required(Permission.DB_SETTINGS)
def database_delete(database_id: int):
    database = get_database(database_id)
    require_for_database_delete(database)
    name = database.name
    delete_database(database)
    flash(f"DB「{name}」を削除しました。", "success")
    return redirect(url_for("databases.home"))


# ---- fields --------------------------------------------------------------------------------------------


def _field_spec(form: FieldForm, editing: Field | None = None) -> FieldSpec:
    settings = dict(editing.settings or {}) if editing else {}
    if form.field_type.data == FieldType.AUTOFILE:
        if form.template.data not in {key for key, _ in form.template.choices}:
            raise DatabaseError("帳票テンプレートを選んでください。", "template")
        settings["template"] = form.template.data
    return FieldSpec(
        name=form.name.data,
        field_type=form.field_type.data,
        placement=form.placement.data or "header",
        required=form.required.data,
        options=(form.options.data or "").splitlines(),
        origin=form.origin.data or "input",
        help_text=form.help_text.data or "",
        settings=settings,
    )


def _template_choices(form: FieldForm, editing: Field | None = None) -> None:
    """The document templates a 自動生成ファイル field may use (files under webapp/documents/templates_pdf …)."""
    from ..documents.document_templates import DEFAULT_TEMPLATE, available_templates, template_key_of

    form.template.choices = [(t.key, t.name) for t in available_templates()]
    if request.method == "GET":
        form.template.data = template_key_of(editing) if editing else DEFAULT_TEMPLATE


@bp.route("/dbs/<int:database_id>/fields/new", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def field_new(database_id: int):
    database = get_database(database_id)
    form = FieldForm()
    _template_choices(form)
    if form.validate_on_submit():
        try:
            new_field = add_field(database, _field_spec(form))
        except DatabaseError as exc:
            db.session.rollback()
            _report(form, exc)
        else:
            flash(f"項目「{new_field.name}」を追加しました。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return render("databases/field_form.html", database=database, form=form, editing=None)


@bp.route("/dbs/<int:database_id>/fields/<int:field_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def field_edit(database_id: int, field_id: int):
    database = get_database(database_id)
    editing = get_field(database, field_id)
    form = FieldForm(obj=editing) if request.method == "GET" else FieldForm()
    if request.method == "GET":
        form.options.data = "\n".join(editing.options)
    # Type and placement are fixed after creation; the form shows them read-only.
    form.field_type.data, form.placement.data = editing.field_type, editing.placement
    _template_choices(form, editing)
    if form.validate_on_submit():
        try:
            update_field(editing, _field_spec(form, editing))
        except DatabaseError as exc:
            db.session.rollback()
            _report(form, exc)
        else:
            flash(f"項目「{editing.name}」を保存しました。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return render("databases/field_form.html", database=database, form=form, editing=editing)


@bp.post("/dbs/<int:database_id>/fields/<int:field_id>/delete")
@permission_required(Permission.DB_SETTINGS)
def field_delete(database_id: int, field_id: int):
    database = get_database(database_id)
    target = get_field(database, field_id)
    require_for_field(target)
    name = target.name
    delete_field(target)
    flash(f"項目「{name}」を削除しました。", "success")
    return redirect(url_for("databases.settings", database_id=database.id))


@bp.post("/dbs/<int:database_id>/fields/<int:field_id>/move")
@permission_required(Permission.DB_SETTINGS)
def field_move(database_id: int, field_id: int):
    database = get_database(database_id)
    target = get_field(database, field_id)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400)
    move_field(target, direction)
    return redirect(url_for("databases.settings", database_id=database.id))


# ---- menus ---------------------------------------------------------------------------------------------


def _menu_state_from(menu: Menu | None, database: Database) -> dict:
    if menu is None:
        header = [f.id for f in database.header_fields if f.type not in (FieldType.TEXTAREA,)][:8]
        return {"name": "", "columns": [{"field_id": str(fid)} for fid in header], "filters": [],
                "sort_field_id": "", "sort_desc": "0", "page_size": "50"}
    filters = []
    for menu_filter in menu.filters:
        value, value_to, values = "", "", []
        if menu_filter.operator == OP_RANGE:
            low, high = (list(menu_filter.value or []) + [None, None])[:2]
            value, value_to = low if low is not None else "", high if high is not None else ""
        elif menu_filter.operator == OP_IN:
            values = list(menu_filter.value or [])
        elif menu_filter.value is not None:
            value = "1" if menu_filter.value is True else ("" if menu_filter.value is False else menu_filter.value)
        filters.append({"field_id": str(menu_filter.field_id), "operator": menu_filter.operator,
                        "value": str(value), "value_to": str(value_to), "values": values})
    return {
        "name": menu.name,
        "columns": [{"field_id": str(c.field_id)} for c in menu.columns],
        "filters": filters,
        "sort_field_id": str(menu.sort_field_id or ""),
        "sort_desc": "1" if menu.sort_desc else "0",
        "page_size": str(menu.page_size),
    }


def _apply_menu_action(state: dict, action: str) -> None:
    """Row edits that re-render the form without saving (add/remove/reorder columns and filters)."""
    edit_rows(state["columns"], action, "column", lambda: {"field_id": ""})
    edit_rows(state["filters"], action, "filter",
              lambda: {"field_id": "", "operator": "", "value": "", "value_to": "", "values": []})


def _menu_form_choices(form: MenuForm, database: Database, saving: bool) -> dict[str, Field]:
    fields_by_id = {str(f.id): f for f in database.fields}
    column_choices = [("", "(項目を選択)")] + [
        (str(f.id), f"{f.name}{'(明細)' if f.is_detail else ''}") for f in database.fields
    ]
    for row in form.columns:
        row.form.field_id.choices = column_choices
    for row in form.filters:
        filter_fields = [f for f in database.fields if operators_for(f)]
        row.form.field_id.choices = [("", "(項目を選択)")] + [(str(f.id), f.name) for f in filter_fields]
        chosen = fields_by_id.get(row.form.field_id.data or "")
        operators = operators_for(chosen) if chosen else []
        row.form.operator.choices = [(op, OPERATOR_LABELS[op]) for op in operators] or [("", "(先に項目を選択)")]
        if chosen and row.form.operator.data not in operators and not saving:
            row.form.operator.data = operators[0]  # the field changed: offer its first condition
        row.form.values.choices = [(o, o) for o in (chosen.options if chosen else [])]
    form.sort_field_id.choices = [("", "登録順(レコードID)")] + [(str(f.id), f.name) for f in database.header_fields]
    return fields_by_id


def _menu_spec(form: MenuForm, database: Database, fields_by_id: dict[str, Field]) -> MenuSpec:
    column_ids = [i for i in (parse_id(row.form.field_id.data) for row in form.columns) if i is not None]
    filters = []
    for row in form.filters:
        target = fields_by_id.get(row.form.field_id.data or "")
        if target is None:
            continue  # a row left without a field is ignored, like an empty line
        operator = row.form.operator.data
        if operator not in operators_for(target):
            label = OPERATOR_LABELS.get(operator)
            message = f"項目「{target.name}」には条件「{label}」を使えません。" if label else f"項目「{target.name}」の条件を選んでください。"
            raise DatabaseError(message, "filters")
        value = filter_value_from_inputs(
            target, operator, row.form.value.data or "", row.form.value_to.data or "", row.form.values.data or []
        )
        filters.append(FilterSpec(field_id=target.id, operator=operator, value=value))
    sort_id = form.sort_field_id.data
    return MenuSpec(
        name=form.name.data or "",
        column_field_ids=column_ids,
        filters=filters,
        sort_field_id=parse_id(sort_id),
        sort_desc=form.sort_desc.data == "1",
        page_size=parse_id(form.page_size.data) or 0,
    )


def _menu_form_view(database: Database, menu: Menu | None):
    from ..integrations.operations import menu_usage

    usage = menu_usage(menu) if menu else None
    # A menu an integration or timer uses is shown read-only to those who may not change it (POSTs are refused).
    locked = bool(menu) and not has_permission(current_user, *menu_change_permissions(menu))
    if request.method == "POST" and menu is not None:
        require_for_menu(menu)
    if request.method == "GET":
        form = MenuForm(formdata=None, data=_menu_state_from(menu, database))
    else:
        form = MenuForm()
        action = request.form.get("action", "save")
        if action != "save":
            # Re-render with the row edit applied; nothing is saved until 確定.
            state = {k: v for k, v in form.data.items() if k not in ("csrf_token", "action")}
            _apply_menu_action(state, action)
            form = MenuForm(formdata=None, data=state)
    saving = request.method == "POST" and request.form.get("action", "save") == "save"
    fields_by_id = _menu_form_choices(form, database, saving)
    if saving and form.validate_on_submit():
        try:
            spec = _menu_spec(form, database, fields_by_id)
            changes = {}
            if menu is None:
                menu = create_menu(database, spec)
            else:
                changes = update_menu(menu, spec)
        except DatabaseError as exc:
            db.session.rollback()
            _report(form, exc)
        else:
            flash(f"メニュー「{menu.name}」を保存しました。", "success")
            if usage and changes:
                flash(f"この変更で、次の連携が送るレコード・項目が変わります: {usage.describe()}"
                      f"(変更した設定: {'、'.join(changes)})", "warning")
            return htmx_redirect(url_for("databases.settings", database_id=database.id))
    return render(
        "databases/menu_form.html", block="menu_form_body", database=database, menu=menu, form=form,
        fields_by_id=fields_by_id, FieldType=FieldType, locked=locked, usage=usage,
    )


@bp.route("/dbs/<int:database_id>/menus/new", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def menu_new(database_id: int):
    return _menu_form_view(get_database(database_id), None)


@bp.route("/dbs/<int:database_id>/menus/<int:menu_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def menu_edit(database_id: int, menu_id: int):
    database = get_database(database_id)
    return _menu_form_view(database, get_menu(menu_id, database))


@bp.post("/dbs/<int:database_id>/menus/<int:menu_id>/delete")
@permission_required(Permission.DB_SETTINGS)
def menu_delete(database_id: int, menu_id: int):
    from ..integrations.operations import menu_usage

    database = get_database(database_id)
    menu = get_menu(menu_id, database)
    require_for_menu(menu)
    name, usage = menu.name, menu_usage(menu)
    delete_menu(menu)
    flash(f"メニュー「{name}」を削除しました。", "success")
    if usage:
        flash(f"このメニューを使っていた連携: {usage.describe()}。サブメニューから外れ、タイマーはメニューがないため"
              "スキップされます。", "warning")
    return redirect(url_for("databases.settings", database_id=database.id))
