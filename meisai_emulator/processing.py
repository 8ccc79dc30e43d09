"""The asynchronous side of an import: a worker thread applies accepted files row by row.

An import is accepted by the API only after its files passed the request-level checks. The worker then maps
columns by the import format, applies the row-level rules of MEISAI_API.md, records per-row errors, and the
state API reports ``active`` until both the work is done and the tenant's import delay has passed.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import insert, select, update

from webapp.meisai import contract

from .errors import ApiError
from .models import CUSTOMER_COLUMNS, Customer, Document, Import, ImportFile, Store, utcnow
from .validation import ReceivedFile, decode_csv, parse_csv, read_pdf_zip

logger = logging.getLogger(__name__)

MAX_TEXT = 255
MAX_CODE = 100
_POSTAL = re.compile(r"^\d{3}-?\d{4}$")
_MAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NUMERIC_ATTRIBUTES = ("取引金額", "数量", "単価", "金額")
DOCUMENT_HEADER_ATTRIBUTES = ("顧客コード", "帳票No", "取引年月日", "取引金額", "取引先", "件名")
STATE_PENDING = "承認待ち"
STATE_SCHEDULED = "予約"
STATE_ISSUED = "発行済"


class ImportWorker:
    """One background thread per emulator process; imports are applied one at a time, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="meisai-emulator-worker", daemon=True)

    def start(self) -> None:
        # Imports accepted before a restart are still waiting: pick them up again.
        with self.store.session() as session:
            for import_id in session.scalars(
                select(Import.id)
                .where(Import.result.is_(None), Import.deleted_at.is_(None))
                .order_by(Import.id)
            ):
                self._queue.put(import_id)
        self._thread.start()

    def submit(self, import_id: int) -> None:
        self._queue.put(import_id)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                import_id = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._promote()
                continue
            if import_id is None:
                return
            try:
                process_import(self.store, import_id)
            except Exception:
                logger.exception("import %s failed inside the emulator", import_id)
                _mark_crashed(self.store, import_id)

    def _promote(self) -> None:
        try:
            promote_scheduled(self.store)
        except Exception:
            logger.exception("promoting scheduled documents failed")


def promote_scheduled(store: Store, now: datetime | None = None) -> None:
    """Scheduled documents (予約) whose time has come (``now``, naive UTC; default the clock) become issued (発行済)."""
    now = now or utcnow()
    with store.session.begin() as session:
        session.execute(
            update(Document)
            .where(Document.state == STATE_SCHEDULED, Document.scheduled_at <= now)
            .values(state=STATE_ISSUED, issued_at=Document.scheduled_at)
        )


def _mark_crashed(store: Store, import_id: int) -> None:
    with store.session.begin() as session:
        imp = session.get(Import, import_id)
        if imp is not None and imp.result is None:
            imp.result = contract.STATE_ERROR
            imp.processed_at = utcnow()
            imp.row_errors = [{"row": None, "name": "", "msg": "エミュレーター内部エラー"}]


def process_import(store: Store, import_id: int) -> None:
    with store.session.begin() as session:
        imp = session.get(Import, import_id)
        if imp is None or imp.result is not None or imp.deleted_at is not None:
            return
        files = {
            f.part: ReceivedFile(f.part, f.filename, f.content_type, (store.data_dir / f.path).read_bytes())
            for f in session.scalars(select(ImportFile).where(ImportFile.import_id == imp.id))
        }
        result = Result()
        try:
            if imp.kind == "customers":
                _import_customers(session, imp, files["files[0]"], result)
            else:
                _import_reports(session, imp, files, result)
        except ApiError as exc:
            # The request-level checks passed on receipt, so this only happens with a file changed on disk.
            result.errors.append({"row": None, "name": "", "msg": exc.msg or exc.code})
        imp.total = result.total
        imp.failed = len(result.failed_rows)
        imp.succeeded = result.total - imp.failed
        imp.row_errors = result.errors
        imp.result = contract.STATE_ERROR if result.errors else contract.STATE_COMPLETE
        imp.processed_at = utcnow()


