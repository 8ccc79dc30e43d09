"""The run job: build the files, POST each call, poll its import, then レコード更新 and レポートメール.

Every step is persisted before the next one starts, so the job can be run again for the same run at any time:
files are built once, a call is POSTed only from 未送信 (PLANNED), an accepted call is only polled, and a call
found 送信中 (POSTING) — its worker died during the POST — becomes 要確認 instead of being resent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from flask import current_app
from sqlalchemy import select, update

from ..auth.models import User
from ..core.clock import as_utc, to_local, utcnow
from ..core.crypto import TokenUnreadable
from ..core.files import files_root
from ..databases.models import Field, Record
from ..databases.operations import build_search_text
from ..databases.record_counts import records_of
from ..extensions import db
from ..integrations.models import (
    IMPORT_REPLACE,
    MAIL_TO_ADMINS,
    PDF_KINDS,
    RUN_TIME,
    DataKind,
    IntegrationSetting,
)
from ..integrations.operations import TokenOriginChanged, client_for, token_of
from ..meisai import contract
from ..meisai.client import (
    CustomerImportParams,
    ExchangeLog,
    ImportKind,
    MeisaiClient,
    ReportImportParams,
    RetryPolicy,
    Upload,
)
from ..meisai.errors import (
    MeisaiAuthError,
    MeisaiConfigError,
    MeisaiError,
    MeisaiFileError,
    MeisaiImportTimeout,
    MeisaiLimitError,
    MeisaiNotFound,
    MeisaiParamError,
)
from . import export
from .ledger import record_sent_codes
from .models import CallStatus, RecordStatus, Run, RunCall, RunRecord, RunStatus
from .outcome import STOPPED_NOTE, explain_refusal, run_summary, whole_file_rejection

log = logging.getLogger(__name__)

# These refusals would repeat for every call of the run: stop instead of sending the rest (a redirect or an
# internal address is a MeisaiConfigError).
STOPPING_ERRORS = (MeisaiAuthError, MeisaiParamError, MeisaiNotFound, MeisaiFileError, MeisaiLimitError,
                   MeisaiConfigError)


class RunTakenOver(Exception):
    """Another worker resumed this run (this one was thought dead): leave everything to it."""


def execute_run(run_id: int) -> str:
    """Run (or resume) one run to its end. Safe to call again for the same run."""
    if not _claim(run_id):
        run = db.session.get(Run, run_id)
        return run.status if run else "missing"
    try:
        return _execute(db.session.get(Run, run_id))
    except RunTakenOver:
        log.warning("run %s: taken over by another worker; this one stops", run_id)
        db.session.rollback()
        return "taken_over"
    except Exception:
        log.exception("run %s: unexpected failure", run_id)
        db.session.rollback()
        _end_after_crash(db.session.get(Run, run_id))
        raise


def _end_after_crash(run: Run) -> None:
    """A bug must not leave a run 実行中 forever: unsent calls stay unsent, a call in flight needs checking."""
    for call in run.calls:
        if call.status == CallStatus.POSTING:
            _mark_unknown(call, "送信中にシステムエラーが発生したため、楽楽明細が受け付けたか分かりません。取込履歴を確認してください。")
    run.status = RunStatus.INTERRUPTED
    run.active_key = None
    run.finished_at = utcnow()
    run.progress = ""
    run.error_message = "システムエラーで処理が中断しました。管理者に連絡してください。「再実行」で未送信の分だけを送信できます。"
    db.session.commit()


def _execute(run: Run) -> str:
    setting = db.session.get(IntegrationSetting, run.setting_id)
    log.info("run %s: started (setting %s, %s records)", run.id, setting.id, run.record_count)
    try:
        token = token_of(setting)
    except TokenOriginChanged:
        _abort_unsent(run, "楽楽明細連携設定のURLの接続先が、APIトークンを入力したときと異なります。"
                           "楽楽明細連携設定でAPIトークンを入力し直してください。")
        return _finish(run, setting)
    except TokenUnreadable:
        _abort_unsent(run, "APIトークンを読み取れません(暗号化キーが変わった可能性があります)。楽楽明細連携設定でAPIトークンを再入力してください。")
        return _finish(run, setting)
    exchanges: list[ExchangeLog] = []

    def log_exchange(exchange: ExchangeLog) -> None:
        # Every attempt is a sign of life, also during long retry sequences.
        exchanges.append(exchange)
        _beat(run)

    config = current_app.config
    try:
        client = client_for(
            setting.base_url, token, log_exchange=log_exchange,
            retry=RetryPolicy(base_delay=config["RUN_RETRY_BASE_DELAY"], total_time=config["RUN_RETRY_TOTAL_SECONDS"]),
        )
    except MeisaiConfigError as exc:
        # E.g. an http:// URL saved in development, now run in production: nothing can be sent.
        _abort_unsent(run, exc.user_message)
        return _finish(run, setting)
    with client:
        if not run.calls:
            _plan(run, setting)
        stop_reason = ""
        for call in list(run.calls):
            if call.status == CallStatus.POSTING:
                _mark_unknown(call, "送信中に処理が止まったため、楽楽明細が受け付けたか分かりません。楽楽明細の取込履歴を確認してください"
                                    "(二重送信を防ぐため自動では再送しません)。")
            if call.status == CallStatus.PLANNED:
                if stop_reason:
                    _fail_call(call, STOPPED_NOTE, "", None)
                    continue
                stop_reason = _post(run, setting, client, call, exchanges)
            if call.status == CallStatus.ACCEPTED:
                _poll(run, setting, client, call, exchanges)
    return _finish(run, setting)


def _claim(run_id: int) -> bool:
    """Atomically take a queued run: two workers (or a retried job) never execute the same run at once."""
    now = utcnow()
    result = db.session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED)
        .values(status=RunStatus.RUNNING, heartbeat_at=now, progress="送信データを作成しています…")
    )
    db.session.commit()
    if result.rowcount != 1:
        return False
    run = db.session.get(Run, run_id)
    if run.started_at is None:
        run.started_at = now
        db.session.commit()
    return True


def _beat(run: Run, progress: str | None = None) -> None:
    run.heartbeat_at = utcnow()
    if progress is not None:
        run.progress = progress
    db.session.commit()


# ---- planning: the files of every call ---------------------------------------------------------------------


def _plan(run: Run, setting: IntegrationSetting) -> None:
    """Build every call's files once: CSV, ZIP of PDFs, or both, each within the limits."""
    fields_by_id = {f.id: f for f in db.session.execute(select(Field).where(Field.id.in_(run.column_field_ids))).scalars()}
    missing = [fid for fid in run.column_field_ids if fid not in fields_by_id]
    if missing:
        _abort_unsent(run, "送信する項目が実行後に削除されました。メニュー設定を確認して、もう一度実行してください。")
        return
    columns = export.plain_columns([fields_by_id[fid] for fid in run.column_field_ids])
    with_csv = setting.kind != DataKind.REPORT_PDF
    with_pdf = setting.kind in PDF_KINDS
    header = export.header_bytes(columns) if with_csv else b""
    code_index = export.customer_code_index(columns)
    ordered_ids = list(db.session.execute(
        select(RunRecord.record_id).where(RunRecord.run_id == run.id).order_by(RunRecord.position)
    ).scalars())
    pdfs = _prepare_pdfs(run, setting, ordered_ids) if with_pdf else {}
    present = set()
    lines = []

    def lines_of_records():
        for record in export.stream_records(ordered_ids):
            present.add(record.id)
            # PDF only: one "row" per PDF, so row errors still lead back to their record.
            item = export.record_lines(record, columns, code_index) if with_csv else export.RecordLines(record.id, rows=1)
            if with_pdf and not item.problem:
                entry = pdfs.get(record.id, "PDFを作成できませんでした。")
                if isinstance(entry, str):
                    item.problem = entry
                else:
                    item.pdf_name, item.pdf_path, item.pdf_size = entry
            yield item

    directory = files_root() / "runs" / str(run.id)
    directory.mkdir(parents=True, exist_ok=True)
    invalid: dict[int, str] = {}
    index = 0
    for item in export.pack(lines_of_records(), header):
        if isinstance(item, export.RecordLines):
            invalid[item.record_id] = item.problem
            continue
        index += 1
        files = []
        if with_pdf:
            files.append(_write_zip(directory / f"run{run.id:06d}_{index:03d}.zip", item.pdfs, row_base=1 if not with_csv else None))
        if with_csv:
            path = directory / f"run{run.id:06d}_{index:03d}.csv"
            with open(path, "wb") as fh:
                for part in item.parts:
                    fh.write(part)
            # Row errors count the header as row 1 (skipFirst=1).
            # The header as sent: the next preview compares the menu's columns with it.
            files.append({"name": path.name, "path": str(path.relative_to(files_root())), "size": item.size,
                          "content_type": contract.CSV_CONTENT_TYPE, "row_base": 2,
                          "columns": export.header_names(columns)})
        for number, info in enumerate(files):
            info["part"] = contract.FILE_PART.format(index=number)
        # PDF only: no CSV lines are sent (item.rows counts its PDFs, to tie row errors to records).
        csv_rows = item.rows if with_csv else 0
        call = RunCall(run_id=run.id, index=index, status=CallStatus.PLANNED, record_count=len(item.record_ids),
                       row_count=csv_rows, line_records=item.line_records, params=_params(run, setting), files=files)
        db.session.add(call)
        _set_records(run, item.record_ids, call_index=index)
        lines.append(csv_rows)
        _beat(run, f"送信データを作成しています({index}回目の分)…")
    missing_records = [rid for rid in ordered_ids if rid not in present]
    for record_id in missing_records:
        invalid[record_id] = "レコードが実行前に削除されました。"
    for record_id, problem in invalid.items():
        db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id, RunRecord.record_id == record_id)
                           .values(status=RecordStatus.INVALID, message=problem[:500]))
    run.call_count = index
    run.row_count = sum(lines)
    db.session.commit()
    db.session.refresh(run)
    _beat(run, f"{index}回に分けて送信します。" if index > 1 else "送信しています…")


