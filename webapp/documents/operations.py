"""自動生成ファイル: generating, storing and handing out the PDFs of records.

The stored value of an autofile field has the shape of an uploaded file's value, plus what tells whether it
is still current:
    {"name": "INV-0001.pdf", "path": "records/<db>/<record>/<field>/<fingerprint>.pdf", "size": 21504,
     "content_type": "application/pdf", "fingerprint": "…", "template": "invoice", "generated_at": "…Z"}
The fingerprint hashes everything the PDF prints (the template, and the record values the template reads), so
a PDF is regenerated when one of those changes and never when an unrelated field does. Files live under
FILES_DIR, named by fingerprint: a failed save leaves the previous file and value untouched.

API for callers (record save, 再生成, RQ jobs, the run engine):
    refresh_document(record, field)  inside a record save, before its commit (the field type's on_save)
    ensure_pdf(record, field)  the current PDF's path, generated first when missing or stale (commits)
    pdf_bytes(record, field)   the same, as bytes
    regenerate(record, field)  always render anew (the 再生成 button)
    generate_missing(field_id) every stale or missing PDF of a field's DB (the RQ job's body)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from ..core import files
from ..databases.models import Field, Record
from ..databases.operations import build_search_text, stored_file_path
from ..databases.record_counts import records_of
from ..extensions import db
from .content import DocumentContent, build_content
from .document_templates import DocumentTemplate, load_template, template_key_of
from .errors import DocumentError
from .fieldtype import AutofileKind
from .render import RENDERER_VERSION, render_pdf

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/pdf"
BATCH = 100


def is_autofile(target: Field | None) -> bool:
    return target is not None and isinstance(target.kind, AutofileKind)


def _check_target(record: Record, target: Field) -> None:
    if not is_autofile(target) or target.is_detail or target.database_id != record.database_id:
        raise ValueError(f"field {target.id} is not a header 自動生成ファイル field of record {record.id}'s DB")


class Generator:
    """Everything a field's PDFs need that does not change per record: the template and the DB's fields."""

    def __init__(self, target: Field):
        self.field = target
        database = target.database
        self.header_fields = database.header_fields
        self.detail_fields = database.detail_fields
        self.template: DocumentTemplate = load_template(template_key_of(target))

    def content(self, data: dict, details: list[dict], record_id: int) -> tuple[DocumentContent, str]:
        content = build_content(self.template, self.header_fields, self.detail_fields, data, details, record_id)
        payload = json.dumps(
            {"renderer": RENDERER_VERSION, "template": self.template.key, "spec": self.template.spec_hash,
             "content": content.as_dict()},
            ensure_ascii=False, sort_keys=True, default=str,
        )
        return content, hashlib.sha256(payload.encode()).hexdigest()[:32]

    def is_current(self, value, fingerprint: str) -> bool:
        return (isinstance(value, dict) and value.get("fingerprint") == fingerprint
                and stored_file_path(value) is not None)

    def generate(self, database_id: int, record_id: int, content: DocumentContent, fingerprint: str) -> dict:
        """Render and write the file; returns the value to store (the caller stores it)."""
        pdf = render_pdf(self.template, content)
        relative = Path("records") / str(database_id) / str(record_id) / str(self.field.id) / f"{fingerprint}.pdf"
        files.write_bytes(relative, pdf)
        return {
            "name": content.file_name,
            "path": str(relative),
            "size": len(pdf),
            "content_type": CONTENT_TYPE,
            "fingerprint": fingerprint,
            "template": self.template.key,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


# ---- inside a record save ------------------------------------------------------------------------------


def refresh_document(record: Record, target: Field) -> str | None:
    """Regenerate the record's PDF of `target` when its inputs changed, into record.data (the 自動生成ファイル
    type's on_save: save_record calls it before the caller commits). Returns a message for the user when the PDF
    cannot be made — that never blocks saving the record: the old value stays (it shows as not current).

    The new file is removed again if the save is not committed; the one it replaces, once it is.
    """
    try:
        generator = Generator(target)
        content, fingerprint = generator.content(record.data, record.details, record.id)
        old = record.data.get(target.key)
        if generator.is_current(old, fingerprint):
            return None
        value = generator.generate(record.database_id, record.id, content, fingerprint)
    except DocumentError as exc:
        return f"「{target.name}」を生成できませんでした。{exc}"
    except Exception:  # a rendering bug must not lose the user's record
        log.exception("PDF of record %s field %s failed", record.id, target.id)
        return f"「{target.name}」を生成できませんでした。管理者に連絡してください。"
    files.remove_unless_committed([value["path"]])
    if isinstance(old, dict) and old.get("path") and old["path"] != value["path"]:
        files.remove_after_commit([old["path"]])
    data = dict(record.data)
    data[target.key] = value
    record.data = data
    record.search_text = build_search_text(record.data, record.details)
    return None


# ---- outside a save: guarded writes --------------------------------------------------------------------


def _lock_rows(ids: list[int], database_id: int) -> None:
    """Hold the records' rows until commit, so a save made meanwhile is neither lost nor overwritten."""
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a no-op write takes the database's write lock (and starts the transaction).
        db.session.execute(update(Record).where(Record.id.in_(ids)).values(updated_at=Record.updated_at)
                           .execution_options(synchronize_session=False, **records_of(database_id)))
    else:
        db.session.execute(select(Record.id).where(Record.id.in_(ids)).order_by(Record.id).with_for_update())


