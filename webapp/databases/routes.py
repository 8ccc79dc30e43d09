"""DB設定: 基本設定 (DB, 項目, メニュー設定) and the システム連携 tab."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core import htmx_redirect, render
from ..core.dependents import menu_usage
from ..core.forms import report_error
from ..core.permissions import (
    Permission,
    has_permission,
    menu_change_permissions,
    permission_required,
    require_for_database_delete,
    require_for_field,
    require_for_menu,
)
from ..extensions import db
from . import bp
from .forms import DatabaseForm, MenuForm, field_form_class
from .loaders import get_database, get_field, get_menu
from .models import Database, Menu
from .operations import (
    DatabaseError,
    add_field,
    create_database,
    create_menu,
    delete_database,
    delete_field,
    delete_menu,
    move_field,
    update_database,
    update_field,
    update_menu,
)

SETTINGS_TABS = {"basic": "基本設定", "integration": "システム連携"}


@bp.app_context_processor
def navigation() -> dict:
    """The left panel of every page: each DB with its レコード一覧 menus (signed-in users only)."""
    if not current_user.is_authenticated:
        return {"nav_databases": []}
    return {"nav_databases": list(db.session.execute(
        select(Database).options(selectinload(Database.menus)).order_by(Database.position, Database.id)
    ).scalars())}


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
            db.session.commit()
        except DatabaseError as exc:
            db.session.rollback()
            report_error(form, exc)
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
    )


@bp.post("/dbs/<int:database_id>/settings")
@permission_required(Permission.DB_SETTINGS)
def settings_save(database_id: int):
    database = get_database(database_id)
    form = DatabaseForm()
    if form.validate_on_submit():
        try:
            update_database(database, form.name.data, form.description.data or "")
            db.session.commit()
        except DatabaseError as exc:
            db.session.rollback()
            report_error(form, exc)
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
    db.session.commit()
    flash(f"DB「{name}」を削除しました。", "success")
    return redirect(url_for("databases.home"))


# ---- fields --------------------------------------------------------------------------------------------


@bp.route("/dbs/<int:database_id>/fields/new", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def field_new(database_id: int):
    database = get_database(database_id)
    form = field_form_class()()
    if form.validate_on_submit():
        try:
            new_field = add_field(database, form.spec())
            db.session.commit()
        except DatabaseError as exc:
            db.session.rollback()
            report_error(form, exc)
        else:
            flash(f"項目「{new_field.name}」を追加しました。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return render("databases/field_form.html", database=database, form=form, editing=None,
                  settings_kinds=form.settings_kinds)


@bp.route("/dbs/<int:database_id>/fields/<int:field_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.DB_SETTINGS)
def field_edit(database_id: int, field_id: int):
    database = get_database(database_id)
    editing = get_field(database, field_id)
    form_class = field_form_class()
    form = form_class(obj=editing, editing=editing) if request.method == "GET" else form_class(editing=editing)
    if form.validate_on_submit():
        try:
            update_field(editing, form.spec())
            db.session.commit()
        except DatabaseError as exc:
            db.session.rollback()
            report_error(form, exc)
        else:
            flash(f"項目「{editing.name}」を保存しました。", "success")
            return redirect(url_for("databases.settings", database_id=database.id))
    return render("databases/field_form.html", database=database, form=form, editing=editing,
                  settings_kinds=form.settings_kinds)


@bp.post("/dbs/<int:database_id>/fields/<int:field_id>/delete")
@permission_required(Permission.DB_SETTINGS)
def field_delete(database_id: int, field_id: int):
    database = get_database(database_id)
    target = get_field(database, field_id)
    require_for_field(target)
    name = target.name
    delete_field(target)
    db.session.commit()
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
    db.session.commit()
    return redirect(url_for("databases.settings", database_id=database.id))


# ---- menus ---------------------------------------------------------------------------------------------


def _menu_form_view(database: Database, menu: Menu | None):
    usage = menu_usage(menu) if menu else None
    # A menu an integration or timer uses is shown read-only to those who may not change it (POSTs are refused).
    locked = bool(menu) and not has_permission(current_user, *menu_change_permissions(menu))
    if request.method == "POST" and menu is not None:
        require_for_menu(menu)
    if request.method == "GET":
        form = MenuForm(formdata=None, data=MenuForm.data_of(menu, database))
    else:
        form = MenuForm()
        action = request.form.get("action", "save")
        if action != "save":
            # Re-render with the row edit applied; nothing is saved until 確定.
            state = {k: v for k, v in form.data.items() if k not in ("csrf_token", "action")}
            MenuForm.edit_rows(state, action)
            form = MenuForm(formdata=None, data=state)
    saving = request.method == "POST" and request.form.get("action", "save") == "save"
    fields_by_id = form.set_choices(database, saving)
    if saving and form.validate_on_submit():
        try:
            spec = form.spec(fields_by_id)
            changes = {}
            if menu is None:
                menu = create_menu(database, spec)
            else:
                changes = update_menu(menu, spec)
            db.session.commit()
        except DatabaseError as exc:
            db.session.rollback()
            report_error(form, exc)
        else:
            flash(f"メニュー「{menu.name}」を保存しました。", "success")
            if usage and changes:
                flash(f"この変更で、次の連携が送るレコード・項目が変わります: {usage.describe()}"
                      f"(変更した設定: {'、'.join(changes)})", "warning")
            return htmx_redirect(url_for("databases.settings", database_id=database.id))
    return render(
        "databases/menu_form.html", block="menu_form_body", database=database, menu=menu, form=form,
        fields_by_id=fields_by_id, locked=locked, usage=usage,
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
    database = get_database(database_id)
    menu = get_menu(menu_id, database)
    require_for_menu(menu)
    name, usage = menu.name, menu_usage(menu)
    delete_menu(menu)
    db.session.commit()
    flash(f"メニュー「{name}」を削除しました。", "success")
    if usage:
        flash(f"このメニューを使っていた連携: {usage.describe()}。サブメニューから外れ、タイマーはメニューがないため"
              "スキップされます。", "warning")
    return redirect(url_for("databases.settings", database_id=database.id))