def _prepare_pdfs(run: Run, setting: IntegrationSetting, record_ids: list[int]) -> dict:
    """{record id: (member name, path, size)} or {record id: problem}, generating missing or stale PDFs first."""
    from ..documents.errors import DocumentError
    from ..documents.operations import ensure_pdf

    target = db.session.get(Field, setting.pdf_field_id) if setting.pdf_field_id else None
    database_fields = list(setting.database.fields)
    code_field = export.named_field(database_fields, [contract.CUSTOMER_CODE])
    number_field = export.named_field(database_fields, export.DOCUMENT_NO_FIELD_NAMES)
    if target is None or code_field is None:
        problem = ("連携対象PDFの項目が設定されていないか、削除されました。楽楽明細連携設定を確認してください。" if target is None
                   else "このDBに「顧客コード」の項目がないため、PDFを顧客に紐付けられません。")
        return dict.fromkeys(record_ids, problem)
    result: dict[int, object] = {}
    seen: dict[str, int] = {}
    done = 0
    for start in range(0, len(record_ids), 200):
        batch = record_ids[start:start + 200]
        for record in export.stream_records(batch):
            name, problem = export.pdf_member(record, code_field, number_field)
            if not problem and name in seen:
                problem = f"同じファイル名({name})のPDFがレコードNo.{seen[name]}にもあります。帳票Noを確認してください。"
            if problem:
                result[record.id] = problem
                continue
            try:
                path = ensure_pdf(record, target) or ensure_pdf(db.session.get(Record, record.id), target)
            except DocumentError as exc:
                result[record.id] = f"PDFを作成できませんでした: {exc}"
                continue
            if path is None:
                result[record.id] = "PDFの作成中にレコードが変更されました。もう一度実行してください。"
                continue
            seen[name] = record.id
            result[record.id] = (name, path, path.stat().st_size)
        done += len(batch)
        _beat(run, f"PDFを準備しています({done:,}/{len(record_ids):,}件)…")
    return result