def _store(generator: Generator, values: dict[int, dict]) -> dict[int, dict]:
    """Store freshly generated values, each only if its record still has the inputs it was made from.

    A record changed meanwhile keeps its value (it reads as not current and is regenerated when next used).
    Commits. Returns the values stored, by record id.
    """
    if not values:
        return {}
    key = generator.field.key
    ids = sorted(values)
    obsolete: list[str] = []
    stored: dict[int, dict] = {}
    _lock_rows(ids, generator.field.database_id)
    rows = db.session.execute(
        select(Record.id, Record.data, Record.details, Record.updated_at).where(Record.id.in_(ids))
    ).all()
    updates = []
    for record_id, data, details, updated_at in rows:
        value = values[record_id]
        current = data.get(key)
        current_path = current.get("path") if isinstance(current, dict) else None
        _, fingerprint = generator.content(data, details, record_id)
        if fingerprint != value["fingerprint"]:
            if current_path != value["path"]:
                obsolete.append(value["path"])
            continue
        new_data = dict(data)
        new_data[key] = value
        # updated_at is kept: a regenerated PDF is not an edit of the record.
        updates.append({"id": record_id, "data": new_data, "search_text": build_search_text(new_data, details),
                        "updated_at": updated_at})
        if current_path and current_path != value["path"]:
            obsolete.append(current_path)
        stored[record_id] = value
    obsolete += [values[i]["path"] for i in set(ids) - {row[0] for row in rows}]  # deleted meanwhile
    if updates:
        db.session.execute(update(Record), updates, execution_options=records_of(generator.field.database_id))
    db.session.commit()
    for path in obsolete:
        files.remove(path)
    return stored


def ensure_pdf(record: Record, target: Field) -> Path | None:
    """The path of the record's current PDF, generated and stored first when missing or stale.

    Commits its own short transaction when it stores a value: call it between your transactions, not inside
    one. Raises DocumentError (a Japanese message) when the PDF cannot be generated. None when the record
    changed or vanished while its PDF was being made (call again for the new content).
    """
    _check_target(record, target)
    generator = Generator(target)
    content, fingerprint = generator.content(record.data, record.details, record.id)
    value = record.data.get(target.key)
    if generator.is_current(value, fingerprint):
        return stored_file_path(value)
    value = generator.generate(record.database_id, record.id, content, fingerprint)
    stored = _store(generator, {record.id: value})
    return stored_file_path(stored[record.id]) if record.id in stored else None


