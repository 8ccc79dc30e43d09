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
    """Create a user (audited). Only the demo seed skips the password rules (its admin/admin is asked for by
    design)."""
    from ..core.audit import audit, diff

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
    db.session.flush()
    audit("create", "ユーザ", user.id, user.username, diff({}, _shown_permissions(user)))
    db.session.commit()
    return user


def _shown_permissions(user: User) -> dict[str, str]:
    """A user's roles as 全体権限一覧 shows them, for the 監査ログ."""
    mark = lambda held: "○" if held else "−"  # noqa: E731
    shown = {"氏名": user.display_name, "管理者": mark(user.is_admin)}
    shown.update({"DB設定": mark(user.can_db_settings), "システム連携": mark(user.can_system_integration)})
    return shown


def set_global_permissions(user: User, *, db_settings: bool, system_integration: bool) -> None:
    from ..core.audit import audit, diff

    before = _shown_permissions(user)
    user.can_db_settings = db_settings
    user.can_system_integration = system_integration
    changes = diff(before, _shown_permissions(user))
    if changes:
        audit("permission", "全体権限", user.id, user.username, changes)
    db.session.commit()
