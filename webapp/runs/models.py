"""Runs of an integration (システム連携状況確認): the run, its API calls and the records it sends.

A run freezes its records when created (RunRecord rows). Each API call (RunCall) persists its state before and
after the POST, so a retried or resumed job never re-POSTs an accepted import, and a POST whose outcome is
unknown is marked 要確認 instead of being resent blindly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..core.clock import utcnow
from ..core.dbtypes import JSONType
from ..databases.models import Menu
from ..extensions import db
from ..integrations.models import DATA_KIND_LABELS, DataKind, IntegrationSetting


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial"
    ERROR = "error"
    NEEDS_CHECK = "needs_check"
    INTERRUPTED = "interrupted"


RUN_STATUS_LABELS = {
    RunStatus.QUEUED: "待機中",
    RunStatus.RUNNING: "実行中",
    RunStatus.COMPLETED: "完了",
    RunStatus.PARTIAL: "一部エラー",
    RunStatus.ERROR: "エラー",
    RunStatus.NEEDS_CHECK: "要確認",
    RunStatus.INTERRUPTED: "中断",
}
# The run dialog's heading follows the run to its end.
RUN_STATUS_HEADINGS = {
    RunStatus.QUEUED: "実行を受け付けました",
    RunStatus.RUNNING: "実行中です",
    RunStatus.COMPLETED: "実行が完了しました",
    RunStatus.PARTIAL: "実行が終わりました(一部エラー)",
    RunStatus.ERROR: "エラーで終了しました",
    RunStatus.NEEDS_CHECK: "実行が終わりました(要確認)",
    RunStatus.INTERRUPTED: "実行が中断しました",
}
ACTIVE_STATUSES = {RunStatus.QUEUED, RunStatus.RUNNING}
FINAL_STATUSES = set(RunStatus) - ACTIVE_STATUSES


class CallStatus(StrEnum):
    PLANNED = "planned"  # file built, not sent yet
    POSTING = "posting"  # persisted just before the POST: found in this state later = outcome unknown
    ACCEPTED = "accepted"  # 楽楽明細 answered with an importId
    COMPLETE = "complete"  # import finished without row errors
    ROW_ERRORS = "row_errors"  # import finished, some rows refused
    FAILED = "failed"  # refused or not sent (nothing was imported)
    NEEDS_CHECK = "needs_check"  # the POST may or may not have been accepted


CALL_STATUS_LABELS = {
    CallStatus.PLANNED: "未送信",
    CallStatus.POSTING: "送信中",
    CallStatus.ACCEPTED: "取込中",
    CallStatus.COMPLETE: "完了",
    CallStatus.ROW_ERRORS: "一部エラー",
    CallStatus.FAILED: "エラー",
    CallStatus.NEEDS_CHECK: "要確認",
}


class RecordStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # in a call that was posted
    OK = "ok"
    ROW_ERROR = "row_error"  # 楽楽明細 refused its row
    INVALID = "invalid"  # not sent: cannot be encoded, no 顧客コード, too large …
    NOT_SENT = "not_sent"  # its call failed before 楽楽明細 accepted it
    UNKNOWN = "unknown"  # its call needs checking


RECORD_STATUS_LABELS = {
    RecordStatus.PENDING: "未処理",
    RecordStatus.SENDING: "送信中",
    RecordStatus.OK: "成功",
    RecordStatus.ROW_ERROR: "取込エラー",
    RecordStatus.INVALID: "送信対象外",
    RecordStatus.NOT_SENT: "未送信",
    RecordStatus.UNKNOWN: "要確認",
}
PROBLEM_STATUSES = (RecordStatus.SENDING, RecordStatus.ROW_ERROR, RecordStatus.INVALID, RecordStatus.NOT_SENT,
                    RecordStatus.UNKNOWN)

# timer_now: タイマー設定's 「今すぐ実行」, run by the person who pressed it.
TRIGGER_LABELS = {"manual": "手動", "timer": "タイマー", "cli": "コマンド", "rerun": "再実行", "timer_now": "今すぐ実行"}


class Run(db.Model):
    __tablename__ = "runs"
    __table_args__ = (
        # Holds "setting:menu" while the run is queued or running: a second 実行 cannot slip in, even from
        # two requests at the same moment (NULLs do not collide).
        UniqueConstraint("active_key", name="uq_runs_active_key"),
        Index("ix_runs_menu_id_id", "menu_id", "id"),
        Index("ix_runs_setting_id_id", "setting_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    setting_id: Mapped[int] = mapped_column(ForeignKey("integration_settings.id"), nullable=False)
    menu_id: Mapped[int | None] = mapped_column(ForeignKey("menus.id", ondelete="SET NULL"))
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"), nullable=False)
    trigger: Mapped[str] = mapped_column(String(10), nullable=False, default="manual")
    executor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    memo: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    keyword: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    publication_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rerun_of_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # Field ids of the CSV columns, frozen at creation (the menu's columns in order).
    column_field_ids: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    # The setting as it was when the run was created (parameters sent), for the detail page.
    setting_snapshot: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)

    status: Mapped[str] = mapped_column(String(20), nullable=False, default=RunStatus.QUEUED)
    active_key: Mapped[str | None] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress: Mapped[str] = mapped_column(String(200), nullable=False, default="")

    record_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ok_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    call_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    records_updated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    mail_done: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    setting: Mapped[IntegrationSetting] = relationship()
    menu: Mapped[Menu | None] = relationship()
    executor: Mapped[User | None] = relationship()
    calls: Mapped[list[RunCall]] = relationship(order_by="RunCall.index", cascade="all, delete-orphan",
                                                back_populates="run")

    @property
    def status_label(self) -> str:
        return RUN_STATUS_LABELS[RunStatus(self.status)]

    @property
    def status_heading(self) -> str:
        return RUN_STATUS_HEADINGS[RunStatus(self.status)]

    @property
    def sends_csv(self) -> bool:
        """帳票データ(PDF) sends the ZIP alone: its run has no CSV lines to report. Read from the setting as it
        was when the run was created (it may have been changed since)."""
        kind_label = (self.setting_snapshot or {}).get("連携データ")
        if kind_label:
            return kind_label != DATA_KIND_LABELS[DataKind.REPORT_PDF]
        return self.setting.kind != DataKind.REPORT_PDF

    @property
    def pdf_count(self) -> int:
        """PDFs sent or to be sent, over all calls (the ZIPs' members)."""
        return sum(f.get("pdf_count", 0) for call in self.calls for f in call.files)

    @property
    def executor_label(self) -> str:
        if self.trigger == "timer":
            return "タイマー"
        if self.executor is None:
            return "コマンド" if self.trigger == "cli" else "(削除されたユーザ)"
        return self.executor.label

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class RunCall(db.Model):
    __tablename__ = "run_calls"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_run_calls_run_id_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    index: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=CallStatus.PLANNED)
    # Files under FILES_DIR: [{"part": "files[0]", "name", "path", "size", "content_type"}]
    files: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    record_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # CSV data line number (1-based, header excluded) -> record id, to tie row errors to records.
    line_records: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    params: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    import_id: Mapped[int | None] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    exchanges: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    state_history: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    row_errors: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    error_code: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    error_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    run: Mapped[Run] = relationship(back_populates="calls")

    @property
    def status_label(self) -> str:
        return CALL_STATUS_LABELS[CallStatus(self.status)]

    @property
    def pdf_count(self) -> int:
        return sum(f.get("pdf_count", 0) for f in self.files)


class RunRecord(db.Model):
    """One record frozen into a run, with what happened to it."""

    __tablename__ = "run_records"
    __table_args__ = (
        UniqueConstraint("run_id", "record_id", name="uq_run_records_run_id_record_id"),
        Index("ix_run_records_run_id_position", "run_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    # No foreign key: a record deleted after the run keeps its history line.
    record_id: Mapped[int] = mapped_column(Integer, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    call_index: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=RecordStatus.PENDING)
    message: Mapped[str] = mapped_column(String(500), nullable=False, default="")


class SentCustomerCode(db.Model):
    """A 顧客コード that a successful 顧客データ run of this installation registered in one 楽楽明細 (base URL).

    楽楽明細 ties each 帳票 to its customer by this code: the preview of a 帳票 integration warns about records whose
    code was never sent to its 楽楽明細 (ledger.py). One row per URL and code, from the first run that sent it.
    """

    __tablename__ = "sent_customer_codes"
    __table_args__ = (UniqueConstraint("base_url", "code", name="uq_sent_customer_codes_base_url_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_url: Mapped[str] = mapped_column(String(500), nullable=False)
    code: Mapped[str] = mapped_column(String(200), nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
