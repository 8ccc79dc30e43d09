"""The API endpoints of MEISAI_API.md under ``/{account}/api/v1/``, with the tenant's fault knobs applied."""

from __future__ import annotations

import hmac
import json
import random
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import func, or_, select

from webapp.meisai import contract

from .errors import ApiError, param_error
from .models import (
    ApprovalFlow,
    Customer,
    CustomerImportFormat,
    Import,
    ImportFile,
    ReportType,
    Tenant,
    utcnow,
)
from .processing import withdraw_report_import
from .tenants import FaultSettings, get_faults, take_next_fault
from .validation import (
    ReceivedFile,
    check_size,
    decode_csv,
    encoding_refusal,
    parse_csv,
    read_pdf_zip,
    validate_customer_params,
    validate_report_params,
)

bp = Blueprint("api", __name__)


class RateLimiter:
    """A sliding window of request times per tenant (in memory: the knob is for tests and demos)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, deque[float]] = {}

    def retry_after(self, tenant_id: int, limit: int, window: float) -> float | None:
        """Record a call; None when allowed, else seconds until a slot frees up."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(tenant_id, deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            if len(calls) >= limit:
                return calls[0] + window - now
            calls.append(now)
            return None


class HtmlAnswer(Exception):  # noqa: N818  (a control-flow signal, not an error)
    def __init__(self, response) -> None:
        self.response = response


def _state():
    return current_app.extensions["meisai_emulator"]


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    _drain()
    return error.response()


@bp.errorhandler(HtmlAnswer)
def _html_answer(answer: HtmlAnswer):
    _drain()
    return answer.response


def _drain() -> None:
    # Read what the client is still sending, so that an early answer does not reset the connection
    # mid-upload (which a client must treat as "outcome unknown").
    try:
        while request.stream.read(1 << 16):
            pass
    except Exception:  # noqa: BLE001  (the connection is gone; the answer will fail anyway)
        pass


def _now_jst() -> datetime:
    return datetime.now(UTC).astimezone(contract.JST)


def _access_time() -> str:
    return _now_jst().strftime(contract.PUBLICATION_DATE_FORMAT)


def _guard(account: str, call: str = "other") -> tuple[Tenant, FaultSettings]:
    """Tenant lookup, then the fault knobs in the order a real deployment would show them, then auth.

    ``call`` names the request for the knobs that single some out: ``import`` (POST …/imports), ``state``
    (GET …/state) or ``other``.
    """
    emulator = _state()
    with emulator.store.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.account == account))
    if tenant is None:
        # Like a wrong account path on a real host: an HTML page, not the API's JSON.
        raise HtmlAnswer((render_template("emulator/not_found.html", account=account), 404))
    faults = get_faults(emulator.store, tenant.id)
    delay_ms = faults.latency_ms + (faults.state_latency_ms if call == "state" else 0)
    if delay_ms:
        time.sleep(delay_ms / 1000)
    if faults.next_count:
        taken = take_next_fault(emulator.store, tenant.id, call)
        if taken is not None:
            _answer_next_fault(*taken)
    if faults.maintenance == "json":
        raise _maintenance()
    if faults.maintenance == "html":
        raise _maintenance_page()
    if faults.rate_limit:
        wait = emulator.rate_limiter.retry_after(tenant.id, faults.rate_limit, faults.rate_window_s)
        if wait is not None:
            raise ApiError(contract.E_RATE, retry_after=max(1, round(wait)))
    if faults.failure_rate and random.random() < faults.failure_rate:
        raise ApiError(contract.E_SERVER, status=faults.failure_status)
    _authenticate(tenant)
    return tenant, faults


def _maintenance() -> ApiError:
    return ApiError(contract.E_MAINTENANCE, retry_after=1)


def _maintenance_page() -> HtmlAnswer:
    return HtmlAnswer((render_template("emulator/maintenance.html"), 200))