def _write_zip(path, pdfs: list, row_base: int | None) -> dict:
    import zipfile

    # PDFs are compressed already: members are stored, which also keeps the size exactly predictable.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in pdfs:
            archive.write(source, arcname=name)
    info = {"name": path.name, "path": str(path.relative_to(files_root())), "size": path.stat().st_size,
            "content_type": contract.ZIP_CONTENT_TYPE, "pdf_count": len(pdfs)}
    if row_base is not None:
        info["row_base"] = row_base
    return info


def _set_records(run: Run, record_ids: list[int], **values) -> None:
    for start in range(0, len(record_ids), 500):
        db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id,
                                                   RunRecord.record_id.in_(record_ids[start:start + 500])).values(**values))


def _call_records(run: Run, call: RunCall, **values) -> None:
    db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id, RunRecord.call_index == call.index)
                       .values(**values))


def _params(run: Run, setting: IntegrationSetting) -> dict:
    memo = run.memo[: contract.MAX_PROCESS_NAME_CHARS] or None
    if setting.kind == DataKind.CUSTOMER:
        return CustomerImportParams(overwrite_in_use=setting.overwrite_in_use, overwrite_blank=setting.overwrite_blank,
                                    memo=memo, setting_id=setting.import_setting_id).to_api()
    return ReportImportParams(
        report_type_id=setting.report_type_id or 1, replace=setting.import_method == IMPORT_REPLACE, memo=memo,
        skip_approval=setting.skip_approval, scheduled_at=as_utc(run.publication_date) if setting.skip_approval else None,
        replace_send_mail=setting.replace_notify_mail, replace_post=setting.replace_postal,
        replace_fax=setting.replace_fax, approval_flow_id=setting.approval_flow_id,
    ).to_api()


