"""Starting, previewing, resuming and watching runs (called by views, the CLI, timers and jobs)."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError

from ..core.clock import as_utc, local_tz, utcnow
from ..core.errors import DomainError
from ..core.files import files_root
from ..core.text import control_character_problem
from ..databases.models import Field, Menu, Record
from ..databases.query import Page, menu_records_statement, order_clauses
from ..extensions import db
from ..integrations.models import (
    ISSUE_SCHEDULED,
    PDF_KINDS,
    REPORT_KINDS,
    DataKind,
    IntegrationSetting,
    MenuIntegration,
)
from ..integrations.operations import snapshot
from ..meisai import contract
from . import export, ledger
from .models import (
    ACTIVE_STATUSES,
    PROBLEM_STATUSES,
    CallStatus,
    RecordStatus,
    Run,
    RunCall,
    RunRecord,
    RunStatus,
)

log = logging.getLogger(__name__)

PREVIEW_LINES = 20
MEMO_MAX = 200


class RunError(DomainError):
    """A run that cannot start; the message is Japanese and shown as is."""


def check_text(label: str, text: str) -> None:
    """The run dialog's own inputs (メモ, the list's search words) follow the rule of every single-line input."""
    problem = control_character_problem(text)
    if problem:
        raise RunError(f"{label}: {problem}")


def needs_publication_date(setting: IntegrationSetting) -> bool:
    """予約発行日時 is asked in the run dialog only when 承認スキップ + 予約発行."""
    return setting.kind.value != "customer" and setting.skip_approval and setting.issue_method == ISSUE_SCHEDULED


def parse_publication_date(setting: IntegrationSetting, text: str | None, now: datetime | None = None) -> datetime | None:
    """The 予約発行日時 typed in the dialog (local time), as an aware UTC datetime; None when not asked."""
    if not needs_publication_date(setting):
        return None
    text = (text or "").strip().replace("T", " ").replace("/", "-")
    if not text:
        raise RunError("予約発行日時を入力してください。")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            local = datetime.strptime(text, fmt).replace(tzinfo=local_tz())
            break
        except ValueError:
            continue
    else:
        raise RunError("予約発行日時は YYYY-MM-DD HH:MM の形式で入力してください。")
    if local.astimezone(UTC) <= (now or utcnow()):
        raise RunError("予約発行日時には未来の日時を入力してください。")
    return local.astimezone(UTC)


def run_columns(setting: IntegrationSetting, menu: Menu | None) -> list[Field]:
    """CSV columns: the menu's columns in order; without a menu (timer), every field of the DB."""
    if menu is not None:
        return menu.column_fields
    return list(setting.database.fields)


def check_columns(columns: list[Field], setting: IntegrationSetting) -> None:
    if setting.kind == DataKind.REPORT_PDF:
        # The ZIP alone is sent: the PDFs' names carry the 顧客コード, read from the DB's field of that name.
        if export.named_field(list(setting.database.fields), [contract.CUSTOMER_CODE]) is None:
            raise RunError("このDBに「顧客コード」の項目がないため、PDFを顧客に紐付けられません。")
        return
    if not columns:
        raise RunError("送信する項目がありません。メニュー設定で表示項目を追加してください。")
    if export.customer_code_index(columns) is None:
        raise RunError("メニューの表示項目に「顧客コード」がありません。楽楽明細はレコードを顧客コードで識別するため、"
                       "メニュー設定で「顧客コード」の項目を表示項目に追加してください。")


def _selected_records(setting: IntegrationSetting, menu: Menu | None, keyword: str = ""):
    """(records statement, its order): what the user sees in the menu (filters + search) in the menu's order;
    all records of the DB by id without a menu."""
    if menu is None:
        return select(Record).where(Record.database_id == setting.database_id), [Record.id.asc()]
    return menu_records_statement(menu, keyword), order_clauses(menu)


def selected_record_ids(setting: IntegrationSetting, menu: Menu | None, keyword: str = "") -> list[int]:
    statement, order = _selected_records(setting, menu, keyword)
    return list(db.session.execute(statement.with_only_columns(Record.id).order_by(*order)).scalars())


