"""Run dialog, preview, progress, システム連携状況確認 (per menu and global), run detail, downloads, 再実行."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..core import htmx_redirect, is_htmx, render
from ..core.downloads import send_stored_file
from ..core.files import path_of
from ..core.permissions import Permission, permission_required
from ..databases.loaders import get_menu
from ..databases.models import Database, Menu
from ..extensions import db
from ..integrations.models import IntegrationSetting
from ..integrations.operations import bookkeeping_gaps
from ..mail.models import OutboxMail
from . import bp
from .models import RECORD_STATUS_LABELS, CallStatus, Run, RunCall, RunStatus
from .operations import (
    RunError,
    needs_publication_date,
    parse_publication_date,
    preview_run,
    record_problems,
    recover_runs,
    rerun_failed,
    start_run,
)

RUNS_PER_PAGE = 50


def get_attached_setting(menu: Menu, setting_id: int) -> IntegrationSetting:
    from ..integrations.operations import menu_integrations

    for attached in menu_integrations(menu):
        if attached.setting_id == setting_id:
            return attached.setting
    abort(404, description="この連携はこのメニューに設定されていません。")


def get_run(run_id: int) -> Run:
    return db.get_or_404(Run, run_id, description="指定された実行履歴は存在しません。")


def get_current_run(run_id: int) -> Run:
    """The run as it stands now: an active one is checked for a dead worker or a lost job first."""
    run = get_run(run_id)
    if run.is_active:
        recover_runs()
        db.session.refresh(run)
    return run


def _dialog(menu: Menu, setting: IntegrationSetting, *, memo="", publication_date="", error="", preview=None):
    return render_template(
        "runs/_run_dialog.html", menu=menu, setting=setting, keyword=request.values.get("q", ""), memo=memo,
        publication_date=publication_date, error=error, preview=preview,
        asks_publication_date=needs_publication_date(setting), menu_name=menu.name,
        gaps=bookkeeping_gaps(setting, menu),
    )


@bp.get("/menus/<int:menu_id>/integrations/<int:setting_id>/dialog")
@login_required
def run_dialog(menu_id: int, setting_id: int):
    menu = get_menu(menu_id)
    return _dialog(menu, get_attached_setting(menu, setting_id))


@bp.post("/menus/<int:menu_id>/integrations/<int:setting_id>/preview")
@login_required
def run_preview(menu_id: int, setting_id: int):
    menu = get_menu(menu_id)
    setting = get_attached_setting(menu, setting_id)
    preview = preview_run(setting, menu, request.form.get("q", ""))
    return _dialog(menu, setting, memo=request.form.get("memo", ""),
                   publication_date=request.form.get("publication_date", ""), preview=preview)


@bp.post("/menus/<int:menu_id>/integrations/<int:setting_id>/run")
@login_required
def run_start(menu_id: int, setting_id: int):
    menu = get_menu(menu_id)
    setting = get_attached_setting(menu, setting_id)
    memo = request.form.get("memo", "")
    publication_text = request.form.get("publication_date", "")
    try:
        publication_date = parse_publication_date(setting, publication_text)
        run = start_run(setting, menu, executor_id=current_user.id, memo=memo, keyword=request.form.get("q", ""),
                        publication_date=publication_date)
    except RunError as exc:
        response = _dialog(menu, setting, memo=memo, publication_date=publication_text, error=str(exc))
        return response, 200 if is_htmx() else 400
    if not is_htmx():
        flash(f"「{setting.name}」の実行を受け付けました。", "success")
        return redirect(url_for("runs.run_detail", run_id=run.id))
    return render_template("runs/_run_started.html", run=run, with_heading=True)


@bp.get("/runs/<int:run_id>/progress")
@login_required
def run_progress(run_id: int):
    """The polled progress; in the run dialog (heading=1) with the dialog's heading, which follows the run."""
    run = get_current_run(run_id)
    return render_template("runs/_progress.html", run=run, with_heading=request.args.get("heading") == "1")