# ---- sending and polling -------------------------------------------------------------------------------------


def _store_exchanges(call: RunCall, exchanges: list[ExchangeLog]) -> None:
    stored = list(call.exchanges)
    for exchange in exchanges:
        entry = asdict(exchange)
        entry["sent_at"] = exchange.sent_at.isoformat()
        entry["files"] = [asdict(f) for f in exchange.files]
        stored.append(entry)
    exchanges.clear()
    call.exchanges = stored


def _post(run: Run, setting: IntegrationSetting, client: MeisaiClient, call: RunCall,
          exchanges: list[ExchangeLog]) -> str:
    """POST one call; returns a reason to stop sending the remaining calls, or ""."""
    # Take the call atomically: a worker that was wrongly thought dead and a resumed job never both POST it.
    taken = db.session.execute(update(RunCall).where(RunCall.id == call.id, RunCall.status == CallStatus.PLANNED)
                               .values(status=CallStatus.POSTING, posted_at=utcnow()))
    db.session.commit()
    db.session.refresh(call)
    if taken.rowcount != 1:
        raise RunTakenOver(f"run {run.id} call {call.index} was taken by another worker")
    _call_records(run, call, status=RecordStatus.SENDING)
    _beat(run, f"送信しています({call.index}/{run.call_count}回目)…")
    uploads = [Upload(f["name"], (files_root() / f["path"]).read_bytes(), f["content_type"]) for f in call.files]
    try:
        if setting.kind == DataKind.CUSTOMER:
            accepted = client.import_customers(uploads[0].data, uploads[0].filename, call.params)
        else:
            accepted = client.import_reports(uploads, call.params)
    except MeisaiError as exc:
        _store_exchanges(call, exchanges)
        if exc.outcome_unknown:
            _mark_unknown(call, exc.user_message, exc)
            return "前の送信の結果が確認できないため、残りは送信していません。"
        _fail_call(call, explain_refusal(exc, call.params), exc.code or "", exc.http_status)
        db.session.commit()
        if isinstance(exc, STOPPING_ERRORS) or exc.retryable:
            return exc.user_message
        return ""
    _store_exchanges(call, exchanges)
    call.import_id = accepted.import_id
    call.http_status = 200
    call.status = CallStatus.ACCEPTED
    run.http_status = 200
    db.session.commit()
    log.info("run %s call %s: accepted as import %s", run.id, call.index, accepted.import_id)
    return ""


