"""Screens of DB設定 › システム連携 › 楽楽明細連携設定, a menu's システム連携設定, and 監査ログ."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..core import htmx_redirect, render
from ..core.audit import AuditEntry
from ..core.forms import report_error
from ..core.params import parse_id
from ..core.permissions import INTEGRATION_SETTINGS, Permission, permission_required
from ..core.rows import edit_rows
from ..databases.loaders import get_database, get_menu
from ..databases.models import Database
from ..extensions import db
from . import bp
from .forms import IntegrationSettingForm, pdf_target_fields, record_update_fields
from .loaders import get_setting
from .models import (
    DATA_KIND_LABELS,
    RECORD_UPDATE_MAX,
    RUN_TIME,
    DataKind,
    IntegrationSetting,
)
from .operations import (
    IntegrationError,
    bookkeeping_gaps,
    bookkeeping_warnings,
    delete_setting,
    menu_integrations,
    save_setting,
    set_menu_integrations,
    settings_connection_test,
    settings_of,
    token_readable,
)

SETTINGS_PERMISSIONS = INTEGRATION_SETTINGS


@bp.get("/dbs/<int:database_id>/integrations")
@permission_required(*SETTINGS_PERMISSIONS)
def setting_list(database_id: int):
    database = get_database(database_id)
    settings = settings_of(database)
    return render_template(
        "integrations/setting_list.html", database=database, settings=settings,
        readable={s.id: token_readable(s) for s in settings},
    )


def _setting_form_view(database: Database, setting: IntegrationSetting | None):
    editing = setting is not None
    action = request.form.get("action", "save") if request.method == "POST" else None
    if request.method == "GET":
        data = IntegrationSettingForm.data_of(setting) if setting else {"report_type_id": "1", "record_updates": []}
        form = IntegrationSettingForm(formdata=None, data=data, database=database, editing=editing)
    else:
        form = IntegrationSettingForm(database=database, editing=editing)
        if action != "save":
            # A controlling choice changed or a row was added/removed: re-render, save nothing.
            state = {k: v for k, v in form.data.items() if k not in ("csrf_token",)}
            # The typed token stays in the browser's own input (hx-preserve); the page never carries it.
            state["token"] = ""
            state["url"] = form.tidied_url()  # the URL field lost focus: cut a pasted admin URL at /backadmin
            edit_rows(state.get("record_updates", []), action, "update",
                      lambda: {"field_id": "", "mode": "fixed", "value": ""}, max_rows=RECORD_UPDATE_MAX)
            form = IntegrationSettingForm(formdata=None, data=state, database=database, editing=editing)
        elif form.validate_on_submit():
            try:
                saved = save_setting(database, form.values(), setting)
                db.session.commit()
            except IntegrationError as exc:
                db.session.rollback()
                report_error(form, exc)
            else:
                flash(f"楽楽明細連携設定「{saved.name}」を保存しました。", "success")
                return htmx_redirect(url_for("integrations.setting_list", database_id=database.id))
    return render(
        "integrations/setting_form.html", block="setting_form_body", database=database, setting=setting, form=form,
        pdf_fields=pdf_target_fields(database), update_fields=record_update_fields(database), DataKind=DataKind,
        RUN_TIME=RUN_TIME, RECORD_UPDATE_MAX=RECORD_UPDATE_MAX,
        token_needs_reentry=bool(setting) and not token_readable(setting),
        bookkeeping_warnings=bookkeeping_warnings(setting, form.kind) if setting else [],
    )


@bp.route("/dbs/<int:database_id>/integrations/new", methods=["GET", "POST"])
@permission_required(*SETTINGS_PERMISSIONS)
def setting_new(database_id: int):
    return _setting_form_view(get_database(database_id), None)


@bp.route("/dbs/<int:database_id>/integrations/<int:setting_id>/edit", methods=["GET", "POST"])
@permission_required(*SETTINGS_PERMISSIONS)
def setting_edit(database_id: int, setting_id: int):
    database = get_database(database_id)
    return _setting_form_view(database, get_setting(database, setting_id))


@bp.post("/dbs/<int:database_id>/integrations/<int:setting_id>/delete")
@permission_required(*SETTINGS_PERMISSIONS)
def setting_delete(database_id: int, setting_id: int):
    database = get_database(database_id)
    setting = get_setting(database, setting_id)
    name = setting.name
    delete_setting(setting)
    db.session.commit()
    flash(f"楽楽明細連携設定「{name}」を削除しました。", "success")
    return redirect(url_for("integrations.setting_list", database_id=database.id))


@bp.post("/dbs/<int:database_id>/integrations/connection-test")
@permission_required(*SETTINGS_PERMISSIONS)
def setting_connection_test(database_id: int):
    """接続テスト of the form's URL and token, without saving; a blank token on edit uses the stored one if the
    URL kept its origin. Audited."""
    database = get_database(database_id)
    setting_id = request.form.get("setting_id", type=int)
    setting = get_setting(database, setting_id) if setting_id else None
    check, origin = settings_connection_test(request.form.get("url", ""), request.form.get("token", ""), setting,
                                             label=request.form.get("name", ""))
    db.session.commit()  # the 監査ログ entry of the test
    result = {"ok": check.ok, "message": check.message, "origin": origin}
    return render_template("integrations/_connection_result.html", result=result)


@bp.route("/dbs/<int:database_id>/menus/<int:menu_id>/integrations", methods=["GET", "POST"])
@permission_required(*SETTINGS_PERMISSIONS)
def menu_integration_settings(database_id: int, menu_id: int):
    """メニュー設定 › システム連携設定: choose 処理, 追加, order, remove, 確定."""
    database = get_database(database_id)
    menu = get_menu(menu_id, database)
    available = settings_of(database)
    error = None
    if request.method == "GET":
        chosen = [m.setting_id for m in menu_integrations(menu)]
    else:
        chosen = [parse_id(v) for v in request.form.getlist("setting_ids")]  # a None is refused on 確定
        action = request.form.get("action", "save")
        added = request.form.get("new_setting_id", type=int)
        if action == "add_setting":
            if added and added not in chosen:
                chosen.append(added)
        elif edit_rows(chosen, action, "setting"):
            pass
        elif action == "save":
            try:
                set_menu_integrations(menu, chosen)
                db.session.commit()
            except IntegrationError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                flash(f"メニュー「{menu.name}」のシステム連携設定を保存しました。", "success")
                return htmx_redirect(url_for("databases.menu_edit", database_id=database.id, menu_id=menu.id))
    by_id = {s.id: s for s in available}
    return render(
        "integrations/menu_integrations.html", block="menu_integrations_body", database=database, menu=menu,
        chosen=[by_id[i] for i in chosen if i in by_id], available=available, DATA_KIND_LABELS=DATA_KIND_LABELS,
        gaps={i: bookkeeping_gaps(by_id[i], menu) for i in chosen if i in by_id}, error=error,
    )


@bp.app_template_global("attached_integrations")
def attached_integrations(menu) -> list[IntegrationSetting]:
    """The integrations in this menu's サブメニュー, in their order (shown on the menu's settings page)."""
    return [attached.setting for attached in menu_integrations(menu)]


@bp.get("/admin/audit")
@permission_required(Permission.ADMIN)
def audit_log():
    page = max(1, request.args.get("page", 1, type=int))
    per_page = 50
    entries = db.session.execute(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(per_page + 1).offset((page - 1) * per_page)
    ).scalars().all()
    return render_template("integrations/audit_log.html", entries=entries[:per_page], page=page,
                           has_next=len(entries) > per_page)