def _runs_page(statement, page: int):
    rows = db.session.execute(statement.order_by(Run.id.desc()).limit(RUNS_PER_PAGE + 1)
                              .offset((page - 1) * RUNS_PER_PAGE)).scalars().all()
    return rows[:RUNS_PER_PAGE], len(rows) > RUNS_PER_PAGE


@bp.get("/menus/<int:menu_id>/runs")
@login_required
def menu_runs(menu_id: int):
    """システム連携状況確認 of one menu."""
    menu = get_menu(menu_id)
    recover_runs()
    page = max(1, request.args.get("page", 1, type=int))
    runs, has_next = _runs_page(select(Run).where(Run.menu_id == menu.id), page)
    return render("runs/run_list.html", block="run_table", runs=runs, has_next=has_next, page=page, menu=menu,
                  database=menu.database, active_menu_id=menu.id)


@bp.get("/runs")
@permission_required(Permission.ADMIN)
def all_runs():
    """システム連携状況確認 of every menu and timer (administrators)."""
    recover_runs()
    page = max(1, request.args.get("page", 1, type=int))
    statement = select(Run)
    status = request.args.get("status", "")
    if status in {s.value for s in RunStatus}:
        statement = statement.where(Run.status == status)
    runs, has_next = _runs_page(statement, page)
    return render("runs/run_list.html", block="run_table", runs=runs, has_next=has_next, page=page, menu=None,
                  database=None, status=status, RunStatus=RunStatus)


@bp.get("/runs/<int:run_id>")
@login_required
def run_detail(run_id: int):
    """The run, its calls, and its records' errors (listed once, paged: `problems` is the page, swapped by htmx)."""
    run = get_current_run(run_id)
    problems = record_problems(run, request.args.get("problems", 1, type=int))
    mails = db.session.execute(select(OutboxMail).where(OutboxMail.run_id == run.id)).scalars().all()
    database = db.session.get(Database, run.database_id)
    return render("runs/run_detail.html", block="run_problems", run=run, problems=problems, mails=mails,
                  database=database, CallStatus=CallStatus, RunStatus=RunStatus,
                  RECORD_STATUS_LABELS=RECORD_STATUS_LABELS,
                  can_rerun=run.status in (RunStatus.PARTIAL, RunStatus.ERROR, RunStatus.INTERRUPTED,
                                           RunStatus.NEEDS_CHECK))


@bp.get("/runs/<int:run_id>/calls/<int:index>/files/<int:number>")
@login_required
def call_file(run_id: int, index: int, number: int):
    run = get_run(run_id)
    call = db.session.execute(select(RunCall).where(RunCall.run_id == run.id, RunCall.index == index)).scalar_one_or_none()
    if call is None or not 0 <= number < len(call.files):
        abort(404, description="ファイルが見つかりません。")
    info = call.files[number]
    path = path_of(info["path"])
    if path is None:
        abort(404, description="ファイルが見つかりません(削除された可能性があります)。")
    return send_stored_file(path, info["content_type"], info["name"])


@bp.post("/runs/<int:run_id>/rerun")
@login_required
def run_rerun(run_id: int):
    run = get_run(run_id)
    try:
        new_run = rerun_failed(run, current_user.id)
    except RunError as exc:
        flash(str(exc), "error")
        return redirect(url_for("runs.run_detail", run_id=run.id))
    flash("再実行を受け付けました。" + ("送信済みの分は送りません。" if new_run.id == run.id else
                                        f"送信できなかった{new_run.record_count}件だけを送信します。"), "success")
    return htmx_redirect(url_for("runs.run_detail", run_id=new_run.id))


@bp.get("/admin/mails")
@permission_required(Permission.ADMIN)
def mail_outbox():
    page = max(1, request.args.get("page", 1, type=int))
    mails = db.session.execute(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(RUNS_PER_PAGE + 1)
                               .offset((page - 1) * RUNS_PER_PAGE)).scalars().all()
    return render_template("runs/mail_outbox.html", mails=mails[:RUNS_PER_PAGE], page=page,
                           has_next=len(mails) > RUNS_PER_PAGE)