def _answer_next_fault(fault: str, slow_ms: int) -> None:
    """Answer this request as the count-based knob says (``slow`` waits, then the request goes on)."""
    if fault == "slow":
        time.sleep(slow_ms / 1000)
    elif fault == "maintenance":
        raise _maintenance()
    elif fault == "maintenance_html":
        raise _maintenance_page()
    elif fault == "429":
        raise ApiError(contract.E_RATE, retry_after=1)
    else:
        raise ApiError(contract.E_SERVER, status=int(fault))


def _authenticate(tenant: Tenant) -> None:
    token = request.headers.get(contract.TOKEN_HEADER)
    if token is None:
        if request.headers.get(contract.WRONG_TOKEN_HEADER) is not None:
            raise ApiError(
                contract.E_AUTH,
                f"APIトークンは {contract.TOKEN_HEADER} ヘッダで指定してください"
                f"（{contract.WRONG_TOKEN_HEADER} は楽楽精算のヘッダです）。",
            )
        raise ApiError(contract.E_AUTH, f"APIトークン（{contract.TOKEN_HEADER} ヘッダ）がありません。")
    if not hmac.compare_digest(token.encode(), tenant.token.encode()):
        raise ApiError(contract.E_AUTH)


def _read_params() -> dict:
    """The ``json`` part: a form field or a file part; absent means no parameters."""
    raw = request.form.get(contract.PARAMS_PART)
    if raw is None and contract.PARAMS_PART in request.files:
        raw = request.files[contract.PARAMS_PART].read().decode("utf-8", errors="replace")
    if raw is None or not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except ValueError:
        raise ApiError(
            contract.E_PARAM, descriptions=[param_error("json", "JSONとして読めません。", raw[:100])]
        ) from None
    if not isinstance(params, dict):
        raise ApiError(
            contract.E_PARAM, descriptions=[param_error("json", "JSONオブジェクトで指定してください。")]
        )
    return params


def _read_files(max_files: int) -> list[ReceivedFile]:
    if not request.content_type or not request.content_type.startswith("multipart/form-data"):
        raise ApiError(
            contract.E_FILE,
            "multipart/form-data で送信してください。",
            [param_error("files[0]", "ファイルがありません。", "", "E_FILE_MISSING")],
        )
    uploads = []
    for index in range(max_files):
        part = contract.FILE_PART.format(index=index)
        storage = request.files.get(part)
        if storage is None:
            break
        if not storage.filename:
            raise ApiError(contract.E_FILE, descriptions=[param_error(part, "ファイル名がありません。")])
        uploads.append(ReceivedFile(part, storage.filename, storage.content_type or "", storage.read()))
    extra = [
        name for name in request.files if name.startswith("files[") and name not in {u.part for u in uploads}
    ]
    if extra:
        raise ApiError(
            contract.E_FILE,
            "ファイルの数または順序が正しくありません。",
            [
                param_error(name, "想定外のファイルです。", request.files[name].filename)
                for name in sorted(extra)
            ],
        )
    if not uploads:
        raise ApiError(
            contract.E_FILE,
            "ファイルがありません。",
            [param_error("files[0]", "ファイルがありません。", "", "E_FILE_MISSING")],
        )
    for upload in uploads:
        check_size(upload)
    return uploads


def _check_csv(upload: ReceivedFile, skip_first: int, faults: FaultSettings) -> None:
    if upload.looks_like_zip:
        raise ApiError(
            contract.E_FILE,
            "CSVファイルを指定してください。",
            [param_error(upload.part, "ZIPではなくCSVが必要です。", upload.filename)],
        )
    if faults.refuse_csv_encoding:
        raise encoding_refusal(upload, "Windows-31J として読めません。")
    parse_csv(upload, decode_csv(upload), skip_first)


