"""Audit log: who changed which setting when, with a field-level diff.

Entries are added to the same transaction as the change itself, so a refused change leaves no entry and a
saved change always has one. Secrets are never written: a token change is recorded as 変更 only.
"""

from __future__ import annotations

from datetime import datetime

from flask_login import current_user
from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .clock import utcnow
from .dbtypes import JSONType

SECRET_CHANGED = "変更"
ACTION_LABELS = {"create": "作成", "update": "変更", "delete": "削除", "attach": "メニューに追加",
                 "detach": "メニューから削除", "reorder": "並び替え", "permission": "権限変更",
                 "login": "ログイン", "login_failed": "ログイン失敗", "end_sessions": "全セッション終了",
                 "connection_test": "接続テスト"}


class AuditEntry(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    target_type: Mapped[str] = mapped_column(String(40), nullable=False)
    target_id: Mapped[int | None] = mapped_column(Integer)
    target_label: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    # {label: [before, after]}
    changes: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)

    # Resolved by name on the shared registry: core imports no feature module.
    user: Mapped[User | None] = relationship("User")  # noqa: F821

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


def diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """Labels whose displayed value changed, as {label: [before, after]}."""
    labels = list(before) + [k for k in after if k not in before]
    return {k: [before.get(k, ""), after.get(k, "")] for k in labels if before.get(k, "") != after.get(k, "")}


def audit(action: str, target_type: str, target_id: int | None, target_label: str, changes: dict | None = None,
          user_id: int | None = None) -> AuditEntry:
    if user_id is None and current_user and current_user.is_authenticated:
        user_id = current_user.id
    entry = AuditEntry(action=action, target_type=target_type, target_id=target_id, target_label=target_label[:200],
                       changes=changes or {}, user_id=user_id)
    db.session.add(entry)
    return entry
