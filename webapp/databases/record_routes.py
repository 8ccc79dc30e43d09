"""The record list (レコード一覧) and record create / view / edit / delete."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from ..core import render
from ..core.downloads import send_stored_file
from ..core.errors import DomainError
from ..core.forms import report_error
from ..core.rows import edit_rows
from ..extensions import db
from . import bp
from .forms import field_attr, record_changes, record_form_class, record_form_data
from .loaders import get_database, get_field, get_menu, get_record
from .models import Database, Field, Menu, Record
from .operations import delete_record, save_record, stored_file_path
from .query import menu_page


def cell_text(model_field: Field, record: Record) -> str:
    if model_field.is_detail:
        values = [model_field.kind.display(row.get(model_field.key)) for row in record.details]
        values = [v for v in values if v]
        return " / ".join(values[:3]) + (f" 他{len(values) - 3}件" if len(values) > 3 else "")
    return model_field.kind.display(record.data.get(model_field.key))


@bp.get("/menus/<int:menu_id>")
@login_required
def record_list(menu_id: int):
    menu = get_menu(menu_id)
    keyword = request.args.get("q", "").strip()[:200]
    page_number = request.args.get("page", 1, type=int) or 1
    sort_id = request.args.get("sort", type=int)
    sort_field = None
    if sort_id:
        candidate = db.session.get(Field, sort_id)
        sort_field = candidate if candidate and candidate.database_id == menu.database_id else None
    desc_arg = request.args.get("desc")
    desc = None if desc_arg is None else desc_arg == "1"
    page = menu_page(menu, keyword, page_number, sort_field, desc)

    def list_url(**changes):
        params = {"q": keyword or None, "page": page.page, "sort": sort_field.id if sort_field else None,
                  "desc": desc_arg}
        params.update(changes)
        return url_for("databases.record_list", menu_id=menu.id, **{k: v for k, v in params.items() if v})

    effective_sort = sort_field or menu.sort_field
    effective_desc = menu.sort_desc if desc is None else desc
    return render(
        "databases/record_list.html",
        block="records",
        menu=menu,
        database=menu.database,
        columns=menu.column_fields,
        page=page,
        keyword=keyword,
        list_url=list_url,
        cell_text=cell_text,
        effective_sort=effective_sort,
        effective_desc=effective_desc,
        active_menu_id=menu.id,
    )


def _menu_for_return(database: Database):
    menu_id = request.args.get("menu", type=int)
    if menu_id:
        menu = db.session.get(Menu, menu_id)
        if menu is not None and menu.database_id == database.id:
            return menu
    return database.menus[0] if database.menus else None


def _back_url(database: Database, record: Record | None = None) -> str:
    menu = _menu_for_return(database)
    if record is not None:
        return url_for("databases.record_view", record_id=record.id, menu=menu.id if menu else None)
    if menu is not None:
        return url_for("databases.record_list", menu_id=menu.id)
    return url_for("databases.home")


def _record_form_view(database: Database, record: Record | None):
    form_class = record_form_class(database)
    if request.method == "GET":
        data = record.data if record else {}
        details = record.details if record else []
        initial = record_form_data(database, data, details)
        if database.detail_fields and not initial.get("details"):
            initial["details"] = [{}]
        form = form_class(formdata=None, data=initial)
    else:
        form = form_class()
        action = request.form.get("action", "save")
        if action != "save":
            # Add or remove a 明細 row and re-render; nothing is saved.
            state = {k: v for k, v in form.data.items() if k != "csrf_token"}
            edit_rows(state.get("details", []), action, "row", dict)
            form = form_class(formdata=None, data=state)
            return _render_record_form(database, record, form)
        if form.validate_on_submit():
            try:
                saved = save_record(database, record, record_changes(database, form), current_user.id)
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                report_error(form, exc)
            else:
                flash("レコードを保存しました。", "success")
                for message in saved.messages:
                    flash(message, "error")
                return redirect(_back_url(database, saved.record))
    return _render_record_form(database, record, form)


def _render_record_form(database: Database, record: Record | None, form):
    return render(
        "databases/record_form.html",
        block="details_body",
        database=database,
        record=record,
        form=form,
        field_attr=field_attr,
        back_url=_back_url(database, record),
        menu=_menu_for_return(database),
    )


@bp.route("/dbs/<int:database_id>/records/new", methods=["GET", "POST"])
@login_required
def record_new(database_id: int):
    return _record_form_view(get_database(database_id), None)


@bp.get("/records/<int:record_id>")
@login_required
def record_view(record_id: int):
    record = get_record(record_id)
    database = record.database
    return render(
        "databases/record_view.html", database=database, record=record,
        menu=_menu_for_return(database), back_url=_back_url(database),
        active_menu_id=(_menu_for_return(database).id if database.menus else None),
    )


@bp.route("/records/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def record_edit(record_id: int):
    record = get_record(record_id)
    return _record_form_view(record.database, record)


@bp.post("/records/<int:record_id>/delete")
@login_required
def record_delete(record_id: int):
    record = get_record(record_id)
    database = record.database
    back = _back_url(database)
    delete_record(record)
    db.session.commit()
    flash("レコードを削除しました。", "success")
    return redirect(back)


@bp.get("/records/<int:record_id>/files/<int:field_id>")
@login_required
def record_file(record_id: int, field_id: int):
    record = get_record(record_id)
    target = get_field(record.database, field_id)
    value = record.data.get(target.key)
    path = stored_file_path(value)
    if path is None:
        abort(404, description="ファイルがありません。")
    inline = request.args.get("inline") == "1" and value.get("content_type") == "application/pdf"
    return send_stored_file(path, value.get("content_type"), value["name"], inline=inline)
