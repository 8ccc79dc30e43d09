"""Login/logout, 全体権限一覧 and user management (administrators)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..core.forms import report_error
from ..core.permissions import Permission, permission_required
from ..extensions import db, limiter, login_manager
from . import bp
from .forms import GlobalPermissionForm, LoginForm, UserForm
from .models import User
from .operations import (
    UserError,
    create_user,
    end_all_sessions,
    find_user,
    password_matches,
    record_login,
    set_global_permissions,
)
from .sessions import end_session, ensure_session_store, load_session_user, start_session

login_manager.login_view = "auth.login"
login_manager.login_message = "ログインしてください。"
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(session_id: str):
    return load_session_user(session_id)


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a fresh login to another site.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("databases.home")


def _typed_username() -> str:
    return (request.form.get("username") or "").strip().lower()[:64]


def _login_key() -> str:
    return f"login:{request.remote_addr}:{_typed_username()}"


def _account_key() -> str:
    # The same user name from any address: an attack spread over many addresses is slowed down too.
    return f"login-account:{_typed_username()}"


def _failed_login(response) -> bool:
    # Only failures count toward the lockout: a successful login answers with a redirect.
    return response.status_code != 302


LOCKED_OUT = ("ログインに続けて失敗したため、このユーザ名でのログインを一時的に停止しています。"
              "15分ほど待ってからお試しください。パスワードが分からない場合は管理者に連絡してください。")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_FAILURE_LIMIT"], key_func=_login_key, methods=["POST"],
               deduct_when=_failed_login, error_message=LOCKED_OUT)
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_LIMIT"], key_func=_account_key, methods=["POST"],
               deduct_when=_failed_login, error_message=LOCKED_OUT, scope="login-account")
@limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_LIMIT"], methods=["POST"], deduct_when=_failed_login,
               error_message=LOCKED_OUT, scope="login-address")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("databases.home"))
    ensure_session_store()
    form = LoginForm()
    if form.validate_on_submit():
        account = find_user(form.username.data)
        # The password is checked first, whatever else is wrong: an unknown or inactive user takes as long.
        if password_matches(account, form.password.data) and account.is_active:
            start_session(account)
            record_login(form.username.data, account, True, request.remote_addr)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        record_login(form.username.data, account, False, request.remote_addr)
        db.session.commit()
        form.password.errors.append("ユーザ名またはパスワードが正しくありません。")
    # Secure cookies are not stored by a browser over plain http: say so instead of a login that silently fails.
    insecure = current_app.config["SESSION_COOKIE_SECURE"] and not request.is_secure
    return render_template("auth/login.html", form=form, needs_https=insecure)


@bp.post("/logout")
@login_required
def logout():
    end_session()
    flash("ログアウトしました。", "info")
    return redirect(url_for("auth.login"))


@bp.get("/admin/permissions")
@permission_required(Permission.ADMIN)
def permission_list():
    users = db.session.execute(select(User).order_by(User.id)).scalars().all()
    return render_template("auth/permission_list.html", users=users)


@bp.route("/admin/permissions/<int:user_id>", methods=["GET", "POST"])
@permission_required(Permission.ADMIN)
def permission_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = GlobalPermissionForm(obj=user)
    if form.validate_on_submit():
        set_global_permissions(
            user, db_settings=form.can_db_settings.data, system_integration=form.can_system_integration.data
        )
        db.session.commit()
        flash(f"{user.label} さんの全体権限を更新しました。", "success")
        return redirect(url_for("auth.permission_list"))
    return render_template("auth/permission_edit.html", user=user, form=form)


@bp.post("/admin/permissions/<int:user_id>/end-sessions")
@permission_required(Permission.ADMIN)
def end_sessions(user_id: int):
    user = db.get_or_404(User, user_id)
    myself = user.id == current_user.id
    end_all_sessions(user)
    db.session.commit()
    if myself:
        end_session()
        flash("すべてのセッションを終了しました。もう一度ログインしてください。", "info")
        return redirect(url_for("auth.login"))
    flash(f"{user.label} さんのすべてのセッションを終了しました。次の操作からログイン画面が表示されます。", "success")
    return redirect(url_for("auth.permission_edit", user_id=user.id))


@bp.route("/admin/users/new", methods=["GET", "POST"])
@permission_required(Permission.ADMIN)
def user_new():
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = create_user(
                form.username.data,
                form.password.data,
                display_name=form.display_name.data or "",
                email=form.email.data or "",
                is_admin=form.is_admin.data,
            )
            db.session.commit()
        except UserError as exc:
            db.session.rollback()
            report_error(form, exc)
        else:
            flash(f"ユーザ「{user.username}」を追加しました。権限はこの画面で設定できます。", "success")
            return redirect(url_for("auth.permission_edit", user_id=user.id))
    return render_template("auth/user_form.html", form=form)
