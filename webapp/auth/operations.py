"""User actions shared by views, CLI and the demo seed. They flush; the caller commits."""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from ..core.audit import audit, diff
from ..core.errors import DomainError
from ..extensions import db
from .models import User, verify_password
from .passwords import password_problems
from .sessions import revoke_sessions

# Hashes no password matches, one per hash method: an unknown user name costs the same check as a known one.
_dummy_hashes: dict[str, str] = {}

class UserError(DomainError):
    """A user change that cannot be made; the message is Japanese and shown as is (one line per problem)."""


def find_user(username: str) -> User | None:
    return db.session.execute(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).scalar_one_or_none()


def create_user(
    username: str,
    password: str,
    *,
    display_name: str = "",
    email: str = "",
    is_admin: bool = False,
    can_db_settings: bool = False,
    can_system_integration: bool = False,
    enforce_password_rules: bool = True,
) -> User:
    """Create a user (audited). Only the demo seed skips the password rules (its admin/admin is asked for by
    design)."""
    username = username.strip()
    if not username:
        raise UserError("ユーザ名を入力してください。", "username")
    problems = password_problems(password, username, display_name, email) if enforce_password_rules else []
    if problems:
        raise UserError("\n".join(problems), "password")
    if find_user(username):
        raise UserError(f"ユーザ名「{username}」は既に使われています。", "username")
    user = User(
        username=username,
        display_name=display_name.strip(),
        email=email.strip(),
        is_admin=is_admin,
        can_db_settings=can_db_settings,
        can_system_integration=can_system_integration,
    )
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit("create", "ユーザ", user.id, user.username, diff({}, _shown_permissions(user)))
    db.session.flush()
    return user


def _shown_permissions(user: User) -> dict[str, str]:
    """A user's roles as 全体権限一覧 shows them, for the 監査ログ."""
    mark = lambda held: "○" if held else "−"  # noqa: E731
    shown = {"氏名": user.display_name, "管理者": mark(user.is_admin)}
    shown.update({"DB設定": mark(user.can_db_settings), "システム連携": mark(user.can_system_integration)})
    return shown


def set_global_permissions(user: User, *, db_settings: bool, system_integration: bool) -> None:
    before = _shown_permissions(user)
    user.can_db_settings = db_settings
    user.can_system_integration = system_integration
    changes = diff(before, _shown_permissions(user))
    if changes:
        audit("permission", "全体権限", user.id, user.username, changes)
    db.session.flush()


def password_matches(account: User | None, password: str) -> bool:
    """Whether `password` is the account's; for no account, the same hash work is done and False returned,
    so that a login's answer time does not tell which user names exist."""
    if account is None:
        method = current_app.config["PASSWORD_HASH_METHOD"]
        if method not in _dummy_hashes:
            _dummy_hashes[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
        verify_password(_dummy_hashes[method], password)
        return False
    return account.check_password(password)


def record_login(username: str, account: User | None, succeeded: bool, address: str) -> None:
    """Write a login success or failure (typed user name, client address) to the audit log."""
    audit("login" if succeeded else "login_failed", "ログイン", account.id if account else None, username,
          {"アドレス": ["", address or "-"]}, user_id=account.id if account else None)
    db.session.flush()


def change_password(user: User, password: str) -> None:
    """Set a new password (the rules apply) and end every session of the user, on every device."""
    problems = password_problems(password, user.username, user.display_name, user.email)
    if problems:
        raise UserError("\n".join(problems), "password")
    user.set_password(password)
    revoke_sessions(user)
    db.session.flush()


def end_all_sessions(user: User) -> None:
    """全セッションを終了: the user is logged out everywhere (audited); they can log in again at once."""
    revoke_sessions(user)
    audit("end_sessions", "ユーザ", user.id, user.username)
    db.session.flush()
