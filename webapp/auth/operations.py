"""User actions shared by views, CLI and the demo seed."""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from .models import User

PASSWORD_MIN_LENGTH = 10
# Passwords seen in every breach list; refused whatever their length.
COMMON_PASSWORDS = {"password", "password1", "password123", "1234567890", "qwertyuiop", "administrator",
                    "admin12345", "iloveyou12", "abcdefghij", "0123456789"}


class UserError(ValueError):
    """A user change that cannot be made; the message is Japanese and shown as is."""


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is refused (Japanese), or None when it follows the rules."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"パスワードは{PASSWORD_MIN_LENGTH}文字以上にしてください。"
    if len(password) > 128:
        return "パスワードは128文字以内にしてください。"
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "パスワードには英字と数字の両方を含めてください。"
    if username and username.strip().lower() in password.lower():
        return "パスワードにユーザ名を含めないでください。"
    if password.lower() in COMMON_PASSWORDS:
        return "よく使われるパスワードは使えません。推測されにくいものにしてください。"
    return None


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
    """Create a user. Only the demo seed skips the password rules (its admin/admin is asked for by design)."""
    username = username.strip()
    if not username:
        raise UserError("ユーザ名を入力してください。")
    problem = password_problem(password, username) if enforce_password_rules else None
    if problem:
        raise UserError(problem)
    if find_user(username):
        raise UserError(f"ユーザ名「{username}」は既に使われています。")
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
    db.session.commit()
    return user


def set_global_permissions(user: User, *, db_settings: bool, system_integration: bool) -> None:
    from ..core.audit import audit, diff

    shown = lambda u: {"DB設定": "○" if u.can_db_settings else "−", "システム連携": "○" if u.can_system_integration else "−"}  # noqa: E731
    before = shown(user)
    user.can_db_settings = db_settings
    user.can_system_integration = system_integration
    changes = diff(before, shown(user))
    if changes:
        audit("permission", "全体権限", user.id, user.username, changes)
    db.session.commit()
