"""Login/logout, 全体権限一覧 and user management (administrators)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from ..core.permissions import Permission, permission_required
from ..extensions import db, limiter, login_manager
from . import bp
from .forms import GlobalPermissionForm, LoginForm, UserForm
from .models import User
from .operations import UserError, create_user, find_user, set_global_permissions

login_manager.login_view = "auth.login"
login_manager.login_message = "ログインしてください。"
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(User, int(user_id))


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a fresh login to another site.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("databases.home")


def _login_key() -> str:
    username = (request.form.get("username") or "").strip().lower()[:64]
    return f"login:{request.remote_addr}:{username}"


def _failed_login(response) -> bool:
    # Only failures count toward the lockout: a successful login answers with a redirect.
    return response.status_code != 302


LOCKED_OUT = ("ログインに続けて失敗したため、このユーザ名でのログインを一時的に停止しています。"
              "15分ほど待ってからお試しください。パスワードが分からない場合は管理者に連絡してください。")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_FAILURE_LIMIT"], key_func=_login_key, methods=["POST"],
               deduct_when=_failed_login, error_message=LOCKED_OUT)
@limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_LIMIT"], methods=["POST"], deduct_when=_failed_login,
               error_message=LOCKED_OUT, scope="login-address")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("databases.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.username.data)
        if user and user.is_active and user.check_password(form.password.data):
            session.clear()  # a fresh session at login: nothing from before survives (fixation)
            login_user(user)
            session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME of inactivity
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("ユーザ名またはパスワードが正しくありません。")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
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
        flash(f"{user.label} さんの全体権限を更新しました。", "success")
        return redirect(url_for("auth.permission_list"))
    return render_template("auth/permission_edit.html", user=user, form=form)


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
        except UserError as exc:
            target = form.password if "パスワード" in str(exc) else form.username
            target.errors.append(str(exc))
        else:
            flash(f"ユーザ「{user.username}」を追加しました。権限はこの画面で設定できます。", "success")
            return redirect(url_for("auth.permission_edit", user_id=user.id))
    return render_template("auth/user_form.html", form=form)
