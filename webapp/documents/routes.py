"""自動生成ファイル on the record page: open or download the current PDF, 再生成, and the bulk job.

Its own blueprint (endpoints ``documents.*``), registered by create_app; it builds on the databases module (the
entities, the record pages it is shown on), which knows nothing of it.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import login_required

from ..core.downloads import send_stored_file
from ..core.permissions import Permission, permission_required
from ..databases.loaders import get_database, get_field, get_record
from ..databases.models import Field, Record
from ..extensions import db
from .errors import DocumentError
from .operations import (
    DocumentState,
    document_state,
    enqueue_generate_missing,
    ensure_pdf,
    is_autofile,
    regenerate,
)

bp = Blueprint("documents", __name__, template_folder="templates")


def _autofile(record: Record, field_id: int) -> Field:
    target = get_field(record.database, field_id)
    if not is_autofile(target):
        abort(404, description="指定された項目は自動生成ファイルではありません。")
    return target


def _record_url(record: Record) -> str:
    return url_for("databases.record_view", record_id=record.id, menu=request.args.get("menu", type=int))


@bp.get("/records/<int:record_id>/documents/<int:field_id>")
@login_required
def document_file(record_id: int, field_id: int):
    """The PDF as the record is now: made on first use or after a change (a cache fill, not an edit)."""
    record = get_record(record_id)
    target = _autofile(record, field_id)
    try:
        path = ensure_pdf(record, target)
        if path is None:  # saved by someone meanwhile: once more, with the new content
            db.session.refresh(record)
            path = ensure_pdf(record, target)
    except DocumentError as exc:
        flash(str(exc), "error")
        return redirect(_record_url(record))
    if path is None:
        flash("レコードが更新されたため、PDFを作成できませんでした。もう一度開いてください。", "error")
        return redirect(_record_url(record))
    value = record.data[target.key]
    inline = request.args.get("inline") == "1"
    return send_stored_file(path, "application/pdf", value["name"], inline=inline)


@bp.post("/records/<int:record_id>/documents/<int:field_id>/regenerate")
@login_required
def document_regenerate(record_id: int, field_id: int):
    record = get_record(record_id)
    target = _autofile(record, field_id)
    try:
        value = regenerate(record, target)
    except DocumentError as exc:
        flash(f"「{target.name}」を再生成できませんでした。{exc}", "error")
        return redirect(_record_url(record))
    if value is None:
        flash("再生成中にレコードが更新されました。もう一度「再生成」を押してください。", "error")
    else:
        flash(f"「{target.name}」を再生成しました({value['name']})。", "success")
    return redirect(_record_url(record))


@bp.post("/dbs/<int:database_id>/fields/<int:field_id>/documents/generate")
@permission_required(Permission.DB_SETTINGS)
def documents_generate(database_id: int, field_id: int):
    database = get_database(database_id)
    target = get_field(database, field_id)
    if not is_autofile(target):
        abort(404, description="指定された項目は自動生成ファイルではありません。")
    back = url_for("databases.field_edit", database_id=database.id, field_id=target.id)
    try:
        queued = enqueue_generate_missing(target)
    except DocumentError as exc:
        flash(str(exc), "error")
        return redirect(back)
    if queued:
        flash(f"「{target.name}」の未生成・古いPDFの作成をバックグラウンドで開始しました。"
              "完了までレコード数に応じて時間がかかります(目安: 1,000件で数秒〜十数秒)。", "success")
    else:
        flash(f"「{target.name}」のPDF作成は既に実行待ちまたは実行中です。", "info")
    return redirect(back)


@bp.app_template_global()
def autofile_state(record: Record, target: Field) -> DocumentState:
    """For record pages: whether the stored PDF is current (see operations.document_state)."""
    return document_state(record, target)