def _fail_call(call: RunCall, message: str, code: str, http_status: int | None) -> None:
    call.status = CallStatus.FAILED
    call.error_message = message
    call.error_code = code
    call.http_status = http_status
    call.finished_at = utcnow()
    if http_status:
        call.run.http_status = http_status
    # The reason is the call's, said once on it: its records carry no copy of it.
    _call_records(call.run, call, status=RecordStatus.NOT_SENT, message="")
    db.session.commit()


def _mark_unknown(call: RunCall, message: str, exc: MeisaiError | None = None) -> None:
    call.status = CallStatus.NEEDS_CHECK
    call.error_message = message
    call.error_code = (exc.code or "") if exc else ""
    call.http_status = exc.http_status if exc else call.http_status
    call.finished_at = utcnow()
    _call_records(call.run, call, status=RecordStatus.UNKNOWN, message="")
    db.session.commit()


def _poll(run: Run, setting: IntegrationSetting, client: MeisaiClient, call: RunCall,
          exchanges: list[ExchangeLog]) -> None:
    config = current_app.config
    kind = ImportKind.CUSTOMERS if setting.kind == DataKind.CUSTOMER else ImportKind.REPORTS
    _beat(run, f"楽楽明細の取込完了を待っています({call.index}/{run.call_count}回目)…")

    def on_poll(state):
        history = list(call.state_history)
        history.append({"at": utcnow().isoformat(), "status": state.status, "succeeded": state.succeeded,
                        "failed": state.failed, "total": state.total})
        call.state_history = history
        _store_exchanges(call, exchanges)
        _beat(run)

    try:
        state = client.wait_for_import(kind, call.import_id, timeout=config["RUN_POLL_TIMEOUT"],
                                       first_interval=config["RUN_POLL_FIRST_INTERVAL"],
                                       max_interval=config["RUN_POLL_MAX_INTERVAL"], on_poll=on_poll)
    except MeisaiImportTimeout as exc:
        _store_exchanges(call, exchanges)
        _mark_unknown(call, "楽楽明細の取込が時間内に終わりませんでした。楽楽明細の取込履歴で結果を確認してください。", exc)
        return
    except MeisaiError as exc:
        _store_exchanges(call, exchanges)
        _mark_unknown(call, f"取込状況を取得できませんでした: {exc.user_message}", exc)
        return
    _store_exchanges(call, exchanges)
    call.finished_at = utcnow()
    if state.ok and not state.row_errors:
        call.status = CallStatus.COMPLETE
        _call_records(run, call, status=RecordStatus.OK, message="")
        db.session.commit()
        return
    call.row_errors = [{"row": e.row, "name": e.name, "msg": e.msg,
                        "record_id": _record_of_row(call, e.row)} for e in state.row_errors]
    failed_records: dict[int, str] = {}
    for error in call.row_errors:
        if error["record_id"] is not None:
            message = f"{error['name']}: {error['msg']}" if error["name"] else error["msg"]
            failed_records.setdefault(error["record_id"], message[:500])
    whole_file = None
    if len(failed_records) >= call.record_count:
        whole_file = whole_file_rejection(call.row_errors, record_count=call.record_count, setting=setting,
                                          params=call.params, column_count=len(run.column_field_ids),
                                          menu_name=run.menu.name if run.menu else None)
    if not failed_records or whole_file:
        # Nothing of this call was imported, for one reason said once on the call: without saying which rows,
        # or because every row was refused alike (the file, not its rows, is wrong).
        call.status = CallStatus.FAILED
        call.error_message = whole_file or ("楽楽明細の取込がエラーになりました(どの行かは示されていません)。"
                                            "この回のレコードは取り込まれていないものとして扱います。楽楽明細の取込履歴を確認してください。")
        _call_records(run, call, status=RecordStatus.ROW_ERROR, message="")
    else:
        # Every record refused for its own reasons is エラー too, never 一部エラー.
        call.status = CallStatus.FAILED if len(failed_records) >= call.record_count else CallStatus.ROW_ERRORS
        _call_records(run, call, status=RecordStatus.OK, message="")
        for record_id, message in failed_records.items():
            db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id, RunRecord.record_id == record_id)
                               .values(status=RecordStatus.ROW_ERROR, message=message))
    db.session.commit()