def _freeze_records(run: Run, setting: IntegrationSetting, menu: Menu | None, keyword: str,
                    record_ids: list[int] | None) -> int:
    """The run's records (RunRecord rows, in order) as they are now; returns how many.

    From a menu the database numbers and copies them in one INSERT … SELECT: 100,000 records take ~0.3 s there,
    where passing them through Python took 2 s of the web process's CPU at the click of 実行."""
    columns = ["run_id", "record_id", "position", "status"]
    if record_ids is not None:
        if record_ids:
            db.session.execute(insert(RunRecord), [
                {"run_id": run.id, "record_id": record_id, "position": position, "status": RecordStatus.PENDING}
                for position, record_id in enumerate(record_ids)
            ])
        return len(record_ids)
    statement, order = _selected_records(setting, menu, keyword)
    numbered = statement.with_only_columns(
        literal(run.id), Record.id, func.row_number().over(order_by=order) - 1,
        literal(RecordStatus.PENDING.value, type_=RunRecord.status.type),
    )
    db.session.execute(insert(RunRecord).from_select(columns, numbered))
    # Counted, not read from rowcount: psycopg reports -1 for an INSERT … SELECT with bound parameters.
    return db.session.execute(select(func.count()).where(RunRecord.run_id == run.id)).scalar_one()


def check_attached(setting: IntegrationSetting, menu: Menu) -> None:
    attached = db.session.execute(
        select(func.count()).select_from(MenuIntegration)
        .where(MenuIntegration.menu_id == menu.id, MenuIntegration.setting_id == setting.id)
    ).scalar_one()
    if not attached or setting.is_deleted:
        raise RunError("この連携はこのメニューに設定されていません。")


def start_run(
    setting: IntegrationSetting,
    menu: Menu | None,
    *,
    executor_id: int | None,
    memo: str = "",
    keyword: str = "",
    publication_date: datetime | None = None,
    trigger: str = "manual",
    record_ids: list[int] | None = None,
    rerun_of: Run | None = None,
    enqueue: bool = True,
) -> Run:
    """Freeze the records and columns into a new run and queue its job; refuses a second active run."""
    memo = (memo or "").strip()
    if len(memo) > MEMO_MAX:
        raise RunError(f"メモは{MEMO_MAX}文字以内で入力してください。")
    check_text("メモ", memo)
    check_text("検索キーワード", keyword or "")
    if menu is not None and menu.database_id != setting.database_id:
        raise RunError("このメニューは連携設定と別のDBのものです。")
    # From a record list, only the integrations in its サブメニュー run; a timer (also run now) may use any menu of
    # its DB.
    if menu is not None and trigger not in ("rerun", "timer", "timer_now"):
        check_attached(setting, menu)
    if needs_publication_date(setting) and publication_date is None:
        raise RunError("予約発行日時を入力してください。")
    columns = run_columns(setting, menu)
    check_columns(columns, setting)
    run = Run(
        setting_id=setting.id, menu_id=menu.id if menu else None, database_id=setting.database_id, trigger=trigger,
        executor_id=executor_id, memo=memo, keyword=keyword, publication_date=publication_date,
        rerun_of_id=rerun_of.id if rerun_of else None, column_field_ids=[f.id for f in columns],
        setting_snapshot=snapshot(setting), status=RunStatus.QUEUED, active_key=active_key(setting, menu),
        record_count=0, progress="実行待ちです。",
    )
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise RunError("この連携は実行待ちまたは実行中です。終わってから実行してください(二重送信を防ぐため)。") from None
    run.record_count = _freeze_records(run, setting, menu, keyword, record_ids)
    if not run.record_count:
        db.session.rollback()
        raise RunError("送信するレコードがありません。絞り込み条件や検索キーワードを確認してください。")
    db.session.commit()
    if run.record_count >= 10_000 and db.session.get_bind().dialect.name == "postgresql":
        # The job updates these rows 500 ids at a time; without fresh statistics PostgreSQL reads every row of
        # the run for each of those UPDATEs (100,000 records: 6-17 s instead of ~1 s).
        db.session.execute(text("ANALYZE run_records"))
        db.session.commit()
    if enqueue:
        enqueue_run(run)
    return run


def active_key(setting: IntegrationSetting, menu: Menu | None) -> str:
    return f"{setting.id}:{menu.id if menu else 'all'}"


def redis_connection() -> Redis:
    return Redis.from_url(current_app.config["REDIS_URL"])


def job_id_of(run: Run) -> str:
    # The queue name keeps two installations (or test sessions) sharing one Redis from taking each other's ids;
    # RQ allows only letters, digits, "_" and "-" in an id.
    queue = re.sub(r"[^A-Za-z0-9_-]", "_", current_app.config["RQ_QUEUE"])
    return f"{queue}-run-{run.id}"


