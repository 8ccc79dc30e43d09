"""The one permission policy every guarded view uses.

全体権限一覧 grants DB設定 and システム連携 per user; an administrator (管理者) holds every permission.
Running an integration needs none of them (any logged-in user who can see the menu may run it).
楽楽明細連携設定, timers and a menu's システム連携設定 need both DB設定 and システム連携 — and so does any change
to a menu or field that an integration or a timer depends on, since the menu's filter and columns decide
which records and values are sent (dropping 連携ステータス=未連携 would make the next timer run re-send every
invoice).
"""

from __future__ import annotations

from enum import StrEnum
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from .dependents import database_usage, field_usage, menu_usage


class Permission(StrEnum):
    ADMIN = "admin"
    DB_SETTINGS = "db_settings"
    SYSTEM_INTEGRATION = "system_integration"


PERMISSION_LABELS = {
    Permission.ADMIN: "管理者",
    Permission.DB_SETTINGS: "DB設定",
    Permission.SYSTEM_INTEGRATION: "システム連携",
}

# 楽楽明細連携設定, タイマー設定, a menu's システム連携設定, and whatever an integration or timer depends on.
INTEGRATION_SETTINGS = (Permission.DB_SETTINGS, Permission.SYSTEM_INTEGRATION)


def has_permission(user, *permissions: Permission) -> bool:
    """True when `user` holds every one of `permissions`."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_admin:
        return True
    held = {
        Permission.DB_SETTINGS: user.can_db_settings,
        Permission.SYSTEM_INTEGRATION: user.can_system_integration,
        Permission.ADMIN: False,
    }
    return all(held[p] for p in permissions)


def forbidden_message(permissions: tuple[Permission, ...], reason: str = "") -> str:
    """The Japanese 403 text: why (optional) and which permissions the operation needs."""
    needed = "・".join(PERMISSION_LABELS[p] for p in permissions)
    return f"{reason}この操作には「{needed}」権限が必要です。管理者に権限の付与を依頼してください。"


def require(*permissions: Permission, reason: str = "") -> None:
    """403 (a Japanese page naming the missing permissions) unless the current user holds every one."""
    if not has_permission(current_user, *permissions):
        abort(403, description=forbidden_message(permissions, reason))


def permission_required(*permissions: Permission):
    """Login required, then 403 (a Japanese page) unless the user holds every permission."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            require(*permissions)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def menu_change_permissions(menu) -> tuple[Permission, ...]:
    """What changing or deleting `menu` needs: DB設定, and システム連携 too when an integration or a timer uses it."""
    return INTEGRATION_SETTINGS if menu_usage(menu) else (Permission.DB_SETTINGS,)


def field_change_permissions(field) -> tuple[Permission, ...]:
    """What deleting `field` needs: both when an integration or timer depends on it (a column, filter or sort of
    a menu they use, a レコード更新 target or the 連携対象PDF) — deleting it would change what they send."""
    return INTEGRATION_SETTINGS if field_usage(field) else (Permission.DB_SETTINGS,)


def database_delete_permissions(database) -> tuple[Permission, ...]:
    """Deleting a DB deletes its 楽楽明細連携設定 and timers with it: both when it has any."""
    return INTEGRATION_SETTINGS if database_usage(database) else (Permission.DB_SETTINGS,)


def require_for_menu(menu) -> None:
    """403 unless the current user may change `menu` (see menu_change_permissions)."""
    needed = menu_change_permissions(menu)
    require(*needed, reason=_in_use_reason(f"メニュー「{menu.name}」", needed))


def require_for_field(field) -> None:
    """403 unless the current user may delete `field` (see field_change_permissions)."""
    needed = field_change_permissions(field)
    require(*needed, reason=_in_use_reason(f"項目「{field.name}」", needed))


def require_for_database_delete(database) -> None:
    """403 unless the current user may delete `database` (see database_delete_permissions)."""
    needed = database_delete_permissions(database)
    reason = f"DB「{database.name}」には楽楽明細連携設定があります。" if needed == INTEGRATION_SETTINGS else ""
    require(*needed, reason=reason)


def _in_use_reason(target: str, needed: tuple[Permission, ...]) -> str:
    return f"{target}は「楽楽明細」連携またはタイマーで使われています。" if needed == INTEGRATION_SETTINGS else ""
