"""Users and their global permissions (管理者設定 > 権限設定 > 全体権限一覧)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.clock import utcnow
from ..extensions import db


def verify_password(password_hash: str, password: str) -> bool:
    """The one password check (constant-time compare of the derived hash)."""
    return check_password_hash(password_hash, password)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    email: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active_user: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Global permissions of 全体権限一覧. An administrator holds every permission implicitly.
    can_db_settings: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_system_integration: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # Part of the id every session and remember cookie carries (get_id); raising it ends them all
    # (webapp/auth/sessions.py: a password change, deactivation, 全セッションを終了).
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users
        return self.is_active_user

    @property
    def label(self) -> str:
        return self.display_name or self.username

    def __repr__(self) -> str:
        return f"<User {self.username}>"