def pdf_bytes(record: Record, target: Field) -> bytes | None:
    """The record's current PDF as bytes (see ensure_pdf)."""
    path = ensure_pdf(record, target)
    return path.read_bytes() if path else None


def regenerate(record: Record, target: Field) -> dict | None:
    """Render the PDF anew even when it is current (再生成); returns the stored value. Commits."""
    _check_target(record, target)
    generator = Generator(target)
    content, fingerprint = generator.content(record.data, record.details, record.id)
    value = generator.generate(record.database_id, record.id, content, fingerprint)
    return _store(generator, {record.id: value}).get(record.id)


@dataclass
class BulkResult:
    generated: int = 0
    current: int = 0
    skipped: int = 0  # changed while being generated: regenerated when next used


def generate_missing(field_id: int, batch: int = BATCH) -> BulkResult:
    """Generate every missing or stale PDF of an autofile field, in batches (each committed on its own)."""
    result = BulkResult()
    target = db.session.get(Field, field_id)
    if not is_autofile(target):
        return result
    generator = Generator(target)
    database_id, key = target.database_id, target.key
    last_id = 0
    while True:
        rows = db.session.execute(
            select(Record.id, Record.data, Record.details)
            .where(Record.database_id == database_id, Record.id > last_id).order_by(Record.id).limit(batch)
        ).all()
        db.session.commit()  # end the read transaction: rendering a batch takes a while
        if not rows:
            return result
        values = {}
        for record_id, data, details in rows:
            content, fingerprint = generator.content(data, details, record_id)
            if generator.is_current(data.get(key), fingerprint):
                result.current += 1
                continue
            values[record_id] = generator.generate(database_id, record_id, content, fingerprint)
        stored = _store(generator, values)
        result.generated += len(stored)
        result.skipped += len(values) - len(stored)
        last_id = rows[-1][0]


# ---- for pages ------------------------------------------------------------------------------------------


@dataclass
class DocumentState:
    """What the record page says about an autofile value: current, stale (inputs changed), missing, error."""

    status: str
    value: dict | None
    template_name: str = ""
    message: str = ""

    @property
    def generated_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.value["generated_at"].replace("Z", "+00:00"))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None


def document_state(record: Record, target: Field) -> DocumentState:
    value = record.data.get(target.key)
    value = value if isinstance(value, dict) and value.get("path") else None
    try:
        generator = Generator(target)
        _, fingerprint = generator.content(record.data, record.details, record.id)
    except DocumentError as exc:
        return DocumentState("error", value, message=str(exc))
    name = generator.template.name
    if value is None or stored_file_path(value) is None:
        return DocumentState("missing", None, name)
    return DocumentState("current" if value.get("fingerprint") == fingerprint else "stale", value, name)


# ---- background -----------------------------------------------------------------------------------------

ACTIVE_JOB_STATUSES = {"queued", "started", "deferred", "scheduled", "created", "ready_to_enqueue"}


def job_id_for(target: Field) -> str:
    return f"documents-field-{target.id}"


def enqueue_generate_missing(target: Field) -> bool:
    """Queue the job that generates the field's missing or stale PDFs; False when one is already waiting."""
    from flask import current_app
    from redis import Redis, RedisError
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        connection = Redis.from_url(current_app.config["REDIS_URL"])
        try:
            # One job per field: a second click while it waits or runs adds nothing.
            status = Job.fetch(job_id_for(target), connection=connection).get_status()
            if getattr(status, "value", status) in ACTIVE_JOB_STATUSES:
                return False
        except NoSuchJobError:
            pass
        Queue(current_app.config["RQ_QUEUE"], connection=connection).enqueue(
            "webapp.documents.tasks.generate_missing_documents", target.id, job_id=job_id_for(target),
            job_timeout=3 * 3600, result_ttl=3600, failure_ttl=7 * 86400,
        )
    except RedisError as exc:
        log.exception("PDF job for field %s could not be queued", target.id)
        raise DocumentError("バックグラウンド処理(Redis)に接続できないため開始できませんでした。管理者に連絡してください。") from exc
    return True
