"""The one permission policy every guarded view uses.

全体権限一覧 grants DB設定 and システム連携 per user; an administrator (管理者) holds every permission.
Running an integration needs none of them (any logged-in user who can see the menu may run it).
"""

from __future__ import annotations

from enum import StrEnum
from functools import wraps

from flask import abort
from flask_login import current_user, login_required


class Permission(StrEnum):
    ADMIN = "admin"
    DB_SETTINGS = "db_settings"
    SYSTEM_INTEGRATION = "system_integration"


PERMISSION_LABELS = {
    Permission.ADMIN: "管理者",
    Permission.DB_SETTINGS: "DB設定",
    Permission.SYSTEM_INTEGRATION: "システム連携",
}


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


def permission_required(*permissions: Permission):
    """Login required, then 403 (a Japanese page) unless the user holds every permission."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not has_permission(current_user, *permissions):
                needed = "・".join(PERMISSION_LABELS[p] for p in permissions)
                abort(403, description=f"この操作には「{needed}」権限が必要です。管理者に権限の付与を依頼してください。")
            return view(*args, **kwargs)

        return wrapped

    return decorator