def _record_of_row(call: RunCall, row: int | None) -> int | None:
    """A row error's record. In a CSV row 1 is the header (skipFirst=1), so data line k is row k+1; a ZIP sent
    alone counts its PDFs from 1."""
    if row is None:
        return None
    row_base = next((f["row_base"] for f in call.files if "row_base" in f), 2)
    index = row - row_base
    return call.line_records[index] if 0 <= index < len(call.line_records) else None


def _abort_unsent(run: Run, message: str) -> None:
    run.error_message = message
    db.session.execute(update(RunRecord).where(RunRecord.run_id == run.id, RunRecord.status == RecordStatus.PENDING)
                       .values(status=RecordStatus.NOT_SENT, message=""))
    db.session.commit()


# ---- the end: counts, レコード更新, mail -----------------------------------------------------------------------


def _finish(run: Run, setting: IntegrationSetting) -> str:
    counts = dict(db.session.execute(
        select(RunRecord.status, db.func.count()).where(RunRecord.run_id == run.id).group_by(RunRecord.status)
    ).all())
    ok = counts.get(RecordStatus.OK, 0)
    unknown = counts.get(RecordStatus.UNKNOWN, 0)
    failed = sum(counts.get(s, 0) for s in (RecordStatus.ROW_ERROR, RecordStatus.INVALID, RecordStatus.NOT_SENT,
                                            RecordStatus.PENDING, RecordStatus.SENDING))
    if unknown:
        final = RunStatus.NEEDS_CHECK
    elif failed == 0 and ok > 0:
        final = RunStatus.COMPLETED
    elif ok > 0:
        final = RunStatus.PARTIAL
    else:
        final = RunStatus.ERROR
    # The run stays 実行中 (beating) until レコード更新 is done: a worker dying here leaves a run that
    # recover_runs() marks 中断 and 再実行 finishes, never a final run that still holds its lock.
    if ok and setting.record_updates and not run.records_updated:
        _beat(run, "レコードを更新しています…")
        apply_record_updates(run, setting)
    if ok and setting.kind == DataKind.CUSTOMER:
        # The 帳票 previews of this 楽楽明細 now know these customers (ledger.py); repeating it is harmless.
        record_sent_codes(run, setting.base_url)
    run.ok_count, run.error_count = ok, failed + unknown
    run.status = final
    if not run.error_message:
        run.error_message = run_summary(status=final, record_count=run.record_count, error_count=run.error_count,
                                        invalid_count=counts.get(RecordStatus.INVALID, 0),
                                        call_messages=[c.error_message for c in run.calls])
    run.active_key = None
    run.finished_at = utcnow()
    run.progress = ""
    db.session.commit()
    if not run.mail_done:
        _report_mail(run, setting)
    log.info("run %s: %s (ok %s, errors %s)", run.id, run.status, ok, run.error_count)
    return run.status


RECORD_UPDATE_BATCH = 1000
RECORD_UPDATE_COMMIT_SECONDS = 1.0
# Updates of a few thousand records finish at full speed; longer ones are paced (RECORD_UPDATE_PAUSE).
RECORD_UPDATE_FULL_SPEED_SECONDS = 2.0


