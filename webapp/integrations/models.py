"""楽楽明細連携設定 and their attachment to レコード一覧 menus."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..core.clock import utcnow
from ..databases.models import Database, Field, Menu
from ..extensions import db


class DataKind(StrEnum):
    CUSTOMER = "customer"
    REPORT_CSV = "report_csv"
    REPORT_PDF = "report_pdf"
    REPORT_PDF_CSV = "report_pdf_csv"


DATA_KIND_LABELS = {
    DataKind.CUSTOMER: "顧客データ",
    DataKind.REPORT_CSV: "帳票データ(CSV)",
    DataKind.REPORT_PDF: "帳票データ(PDF)",
    DataKind.REPORT_PDF_CSV: "帳票データ(PDF+CSV)",
}
REPORT_KINDS = {DataKind.REPORT_CSV, DataKind.REPORT_PDF, DataKind.REPORT_PDF_CSV}
PDF_KINDS = {DataKind.REPORT_PDF, DataKind.REPORT_PDF_CSV}

IMPORT_NEW = "new"
IMPORT_REPLACE = "replace"
IMPORT_METHOD_LABELS = {IMPORT_NEW: "新規発行", IMPORT_REPLACE: "差替"}
ISSUE_IMMEDIATE = "immediate"
ISSUE_SCHEDULED = "scheduled"
ISSUE_METHOD_LABELS = {ISSUE_IMMEDIATE: "即時発行", ISSUE_SCHEDULED: "予約発行"}
MAIL_TO_EXECUTOR = "executor"
MAIL_TO_ADMINS = "admins"
MAIL_TO_LABELS = {MAIL_TO_EXECUTOR: "実行者", MAIL_TO_ADMINS: "管理者"}
# The value of a 日時 レコード更新 row that means "the run's time".
RUN_TIME = "__run_time__"
RECORD_UPDATE_MAX = 3


class IntegrationSetting(db.Model):
    __tablename__ = "integration_settings"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    base_url: Mapped[str] = mapped_column(String(500), nullable=False)
    token_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    # scheme://host:port the token was entered for (meisai.client.origin_of): it is only ever sent there.
    token_origin: Mapped[str | None] = mapped_column(String(300))
    data_kind: Mapped[str] = mapped_column(String(20), nullable=False)

    report_mail: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    report_mail_to: Mapped[str | None] = mapped_column(String(10))
    report_mail_errors_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    # 顧客データ
    import_setting_id: Mapped[int | None] = mapped_column(Integer)
    overwrite_in_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    overwrite_blank: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    # 帳票データ
    report_type_id: Mapped[int | None] = mapped_column(Integer)
    import_method: Mapped[str | None] = mapped_column(String(10))
    skip_approval: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    issue_method: Mapped[str | None] = mapped_column(String(10))
    replace_notify_mail: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    replace_postal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    replace_fax: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    approval_flow_id: Mapped[int | None] = mapped_column(Integer)
    pdf_field_id: Mapped[int | None] = mapped_column(ForeignKey("fields.id", ondelete="SET NULL"))

    # Kept (hidden) when runs refer to it, so the history stays readable.
    is_deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    database: Mapped[Database] = relationship()
    pdf_field: Mapped[Field | None] = relationship()
    updated_by: Mapped[User | None] = relationship()
    record_updates: Mapped[list[RecordUpdateRule]] = relationship(
        order_by="RecordUpdateRule.position", cascade="all, delete-orphan"
    )

    @property
    def kind(self) -> DataKind:
        return DataKind(self.data_kind)

    @property
    def kind_label(self) -> str:
        return DATA_KIND_LABELS[self.kind]


class RecordUpdateRule(db.Model):
    """レコード更新: after a successful run, set `field` of the sent records to `value`."""

    __tablename__ = "integration_record_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    setting_id: Mapped[int] = mapped_column(ForeignKey("integration_settings.id", ondelete="CASCADE"), nullable=False)
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"), nullable=False)
    # Text, an option, "YYYY-MM-DD HH:MM", or RUN_TIME.
    value: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    field: Mapped[Field] = relationship(lazy="joined")


class MenuIntegration(db.Model):
    """An integration attached to a レコード一覧 menu: it appears in that menu's サブメニュー."""

    __tablename__ = "menu_integrations"
    __table_args__ = (UniqueConstraint("menu_id", "setting_id", name="uq_menu_integrations_menu_id_setting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    menu_id: Mapped[int] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"), nullable=False)
    setting_id: Mapped[int] = mapped_column(ForeignKey("integration_settings.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    menu: Mapped[Menu] = relationship()
    setting: Mapped[IntegrationSetting] = relationship(lazy="joined")