def enqueue_run(run: Run, depends_on=None) -> bool:
    """Queue the run's job (after `depends_on`, an RQ Dependency, when given); False when Redis refused it,
    in which case the run ends with a clear error and nothing is sent."""
    try:
        queue = Queue(current_app.config["RQ_QUEUE"], connection=redis_connection())
        # No RQ retry: a run resumes through its own persisted state, never by re-running blindly.
        queue.enqueue("webapp.runs.tasks.execute_run", run.id, job_id=job_id_of(run), depends_on=depends_on,
                      job_timeout=6 * 3600, result_ttl=86400, failure_ttl=7 * 86400)
    except RedisError:
        log.exception("run %s could not be queued", run.id)
        finish_without_sending(run, "バックグラウンド処理(Redis)に接続できないため実行できませんでした。何も送信していません。"
                                    "管理者に連絡してください。")
        return False
    run.job_id = job_id_of(run)
    db.session.commit()
    return True


def finish_without_sending(run: Run, message: str) -> None:
    run.status = RunStatus.ERROR
    run.error_message = message
    run.active_key = None
    run.finished_at = utcnow()
    run.progress = ""
    db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id).values(status=RecordStatus.NOT_SENT))
    run.error_count = run.record_count
    db.session.commit()


def resume_run(run: Run) -> Run:
    """再実行 of an interrupted run: the same run continues; accepted calls are never posted again."""
    if run.status != RunStatus.INTERRUPTED:
        raise RunError("中断された実行だけを再開できます。")
    setting = db.session.get(IntegrationSetting, run.setting_id)
    run.active_key = active_key(setting, run.menu)
    run.status = RunStatus.QUEUED
    run.finished_at = None
    run.error_message = ""
    run.progress = "再実行待ちです(送信済みの分は送りません)。"
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise RunError("この連携は別の実行が実行待ちまたは実行中です。終わってから再実行してください。") from None
    enqueue_run(run)
    return run


def rerun_failed(run: Run, executor_id: int | None) -> Run:
    """再実行 after errors: a new run with only the records that did not succeed (never the 要確認 ones)."""
    if run.status in ACTIVE_STATUSES:
        raise RunError("実行中の連携は再実行できません。")
    if run.status == RunStatus.INTERRUPTED:
        return resume_run(run)
    retry_statuses = [RecordStatus.ROW_ERROR, RecordStatus.INVALID, RecordStatus.NOT_SENT, RecordStatus.PENDING]
    ids = list(db.session.execute(
        select(RunRecord.record_id).where(RunRecord.run_id == run.id, RunRecord.status.in_(retry_statuses))
        .order_by(RunRecord.position)
    ).scalars())
    if not ids:
        raise RunError("再送信が必要なレコードはありません。")
    setting = db.session.get(IntegrationSetting, run.setting_id)
    if setting is None or setting.is_deleted:
        raise RunError("この連携設定は削除されています。")
    publication_date = as_utc(run.publication_date)
    if publication_date is not None and as_utc(publication_date) <= utcnow():
        raise RunError("予約発行日時が過ぎています。一覧から新しく実行してください。")
    return start_run(setting, run.menu, executor_id=executor_id, memo=run.memo, keyword=run.keyword,
                     publication_date=publication_date, trigger="rerun", record_ids=ids, rerun_of=run)


# ---- interrupted runs ------------------------------------------------------------------------------------


def _job_state(run: Run) -> str | None:
    try:
        job = Job.fetch(run.job_id or job_id_of(run), connection=redis_connection())
        return job.get_status(refresh=True)
    except NoSuchJobError:
        return None
    except RedisError:
        return "unknown"


LOST_JOB_STATES = {None, "failed", "stopped", "canceled"}


def recover_runs(now: datetime | None = None) -> list[int]:
    """Find runs whose worker died or whose job was lost; returns the ids it changed.

    A running run silent for RUN_STALE_SECONDS is marked 中断 (the user can 再実行 it): the job beats at every
    HTTP attempt, poll and batch. A queued run whose job vanished from Redis (Redis restarted) is queued again:
    nothing of it was sent yet.
    """
    now = now or utcnow()
    stale = now - timedelta(seconds=current_app.config["RUN_STALE_SECONDS"])
    enqueued_by = now - timedelta(seconds=current_app.config["RUN_ENQUEUE_GRACE_SECONDS"])
    changed = []
    active = db.session.execute(select(Run).where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))).scalars().all()
    for run in active:
        if run.status == RunStatus.QUEUED:
            # A run is committed a moment before its job is enqueued: give that moment before calling it lost.
            # A job that is gone, or that failed before claiming the run, sent nothing: queue it again.
            if as_utc(run.created_at) < enqueued_by and _job_state(run) in LOST_JOB_STATES:
                log.warning("run %s: job missing or failed before starting, queueing it again", run.id)
                enqueue_run(run)
                changed.append(run.id)
        # The heartbeat, not RQ's registry, decides: a SIGKILLed worker leaves its job "started" for minutes.
        elif as_utc(run.heartbeat_at or run.started_at or run.created_at) < stale:
            mark_interrupted(run)
            changed.append(run.id)
    return changed


