"""DB設定 › システム連携 › 楽楽明細連携設定 › タイマー設定."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user

from ..core import htmx_redirect, render
from ..core.clock import local_tz, to_local, utcnow
from ..core.forms import report_error
from ..core.permissions import INTEGRATION_SETTINGS, permission_required
from ..databases.loaders import get_database
from ..extensions import db
from ..integrations.loaders import get_setting
from ..runs.operations import RunError
from . import bp
from .forms import TimerForm
from .models import Timer
from .operations import (
    HEARTBEAT_MAX_AGE,
    NEXT_RUN_COUNT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    TimerError,
    filtered_menus,
    last_fired,
    last_heartbeat,
    menu_choices,
    recent_slots,
    run_now,
    save_timer,
    summary,
    timer_of,
    timers_using,
    upcoming,
    whole_database_count,
)
from .schedule import LAST_DAY, WEEKDAY_LABELS, Kind, tz_label

SETTINGS_PERMISSIONS = INTEGRATION_SETTINGS


def _form_data(timer: Timer | None) -> dict:
    if timer is None:
        return {"enabled": "0", "priority": "0", "kind": Kind.DAILY.value, "at_time": "09:00", "month_day": "1",
                "menu_id": "", "weekdays": []}
    return {
        "menu_id": str(timer.menu_id or ""), "enabled": "1" if timer.enabled else "0", "priority": str(timer.priority),
        "kind": timer.kind, "at_time": timer.at_time,
        "once_date": timer.once_date.isoformat() if timer.once_date else "",
        "weekdays": [d for d in timer.weekdays.split(",") if d],
        "month_day": LAST_DAY if timer.last_day else str(timer.month_day or 1),
    }


@bp.route("/dbs/<int:database_id>/integrations/<int:setting_id>/timer", methods=["GET", "POST"])
@permission_required(*SETTINGS_PERMISSIONS)
def timer_settings(database_id: int, setting_id: int):
    database = get_database(database_id)
    setting = get_setting(database, setting_id)
    timer = timer_of(setting)
    menus = [(m.id, m.name) for m in menu_choices(setting)]
    if request.method == "GET":
        form = TimerForm(formdata=None, data=_form_data(timer), menus=menus)
    else:
        form = TimerForm(menus=menus)
        if request.form.get("action", "save") == "save" and form.validate_on_submit():
            try:
                save_timer(setting, form.values, utcnow())
            except TimerError as exc:
                db.session.rollback()
                report_error(form, exc)
            else:
                flash("タイマー設定を保存しました。次回実行予定を確認してください。", "success")
                return htmx_redirect(url_for("timers.timer_settings", database_id=database.id, setting_id=setting.id))
        # Otherwise the schedule kind changed (htmx refresh) or a check failed: render again, nothing saved.
    now = utcnow()
    heartbeat = last_heartbeat()
    sends_everything = not form.menu_id.data
    return render(
        "timers/timer_form.html", block="timer_form_body", database=database, setting=setting, timer=timer,
        form=form, menus=menus, tz=tz_label(local_tz()), next_count=NEXT_RUN_COUNT,
        next_runs=upcoming(timer, now) if timer else [], last=last_fired(timer) if timer else None,
        slots=recent_slots(timer) if timer else [], PRIORITY_MIN=PRIORITY_MIN, PRIORITY_MAX=PRIORITY_MAX,
        heartbeat=heartbeat, scheduler_stale=heartbeat is None or now - heartbeat > HEARTBEAT_MAX_AGE,
        whole_count=whole_database_count(setting) if sends_everything else None,
        filtered_menus=filtered_menus(setting) if sends_everything else [],
    )


@bp.post("/dbs/<int:database_id>/integrations/<int:setting_id>/timer/run-now")
@permission_required(*SETTINGS_PERMISSIONS)
def timer_run_now(database_id: int, setting_id: int):
    """「今すぐ実行」: the timer's integration once now, as the timer would run it; 実行者 is the person."""
    database = get_database(database_id)
    setting = get_setting(database, setting_id)
    try:
        run = run_now(setting, current_user.id)
    except (TimerError, RunError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("timers.timer_settings", database_id=database.id, setting_id=setting.id))
    flash(f"「{setting.name}」をタイマー設定の内容で今すぐ実行しました(対象 {run.record_count}件)。", "success")
    return redirect(url_for("runs.run_detail", run_id=run.id))


@bp.app_template_global("timer_summary")
def timer_summary(setting):
    """The タイマー column of the 楽楽明細連携設定 list."""
    return summary(setting)


@bp.app_template_global("timers_using_menu")
def timers_using_menu(menu):
    """The timers that send this menu's records (shown on the menu's settings page)."""
    return [(timer, summary(timer.setting)) for timer in timers_using(menu)]


@bp.app_template_filter("timer_time")
def timer_time(moment) -> str:
    """A slot or run time in the configured time zone, with its weekday: 2026/11/26(木) 09:30."""
    if moment is None:
        return ""
    local = to_local(moment)
    return f"{local:%Y/%m/%d}({WEEKDAY_LABELS[local.weekday()]}) {local:%H:%M}"
