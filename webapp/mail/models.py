from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.clock import utcnow
from ..core.dbtypes import JSONType
from ..extensions import db

MAIL_STATUS_LABELS = {"pending": "送信待ち", "sent": "送信済み", "failed": "送信失敗", "stored": "保存のみ(SMTP未設定)"}


class OutboxMail(db.Model):
    """A mail the product sent or meant to send; administrators read it even without SMTP."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    recipients: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(String(500), nullable=False, default="")

    @property
    def status_label(self) -> str:
        return MAIL_STATUS_LABELS.get(self.status, self.status)