def apply_record_updates(run: Run, setting: IntegrationSetting) -> None:
    """レコード更新 of the records 楽楽明細 imported, in batches (one executemany per batch, not per record)."""
    started = to_local(run.started_at or utcnow())
    assignments = {rule.field.key: (started.strftime("%Y-%m-%d %H:%M") if rule.value == RUN_TIME else rule.value)
                   for rule in setting.record_updates}
    ok_ids = list(db.session.execute(
        select(RunRecord.record_id).where(RunRecord.run_id == run.id, RunRecord.status == RecordStatus.OK)
        .order_by(RunRecord.position)
    ).scalars())
    now = utcnow()
    pause = current_app.config["RECORD_UPDATE_PAUSE"]
    writing_since = time.monotonic()
    written_total = 0.0
    for start in range(0, len(ok_ids), RECORD_UPDATE_BATCH):
        batch = db.session.execute(
            select(Record.id, Record.data, Record.details)
            .where(Record.id.in_(ok_ids[start:start + RECORD_UPDATE_BATCH]))
        ).all()
        rows = []
        for record_id, data, details in batch:
            updated = dict(data)
            updated.update(assignments)
            rows.append({"id": record_id, "data": updated, "search_text": build_search_text(updated, details),
                         "updated_at": now})
        if rows:
            db.session.execute(update(Record), rows, execution_options=records_of(run.database_id))
        # Each commit makes every list of the DB count its matches again (record_counts.py): about one a
        # second, not one per batch, while rows stay locked no longer than that.
        written = time.monotonic() - writing_since
        if written >= RECORD_UPDATE_COMMIT_SECONDS and start + RECORD_UPDATE_BATCH < len(ok_ids):
            run.heartbeat_at = utcnow()
            db.session.commit()
            written_total += written
            if written_total > RECORD_UPDATE_FULL_SPEED_SECONDS:
                # The database serves page views at full priority while bulk writes would take every core it
                # has (a worker's niceness does not reach its database backend): a pause, holding no lock.
                time.sleep(written * pause)
            writing_since = time.monotonic()
    run.records_updated = True
    db.session.commit()


def _report_mail(run: Run, setting: IntegrationSetting) -> None:
    from ..mail.operations import deliver, queue_mail

    if not setting.report_mail or (setting.report_mail_errors_only and run.status == RunStatus.COMPLETED):
        run.mail_done = True
        db.session.commit()
        return
    if setting.report_mail_to == MAIL_TO_ADMINS or run.executor_id is None:
        recipients = [u.email for u in db.session.execute(select(User).where(User.is_admin.is_(True))).scalars() if u.email]
    else:
        executor = db.session.get(User, run.executor_id)
        recipients = [executor.email] if executor and executor.email else []
    subject, body = report_mail_text(run, setting)
    mail = queue_mail(recipients, subject, body, run.id)
    run.mail_done = True
    db.session.commit()
    deliver(mail)


def report_mail_text(run: Run, setting: IntegrationSetting) -> tuple[str, str]:
    from flask import url_for

    from ..core import format_local

    status = run.status_label
    subject = f"【楽楽明細連携】{setting.name}: {status}(送信 {run.record_count}件 / 成功 {run.ok_count}件)"
    base = current_app.config["APP_BASE_URL"].rstrip("/")
    with current_app.test_request_context():
        link = base + url_for("runs.run_detail", run_id=run.id)
    lines = [
        f"楽楽明細連携「{setting.name}」の実行結果をお知らせします。",
        "",
        f"状況: {status}",
        f"実行者: {run.executor_label}",
        f"開始: {format_local(run.started_at, '%Y/%m/%d %H:%M %Z')}",
        f"終了: {format_local(run.finished_at, '%Y/%m/%d %H:%M %Z')}",
        f"対象レコード: {run.record_count}件(成功 {run.ok_count}件、エラー {run.error_count}件)",
        f"送信回数: {run.call_count}回",
    ]
    if run.memo:
        lines.append(f"メモ: {run.memo}")
    if run.error_message:
        lines += ["", "エラー内容:", run.error_message]
    problems = db.session.execute(
        select(RunRecord).where(RunRecord.run_id == run.id, RunRecord.message != "").order_by(RunRecord.position).limit(20)
    ).scalars().all()
    if problems:
        lines += ["", "レコードごとのエラー(最大20件):"]
        lines += [f"- レコードNo.{p.record_id}: {p.message}" for p in problems]
    lines += ["", f"詳細: {link}", "", "このメールは楽楽明細連携から自動送信されています。"]
    return subject, "\n".join(lines)