class Result:
    def __init__(self) -> None:
        self.total = 0
        self.errors: list[dict] = []
        self.failed_rows: set = set()

    def fail(self, row, name: str, msg: str) -> None:
        self.errors.append({"row": row, "name": name, "msg": msg})
        self.failed_rows.add(row)


def _csv_rows(upload: ReceivedFile, skip_first: int) -> list[tuple[int, list[str]]]:
    return parse_csv(upload, decode_csv(upload), skip_first)


def _row_values(columns: list[str], cells: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Cells mapped to attributes by position, and the row's problems as (attribute, message)."""
    if len(cells) != len(columns):
        return {}, [("", contract.COLUMN_COUNT_ROW_ERROR.format(sent=len(cells), expected=len(columns)))]
    values = {
        attr: cell.strip() for attr, cell in zip(columns, cells, strict=True) if attr != contract.SKIP_COLUMN
    }
    problems = []
    code = values.get(contract.CUSTOMER_CODE, "")
    if not code:
        problems.append((contract.CUSTOMER_CODE, "必須です。"))
    elif len(code) > MAX_CODE or _CONTROL.search(code):
        problems.append(
            (contract.CUSTOMER_CODE, f"{MAX_CODE}文字以内で、制御文字を含めずに指定してください。")
        )
    for attr, value in values.items():
        if len(value) > MAX_TEXT:
            problems.append((attr, f"{MAX_TEXT}文字以内で指定してください。"))
    return values, problems


# --- customers --------------------------------------------------------------------------------------------


def _customer_problems(values: dict[str, str]) -> list[tuple[str, str]]:
    problems = []
    postal = values.get("郵便番号", "")
    if postal and not _POSTAL.match(postal):
        problems.append(("郵便番号", "半角数字7桁（123-4567 または 1234567）で指定してください。"))
    mail = values.get("メールアドレス", "")
    if mail and not all(_MAIL.match(part.strip()) for part in mail.split(",")):
        problems.append(("メールアドレス", "メールアドレスの形式が正しくありません。"))
    web = values.get("Web利用", "")
    if web and web not in contract.WEB_STATUSES:
        problems.append(("Web利用", f"{' / '.join(contract.WEB_STATUSES)} のいずれかを指定してください。"))
    return problems


def _import_customers(session, imp: Import, upload: ReceivedFile, result: Result) -> None:
    effective = imp.effective
    columns = effective["columns"]
    overwrite_in_use = effective["isUpdateInfo"] == 1
    overwrite_blank = effective["updateBlank"] == contract.UPDATE_BLANK_OVERWRITE
    rows = _csv_rows(upload, effective["skipFirst"])
    result.total = len(rows)
    code_index = columns.index(contract.CUSTOMER_CODE)
    codes = {cells[code_index].strip() for _, cells in rows if len(cells) > code_index}
    stored = _existing_customers(session, imp.tenant_id, codes)
    inserts: dict[str, dict] = {}
    updates: dict[int, dict] = {}
    now = utcnow()
    for number, cells in rows:
        values, problems = _row_values(columns, cells)
        problems = problems or _customer_problems(values)
        if problems:
            for name, msg in problems:
                result.fail(number, name, msg)
            continue
        code = values[contract.CUSTOMER_CODE]
        changes = {
            CUSTOMER_COLUMNS[attr]: value
            for attr, value in values.items()
            if attr in CUSTOMER_COLUMNS and attr != contract.CUSTOMER_CODE and (value or overwrite_blank)
        }
        if code in stored:
            current = stored[code]
            if current["web_status"] == contract.WEB_STATUS_IN_USE and not overwrite_in_use:
                result.fail(
                    number,
                    "Web利用",
                    "Web利用が「利用中」の顧客は更新されません（「利用中」の上書き: しない）。",
                )
                continue
            current.update(changes)
            updates[current["id"]] = {**updates.get(current["id"], {"id": current["id"]}), **changes}
            updates[current["id"]].update(import_id=imp.id, updated_at=now)
        elif code in inserts:
            inserts[code].update(changes)
        else:
            inserts[code] = {
                "tenant_id": imp.tenant_id,
                "code": code,
                "web_status": contract.WEB_STATUS_UNUSED,
                "import_id": imp.id,
                "created_at": now,
                "updated_at": now,
                **changes,
            }
    if inserts:
        session.execute(insert(Customer), list(inserts.values()))
    if updates:
        session.execute(update(Customer), list(updates.values()))


def _existing_customers(session, tenant_id: int, codes: set[str]) -> dict[str, dict]:
    found = {}
    codes = sorted(c for c in codes if c)
    fields = [Customer.id, Customer.code, Customer.web_status]
    for start in range(0, len(codes), 500):  # stay well under SQLite's bound-parameter limit
        chunk = codes[start : start + 500]
        for row in session.execute(
            select(*fields).where(Customer.tenant_id == tenant_id, Customer.code.in_(chunk))
        ).mappings():
            found[row["code"]] = dict(row)
    return found


# --- documents --------------------------------------------------------------------------------------------


def _document_problems(values: dict[str, str]) -> list[tuple[str, str]]:
    problems = []
    for attr in NUMERIC_ATTRIBUTES:
        value = values.get(attr, "")
        if value and not _NUMBER.match(value):
            problems.append((attr, "数値で指定してください。"))
    trade_date = values.get("取引年月日", "")
    if trade_date and parse_trade_date(trade_date) is None:
        problems.append(("取引年月日", "日付（YYYY/MM/DD）で指定してください。"))
    return problems


def parse_trade_date(text: str) -> date | None:
    for pattern in ("%Y/%m/%d", "%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _initial_state(effective: dict) -> tuple[str, datetime | None, datetime | None]:
    """(state, scheduled_at, issued_at) of a new document or version, from the approval parameters."""
    if effective["isImmApproval"] != 1:
        return STATE_PENDING, None, None
    if effective["pdfIssueType"] == contract.PDF_ISSUE_SCHEDULED:
        moment = datetime.strptime(effective["publicationDate"], contract.PUBLICATION_DATE_FORMAT)
        scheduled = moment.replace(tzinfo=contract.JST).astimezone(UTC).replace(tzinfo=None)
        return STATE_SCHEDULED, scheduled, None
    return STATE_ISSUED, None, utcnow()


def _import_reports(session, imp: Import, files: dict[str, ReceivedFile], result: Result) -> None:
    effective = imp.effective
    pdfs: list[tuple[str, bytes]] | None = None
    csv_upload = None
    if imp.mode == "csv":
        csv_upload = files["files[0]"]
    else:
        pdfs = read_pdf_zip(files["files[0]"])
        csv_upload = files.get("files[1]")
    if csv_upload is None:
        _import_pdfs_only(session, imp, pdfs, result)
        return

    columns = effective["columns"]
    rows = _csv_rows(csv_upload, effective["skipFirst"])
    result.total = len(rows)
    groups: dict[tuple, list[tuple[int, dict, list]]] = defaultdict(list)
    for number, cells in rows:
        values, problems = _row_values(columns, cells)
        problems = problems or _document_problems(values)
        no = values.get(contract.DOCUMENT_NO, "")
        key = ("no", no) if no else ("customer", values.get(contract.CUSTOMER_CODE, ""))
        if not values:
            key = ("broken", number)
        groups[key].append((number, values, problems))

    codes = {v.get(contract.CUSTOMER_CODE, "") for g in groups.values() for _, v, _ in g}
    known_customers = set(_existing_customers(session, imp.tenant_id, codes))
    numbers = [key[1] for key in groups if key[0] == "no"]
    current = _current_documents(session, imp.tenant_id, effective["reportTypeId"], numbers)
    pdf_index = _PdfIndex(pdfs) if pdfs is not None else None

    for members in groups.values():
        row_problems = [(n, name, msg) for n, _, problems in members for name, msg in problems]
        if row_problems:
            bad_rows = {n for n, _, _ in row_problems}
            for n, name, msg in row_problems:
                result.fail(n, name, msg)
            for n, _, _ in members:
                if n not in bad_rows:
                    result.fail(n, "", "同じ帳票の他の行にエラーがあるため取り込まれませんでした。")
            continue
        first = members[0][1]
        code = first[contract.CUSTOMER_CODE]
        no = first.get(contract.DOCUMENT_NO, "")
        problem = _group_problem(members, code, no, known_customers, current, effective)
        pdf = None
        if problem is None and pdf_index is not None:
            pdf, problem = pdf_index.take(code, no)
        if problem is not None:
            for n, _, _ in members:
                result.fail(n, problem[0], problem[1])
            continue
        header = {a: first[a] for a in DOCUMENT_HEADER_ATTRIBUTES if a in first}
        lines = [
            {a: v for a, v in values.items() if a not in DOCUMENT_HEADER_ATTRIBUTES}
            for _, values, _ in members
        ]
        _add_document(
            session,
            imp,
            code,
            no or contract.generated_document_no(effective["reportTypeId"], imp.id, code),
            header,
            lines,
            pdf,
            current.get(no) if effective["isNewIssues"] == contract.REPLACE_ISSUE else None,
        )
    if pdf_index is not None:
        for name in pdf_index.unused():
            result.errors.append({"row": None, "name": name, "msg": "このPDFに対応するCSVの行がありません。"})


def _group_problem(members, code, no, known_customers, current, effective) -> tuple[str, str] | None:
    if any(values[contract.CUSTOMER_CODE] != code for _, values, _ in members):
        return contract.CUSTOMER_CODE, f"同じ帳票No「{no}」の行で顧客コードが異なります。"
    if code not in known_customers:
        return contract.CUSTOMER_CODE, f"顧客コード「{code}」の顧客が登録されていません。"
    if effective["isNewIssues"] == contract.REPLACE_ISSUE:
        if not no:
            return contract.DOCUMENT_NO, "差替発行には帳票Noが必要です。"
        if no not in current:
            return contract.DOCUMENT_NO, f"差替対象の帳票No「{no}」が存在しません。"
        if current[no].customer_code != code:
            return contract.CUSTOMER_CODE, f"帳票No「{no}」の顧客コードと一致しません。"
    elif no and no in current:
        return contract.DOCUMENT_NO, f"帳票No「{no}」は既に存在します（新規発行）。"
    return None


def _current_documents(
    session, tenant_id: int, report_type_id: int, numbers: list[str]
) -> dict[str, Document]:
    found = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        for doc in session.scalars(
            select(Document).where(
                Document.tenant_id == tenant_id,
                Document.report_type_id == report_type_id,
                Document.document_no.in_(chunk),
                Document.replaced_at.is_(None),
            )
        ):
            found[doc.document_no] = doc
    return found


def _add_document(session, imp, code, no, header, lines, pdf, replaced: Document | None) -> None:
    effective = imp.effective
    state, scheduled_at, issued_at = _initial_state(effective)
    replacement = replaced is not None
    if replacement:
        replaced.replaced_at = utcnow()
    session.add(
        Document(
            tenant_id=imp.tenant_id,
            report_type_id=effective["reportTypeId"],
            document_no=no,
            customer_code=code,
            import_id=imp.id,
            state=state,
            scheduled_at=scheduled_at,
            issued_at=issued_at,
            approval_flow_id=effective.get("approvalFlowId"),
            header=header,
            lines=lines,
            pdf_name=pdf[0] if pdf else None,
            pdf=pdf[1] if pdf else None,
            is_replacement=replacement,
            send_mail=replacement and effective.get("isSendMail") == 1,
            post_request=replacement and effective.get("isPostReplaceBill") == 1,
            send_fax=replacement and effective.get("isSendFax") == 1,
            replaces_id=replaced.id if replacement else None,
        )
    )


class _PdfIndex:
    """PDFs of a ZIP by customer code (the file name up to the first ``_``)."""

    def __init__(self, pdfs: list[tuple[str, bytes]]) -> None:
        self._by_code: dict[str, list[tuple[str, str, bytes]]] = defaultdict(list)
        self._used: set[str] = set()
        self._names = [name for name, _ in pdfs]
        for name, data in pdfs:
            stem = name.rsplit("/", 1)[-1][:-4]
            self._by_code[contract.customer_code_of_pdf(name)].append((stem, name, data))

    def take(self, code: str, no: str) -> tuple[tuple[str, bytes] | None, tuple[str, str] | None]:
        candidates = [c for c in self._by_code.get(code, []) if c[1] not in self._used]
        exact = [c for c in candidates if no and c[0] == f"{code}_{no}"]
        if exact:
            chosen = exact[0]
        elif len(candidates) == 1:
            chosen = candidates[0]
        elif not candidates:
            expected = contract.pdf_member_name(code, no or None)
            return None, ("PDF", f"顧客コード「{code}」のPDF（{expected}）がZIPにありません。")
        else:
            return None, ("PDF", f"顧客コード「{code}」のPDFが複数あり、帳票Noで特定できません。")
        self._used.add(chosen[1])
        return (chosen[1], chosen[2]), None

    def unused(self) -> list[str]:
        return [name for name in self._names if name not in self._used]


def _import_pdfs_only(session, imp: Import, pdfs: list[tuple[str, bytes]], result: Result) -> None:
    """帳票データ(PDF): one document per PDF, customer and 帳票No taken from the file name."""
    effective = imp.effective
    result.total = len(pdfs)
    parsed = []
    for index, (name, data) in enumerate(pdfs, start=1):
        stem = name.rsplit("/", 1)[-1][:-4]
        code, _, no = stem.partition("_")
        parsed.append((index, name, data, code, no))
    known = set(_existing_customers(session, imp.tenant_id, {p[3] for p in parsed}))
    current = _current_documents(
        session, imp.tenant_id, effective["reportTypeId"], [p[4] for p in parsed if p[4]]
    )
    seen: set[str] = set()
    for index, name, data, code, no in parsed:
        if code not in known:
            result.fail(index, name, f"顧客コード「{code}」の顧客が登録されていません。")
            continue
        if no and (no in current or no in seen):
            result.fail(index, name, f"帳票No「{no}」は既に存在します（新規発行）。")
            continue
        seen.add(no)
        document_no = no or contract.generated_document_no(effective["reportTypeId"], imp.id, code)
        _add_document(session, imp, code, document_no, {}, [], (name, data), None)


def withdraw_report_import(store: Store, tenant_id: int, import_id: int) -> None:
    """帳票一括取込情報削除: remove the import's documents and restore what they replaced."""
    promote_scheduled(store)
    with store.session.begin() as session:
        imp = session.get(Import, import_id)
        if imp is None or imp.tenant_id != tenant_id or imp.kind != "reports" or imp.deleted_at is not None:
            raise ApiError(contract.E_NOT_FOUND, f"取込ID {import_id} の帳票取込は見つかりません。")
        if imp.state() == contract.STATE_ACTIVE:
            raise ApiError(
                contract.E_CONFLICT,
                "取込処理中のため削除できません。",
                status=contract.DELETE_CONFLICT_STATUS,
            )
        documents = list(session.scalars(select(Document).where(Document.import_id == imp.id)))
        if any(d.state == STATE_ISSUED for d in documents):
            raise ApiError(
                contract.E_CONFLICT,
                "発行済の帳票があるため削除できません。",
                status=contract.DELETE_CONFLICT_STATUS,
            )
        if any(d.replaced_at is not None for d in documents):
            raise ApiError(
                contract.E_CONFLICT,
                "この取込の帳票は後の取込で差し替えられているため削除できません。",
                status=contract.DELETE_CONFLICT_STATUS,
            )
        for document in documents:
            if document.replaces_id is not None:
                previous = session.get(Document, document.replaces_id)
                previous.replaced_at = None
            session.delete(document)
        imp.deleted_at = utcnow()
