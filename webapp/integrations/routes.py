"""Screens of DB設定 › システム連携 › 楽楽明細連携設定, a menu's システム連携設定, and 監査ログ."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..core import htmx_redirect, render
from ..core.audit import AuditEntry
from ..core.params import parse_id
from ..core.permissions import INTEGRATION_SETTINGS, Permission, permission_required
from ..core.rows import edit_rows
from ..databases.models import Database
from ..databases.routes import get_database, get_menu
from ..extensions import db
from . import bp
from .forms import IntegrationSettingForm, pdf_target_fields, record_update_fields
from .models import (
    DATA_KIND_LABELS,
    RECORD_UPDATE_MAX,
    RUN_TIME,
    DataKind,
    IntegrationSetting,
)
from .operations import (
    IntegrationError,
    SettingValues,
    attached_menus,
    bookkeeping_gaps,
    delete_setting,
    menu_integrations,
    save_setting,
    set_menu_integrations,
    settings_connection_test,
    settings_of,
    token_readable,
)

SETTINGS_PERMISSIONS = INTEGRATION_SETTINGS


def get_setting(database: Database, setting_id: int) -> IntegrationSetting:
    setting = db.session.get(IntegrationSetting, setting_id)
    if setting is None or setting.database_id != database.id or setting.is_deleted:
        abort(404, description="指定された楽楽明細連携設定は存在しないか、削除されました。")
    return setting


@bp.get("/dbs/<int:database_id>/integrations")
@permission_required(*SETTINGS_PERMISSIONS)
def setting_list(database_id: int):
    database = get_database(database_id)
    settings = settings_of(database)
    return render_template(
        "integrations/setting_list.html", database=database, settings=settings,
        readable={s.id: token_readable(s) for s in settings},
    )


def _form_data_from(setting: IntegrationSetting) -> dict:
    as_flag = lambda value: "1" if value else "0"  # noqa: E731
    rows = []
    for rule in setting.record_updates:
        run_time = rule.value == RUN_TIME
        rows.append({"field_id": str(rule.field_id), "mode": RUN_TIME if run_time else "fixed",
                     "value": "" if run_time else rule.value.replace(" ", "T") if rule.field.field_type == "datetime" else rule.value})
    return {
        "name": setting.name, "url": setting.base_url, "token": "", "data_kind": setting.data_kind,
        "report_mail": as_flag(setting.report_mail), "report_mail_to": setting.report_mail_to or "executor",
        "report_mail_errors_only": setting.report_mail_errors_only,
        "import_setting_id": str(setting.import_setting_id or ""),
        "overwrite_in_use": as_flag(setting.overwrite_in_use), "overwrite_blank": as_flag(setting.overwrite_blank),
        "report_type_id": str(setting.report_type_id or "1"), "import_method": setting.import_method or "new",
        "skip_approval": as_flag(setting.skip_approval), "issue_method": setting.issue_method or "immediate",
        "replace_notify_mail": as_flag(setting.replace_notify_mail), "replace_postal": as_flag(setting.replace_postal),
        "replace_fax": as_flag(setting.replace_fax), "approval_flow_id": str(setting.approval_flow_id or ""),
        "pdf_field_id": str(setting.pdf_field_id or ""), "record_updates": rows,
    }


def _values_from(form: IntegrationSettingForm) -> SettingValues:
    return SettingValues(
        name=form.name.data,
        base_url=form.normalized_url,
        token=(form.token.data or "").strip() or None,
        data_kind=form.kind,
        report_mail=form.report_mail.data == "1",
        report_mail_to=form.report_mail_to.data,
        report_mail_errors_only=bool(form.report_mail_errors_only.data),
        import_setting_id=getattr(form.import_setting_id, "parsed", None),
        overwrite_in_use=form.overwrite_in_use.data == "1",
        overwrite_blank=form.overwrite_blank.data == "1",
        report_type_id=getattr(form.report_type_id, "parsed", None),
        import_method=form.import_method.data,
        skip_approval=form.skip_approval.data == "1",
        issue_method=form.issue_method.data,
        replace_notify_mail=form.replace_notify_mail.data == "1",
        replace_postal=form.replace_postal.data == "1",
        replace_fax=form.replace_fax.data == "1",
        approval_flow_id=getattr(form.approval_flow_id, "parsed", None),
        pdf_field_id=parse_id(form.pdf_field_id.data),
        record_updates=form.record_update_values(),
    )


def _setting_form_view(database: Database, setting: IntegrationSetting | None):
    editing = setting is not None
    action = request.form.get("action", "save") if request.method == "POST" else None
    if request.method == "GET":
        data = _form_data_from(setting) if setting else {"report_type_id": "1", "record_updates": []}
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
                saved = save_setting(database, _values_from(form), setting)
            except IntegrationError as exc:
                db.session.rollback()
                if exc.field in form:
                    form[exc.field].errors = [*form[exc.field].errors, str(exc)]
                else:
                    form.form_errors.append(str(exc))
            else:
                flash(f"楽楽明細連携設定「{saved.name}」を保存しました。", "success")
                return htmx_redirect(url_for("integrations.setting_list", database_id=database.id))
    return render(
        "integrations/setting_form.html", block="setting_form_body", database=database, setting=setting, form=form,
        pdf_fields=pdf_target_fields(database), update_fields=record_update_fields(database), DataKind=DataKind,
        RUN_TIME=RUN_TIME, RECORD_UPDATE_MAX=RECORD_UPDATE_MAX,
        token_needs_reentry=bool(setting) and not token_readable(setting),
        bookkeeping_warnings=_bookkeeping_warnings(setting, form.kind) if setting else [],
    )


def _bookkeeping_warnings(setting: IntegrationSetting, kind: DataKind) -> list[tuple[str, list[str]]]:
    """(menu name, missing keys) of the menus this setting is attached to, for the kind shown in the form."""
    if kind in (DataKind.CUSTOMER, DataKind.REPORT_PDF):
        return []
    shown = IntegrationSetting(data_kind=kind.value)
    return [(menu.name, gaps) for menu in attached_menus(setting) if (gaps := bookkeeping_gaps(shown, menu))]


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