def mark_interrupted(run: Run) -> None:
    run.status = RunStatus.INTERRUPTED
    run.active_key = None
    run.finished_at = utcnow()
    run.progress = ""
    run.error_message = ("処理が途中で止まりました(ワーカーが停止した可能性があります)。「再実行」で未送信の分だけを送信できます。"
                         "送信済みの分は送り直しません。")
    db.session.commit()


# ---- the records' errors, listed once ----------------------------------------------------------------------

PROBLEMS_PER_PAGE = 50


@dataclass
class RecordProblems:
    """One page of the records that failed for reasons of their own, and how many failed with their call."""

    page: Page  # of RunRecord
    rows: dict[int, int]  # record id -> the row 楽楽明細 named (row errors)
    with_call: list[tuple[int | None, str, int]]  # (call index, record status, count): the reason is the call's


def record_problems(run: Run, page: int = 1) -> RecordProblems:
    """The run's failed records, each with its own reason, PROBLEMS_PER_PAGE at a time; records whose call was
    refused as a whole carry no reason of their own (it is said once, on the call) and are only counted."""
    own = (RunRecord.run_id == run.id, RunRecord.status.in_(PROBLEM_STATUSES), RunRecord.message != "")
    total = db.session.execute(select(func.count()).where(*own)).scalar_one()
    pages = max(1, -(-total // PROBLEMS_PER_PAGE))
    page = min(max(1, page), pages)
    records = list(db.session.execute(
        select(RunRecord).where(*own).order_by(RunRecord.position)
        .limit(PROBLEMS_PER_PAGE).offset((page - 1) * PROBLEMS_PER_PAGE)
    ).scalars())
    wanted = {r.record_id for r in records if r.status == RecordStatus.ROW_ERROR}
    rows: dict[int, int] = {}
    for call in run.calls if wanted else []:
        for error in call.row_errors:
            if error.get("record_id") in wanted and error.get("row") is not None:
                rows.setdefault(error["record_id"], error["row"])
    with_call = [tuple(row) for row in db.session.execute(
        select(RunRecord.call_index, RunRecord.status, func.count())
        .where(RunRecord.run_id == run.id, RunRecord.status.in_(PROBLEM_STATUSES), RunRecord.message == "")
        .group_by(RunRecord.call_index, RunRecord.status).order_by(RunRecord.call_index)
    ).all()]
    return RecordProblems(Page(records, total, page, PROBLEMS_PER_PAGE), rows, with_call)


# ---- preview ---------------------------------------------------------------------------------------------


@dataclass
class ColumnChange:
    """The menu's CSV columns against those of this setting's last successful call (楽楽明細's import format
    matched those)."""

    run_id: int
    sent_at: datetime | None
    before: list[str]
    now: list[str]

    @property
    def added(self) -> list[str]:
        return [name for name in self.now if name not in self.before]

    @property
    def removed(self) -> list[str]:
        return [name for name in self.before if name not in self.now]

    @property
    def reordered(self) -> bool:
        return bool(self.moved)

    @property
    def moved(self) -> list[tuple[str, int, int]]:
        """(name, column number before, now) of the columns whose order among the kept ones changed."""
        kept_now = [n for n in self.now if n in self.before]
        kept_before = [n for n in self.before if n in self.now]
        return [(name, self.before.index(name) + 1, self.now.index(name) + 1)
                for name in kept_now if kept_now.index(name) != kept_before.index(name)]


@dataclass
class Preview:
    header: str
    lines: list[str]
    record_count: int
    row_count: int
    byte_size: int
    call_count: int
    problems: list[tuple[int, str]] = field(default_factory=list)  # (record id, message)
    error: str = ""
    pdf_count: int = 0
    pdf_names: list[str] = field(default_factory=list)
    column_change: ColumnChange | None = None
    # 帳票: records to send whose 顧客コード no successful 顧客データ run sent to this 楽楽明細 (and the first codes).
    unknown_customer_records: int = 0
    unknown_customer_codes: list[str] = field(default_factory=list)


UNKNOWN_CODES_SHOWN = 10


def last_sent_columns(setting: IntegrationSetting) -> tuple[RunCall, list[str]] | None:
    """The CSV header of this setting's last call that 楽楽明細 imported (all or some of its rows)."""
    calls = db.session.execute(
        select(RunCall).join(Run, Run.id == RunCall.run_id)
        .where(Run.setting_id == setting.id, RunCall.status.in_([CallStatus.COMPLETE, CallStatus.ROW_ERRORS]))
        .order_by(RunCall.id.desc()).limit(5)
    ).scalars()
    for call in calls:
        csv_file = next((f for f in call.files if f["content_type"] == contract.CSV_CONTENT_TYPE), None)
        if csv_file is None:
            continue
        if "columns" in csv_file:
            return call, list(csv_file["columns"])
        # Calls made before the header was kept with the file: read it from the file as sent.
        path = files_root() / csv_file["path"]
        if path.is_file():
            with open(path, encoding=contract.CSV_ENCODING, newline="") as handle:
                return call, next(csv.reader(handle), [])
    return None


def column_change(setting: IntegrationSetting, columns: list[Field]) -> ColumnChange | None:
    """How the columns to send differ from the last successful call's; None when they do not (or no call)."""
    if setting.kind == DataKind.REPORT_PDF:
        return None
    last = last_sent_columns(setting)
    now = export.header_names(columns)
    if last is None or last[1] == now:
        return None
    call, before = last
    return ColumnChange(call.run_id, call.posted_at, before, now)


def preview_run(setting: IntegrationSetting, menu: Menu, keyword: str = "") -> Preview:
    """Exactly what 実行 would send now, without sending anything (same code path as the job).

    In the PDF modes the PDFs are made when the run executes; the preview shows their file names and the
    records that cannot get one.
    """
    columns = run_columns(setting, menu)
    try:
        check_text("検索キーワード", keyword)
        check_columns(columns, setting)
    except RunError as exc:
        return Preview("", [], 0, 0, 0, 0, error=str(exc))
    with_csv = setting.kind != DataKind.REPORT_PDF
    with_pdf = setting.kind in PDF_KINDS
    ids = selected_record_ids(setting, menu, keyword)
    plain = export.plain_columns(columns)
    header = export.header_bytes(columns) if with_csv else b""
    code_index = export.customer_code_index(columns)
    fields = list(setting.database.fields)
    code_field = export.named_field(fields, [contract.CUSTOMER_CODE])
    number_field = export.named_field(fields, export.DOCUMENT_NO_FIELD_NAMES)
    seen: set[str] = set()
    # 帳票 only: each record's 顧客コード as sent (the CSV column, or the DB's field for the PDFs' names).
    code_column = (plain[code_index] if code_index is not None else code_field) if setting.kind in REPORT_KINDS else None
    codes: dict[int, str] = {}

    def lines_iter():
        for record in export.stream_records(ids):
            item = export.record_lines(record, plain, code_index) if with_csv else export.RecordLines(record.id, rows=1)
            if with_pdf and not item.problem:
                item.pdf_name, item.problem = export.pdf_member(record, code_field, number_field)
                if item.pdf_name in seen:
                    item.problem = f"同じファイル名({item.pdf_name})のPDFが他のレコードにもあります。帳票Noを確認してください。"
                seen.add(item.pdf_name)
            if code_column is not None and not item.problem:
                codes[record.id] = export.cell_text(record, code_column)
            yield item

    preview = Preview(header.decode(contract.CSV_ENCODING).rstrip("\r\n"), [], len(ids), 0, 0, 0)
    preview.column_change = column_change(setting, columns)
    for item in export.pack(lines_iter(), header):
        if isinstance(item, export.RecordLines):
            preview.problems.append((item.record_id, item.problem))
            codes.pop(item.record_id, None)
            continue
        preview.call_count += 1
        preview.row_count += item.rows if with_csv else 0
        preview.byte_size += item.size
        preview.pdf_count += len(item.pdfs)
        preview.pdf_names.extend(name for name, _ in item.pdfs[: PREVIEW_LINES - len(preview.pdf_names)])
        for part in item.parts[1:]:
            if len(preview.lines) >= PREVIEW_LINES:
                break
            preview.lines.extend(part.decode(contract.CSV_ENCODING).splitlines()[: PREVIEW_LINES - len(preview.lines)])
    if codes:
        unknown = ledger.never_sent(setting.base_url, codes.values())
        ordered = [code for code in codes.values() if code in unknown]
        preview.unknown_customer_records = len(ordered)
        preview.unknown_customer_codes = list(dict.fromkeys(ordered))[:UNKNOWN_CODES_SHOWN]
    return preview