def _accept(tenant: Tenant, kind: str, raw: dict, effective: dict, mode: str, uploads, faults: FaultSettings):
    """Store the import and its files, queue it, and answer success."""
    emulator = _state()
    delay = faults.import_delay_s if faults.import_delay_s is not None else emulator.import_delay
    now = utcnow()
    with emulator.store.session.begin() as session:
        imp = Import(
            tenant_id=tenant.id,
            kind=kind,
            params=raw,
            effective=effective,
            mode=mode,
            request_url=request.url,
            received_at=now,
            ready_at=now + timedelta(seconds=delay),
        )
        session.add(imp)
        session.flush()
        folder = emulator.store.data_dir / "files" / str(imp.id)
        folder.mkdir(parents=True, exist_ok=True)
        for index, upload in enumerate(uploads):
            suffix = ".zip" if upload.looks_like_zip else ".csv"
            path = folder / f"{index}{suffix}"
            path.write_bytes(upload.data)
            session.add(
                ImportFile(
                    import_id=imp.id,
                    part=upload.part,
                    filename=upload.filename,
                    content_type=upload.content_type,
                    size=len(upload.data),
                    path=str(path.relative_to(emulator.store.data_dir)),
                )
            )
        import_id = imp.id
    emulator.worker.submit(import_id)
    return jsonify(
        {
            "status": "success",
            "code": "200",
            "importId": import_id,
            "url": request.url,
            "version": "v1",
            "accessTime": _access_time(),
            "linkuri": f"{request.host_url}{tenant.account}/{contract.ADMIN_SEGMENT}/imports/{import_id}",
        }
    )


@bp.post("/<account>/api/v1/customers/imports")
def import_customers(account: str):
    tenant, faults = _guard(account, "import")
    raw = _read_params()
    effective = validate_customer_params(raw)
    with _state().store.session() as session:
        query = select(CustomerImportFormat).where(CustomerImportFormat.tenant_id == tenant.id)
        if effective["settingId"] is None:
            fmt = session.scalar(query.order_by(CustomerImportFormat.setting_id).limit(1))
        else:
            fmt = session.scalar(query.where(CustomerImportFormat.setting_id == effective["settingId"]))
    if fmt is None:
        raise ApiError(
            contract.E_NOT_FOUND,
            "取込設定が見つかりません。",
            [param_error("settingId", "存在しない取込設定IDです。", effective["settingId"])],
        )
    effective.update(settingId=fmt.setting_id, columns=list(fmt.columns))
    uploads = _read_files(max_files=1)
    _check_csv(uploads[0], effective["skipFirst"], faults)
    return _accept(tenant, "customers", raw, effective, "csv", uploads, faults)


@bp.post("/<account>/api/v1/reports/imports")
def import_reports(account: str):
    tenant, faults = _guard(account, "import")
    raw = _read_params()
    effective = validate_report_params(raw, _now_jst())
    with _state().store.session() as session:
        report_type = session.scalar(
            select(ReportType).where(
                ReportType.tenant_id == tenant.id, ReportType.report_type_id == effective["reportTypeId"]
            )
        )
        flow = None
        if effective["approvalFlowId"] is not None:
            flow = session.scalar(
                select(ApprovalFlow).where(
                    ApprovalFlow.tenant_id == tenant.id, ApprovalFlow.flow_id == effective["approvalFlowId"]
                )
            )
    if report_type is None:
        raise ApiError(
            contract.E_NOT_FOUND,
            "帳票種別が見つかりません。",
            [param_error("reportTypeId", "存在しない帳票種別IDです。", effective["reportTypeId"])],
        )
    if effective["approvalFlowId"] is not None and flow is None:
        raise ApiError(
            contract.E_NOT_FOUND,
            "承認フローが見つかりません。",
            [param_error("approvalFlowId", "存在しない承認フローIDです。", effective["approvalFlowId"])],
        )
    if effective["isImmApproval"] == 1 and flow is not None and not flow.skip_approval:
        raise ApiError(
            contract.E_PARAM,
            descriptions=[
                param_error(
                    "approvalFlowId",
                    "承認スキップには「承認をスキップする」が設定された承認フローのみ指定できます。",
                    effective["approvalFlowId"],
                )
            ],
        )
    effective["columns"] = list(report_type.columns)
    uploads = _read_files(max_files=2)
    first = uploads[0]
    if first.looks_like_zip:
        read_pdf_zip(first)
        if effective["isNewIssues"] != contract.NEW_ISSUE:
            raise ApiError(
                contract.E_PARAM,
                descriptions=[
                    param_error(
                        "isNewIssues", "PDF連携では新規発行（1）のみ指定できます。", effective["isNewIssues"]
                    )
                ],
            )
        mode = "pdf"
        if len(uploads) == 2:
            _check_csv(uploads[1], effective["skipFirst"], faults)
            mode = "pdf+csv"
    else:
        if len(uploads) > 1:
            raise ApiError(
                contract.E_FILE,
                "CSVと一緒に送るZIPは files[0] に、CSVは files[1] に指定してください。",
                [param_error("files[1]", "想定外のファイルです。", uploads[1].filename)],
            )
        _check_csv(first, effective["skipFirst"], faults)
        mode = "csv"
    return _accept(tenant, "reports", raw, effective, mode, uploads, faults)


