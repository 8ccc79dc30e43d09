"""User actions shared by views, CLI and the demo seed."""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from .models import User

PASSWORD_MIN_LENGTH = 8


class UserError(ValueError):
    """A user change that cannot be made; the message is Japanese and shown as is."""


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
) -> User:
    username = username.strip()
    if not username:
        raise UserError("ユーザ名を入力してください。")
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