def _import_state(account: str, import_id: str, kind: str):
    tenant, _ = _guard(account, "state")
    imp = None
    if import_id.isdigit():
        with _state().store.session() as session:
            imp = session.get(Import, int(import_id))
    if imp is None or imp.tenant_id != tenant.id or imp.kind != kind or imp.deleted_at is not None:
        raise ApiError(
            contract.E_NOT_FOUND,
            f"取込ID {import_id} は見つかりません。",
            [param_error("importId", "存在しない取込IDです。", import_id)],
        )
    state = imp.state()
    body = {
        "status": "success",
        "code": "200",
        "processStatus": state,
        "importId": imp.id,
        "total": imp.total if state != contract.STATE_ACTIVE else 0,
        "succeeded": imp.succeeded if state != contract.STATE_ACTIVE else 0,
        "failed": imp.failed if state != contract.STATE_ACTIVE else 0,
        "rowErrors": imp.row_errors if state != contract.STATE_ACTIVE else [],
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<account>/api/v1/customers/imports/<import_id>/state")
def customer_import_state(account: str, import_id: str):
    return _import_state(account, import_id, "customers")


@bp.get("/<account>/api/v1/reports/imports/<import_id>/state")
def report_import_state(account: str, import_id: str):
    return _import_state(account, import_id, "reports")


@bp.delete("/<account>/api/v1/reports/imports/<import_id>")
def delete_report_import(account: str, import_id: str):
    tenant, _ = _guard(account)
    if not import_id.isdigit():
        raise ApiError(contract.E_NOT_FOUND, f"取込ID {import_id} は見つかりません。")
    withdraw_report_import(_state().store, tenant.id, int(import_id))
    return jsonify(
        {"status": "success", "code": "200", "importId": int(import_id), "accessTime": _access_time()}
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def customer_json(customer: Customer) -> dict:
    return {
        "customerCode": customer.code,
        "customerName": customer.name,
        "postalCode": customer.postal_code,
        "address1": customer.address1,
        "address2": customer.address2,
        "companyName": customer.company,
        "departmentName": customer.department,
        "personName": customer.person,
        "mailAddress": customer.email,
        "webStatus": customer.web_status,
    }


@bp.get("/<account>/api/v1/customers/")
def search_customers(account: str):
    tenant, _ = _guard(account)
    keyword = request.args.get("keyword", "").strip()
    condition = Customer.tenant_id == tenant.id
    if keyword:
        pattern = f"%{_escape_like(keyword)}%"
        condition = condition & or_(
            Customer.code.like(pattern, escape="\\"),
            Customer.name.like(pattern, escape="\\"),
            Customer.company.like(pattern, escape="\\"),
        )
    with _state().store.session() as session:
        total = session.scalar(select(func.count()).select_from(Customer).where(condition))
        customers = session.scalars(
            select(Customer).where(condition).order_by(Customer.code).limit(contract.CUSTOMER_SEARCH_LIMIT)
        ).all()
    return jsonify(
        {
            "status": "success",
            "code": "200",
            "total": total,
            "customers": [customer_json(c) for c in customers],
            "accessTime": _access_time(),
        }
    )
