"""The emulator's own control surface (not part of the 楽楽明細 API): tenants, fault knobs, inspection.

Reachable from loopback only, or with ``X-Emulator-Admin-Token`` when the server was started with an admin
token. Also the no-op endpoint the benchmark posts raw bytes to.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from .models import Document, Import, ImportFile, Tenant
from .processing import promote_scheduled
from .tenants import (
    TenantError,
    add_customer_import_format,
    create_tenant,
    get_faults,
    get_tenant,
    list_tenants,
    set_faults,
    set_web_status,
)

bp = Blueprint("admin", __name__, url_prefix="/_admin")
noop_bp = Blueprint("noop", __name__)
ADMIN_TOKEN_HEADER = "X-Emulator-Admin-Token"


def _store():
    return current_app.extensions["meisai_emulator"].store


@bp.before_request
def _only_admins():
    configured = current_app.config.get("ADMIN_TOKEN")
    if configured:
        given = request.headers.get(ADMIN_TOKEN_HEADER, "")
        if hmac.compare_digest(given.encode(), configured.encode()):
            return None
        return jsonify({"error": f"{ADMIN_TOKEN_HEADER} required"}), 403
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return jsonify({"error": "admin endpoints answer loopback clients only"}), 403
    return None


@bp.errorhandler(TenantError)
def _tenant_error(error: TenantError):
    return jsonify({"error": str(error)}), 400


def _tenant_or_404(account: str) -> Tenant:
    tenant = get_tenant(_store(), account)
    if tenant is None:
        raise TenantError(f"no tenant {account!r}")
    return tenant


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise TenantError("send a JSON object with Content-Type: application/json")
    return data


def base_url_of(account: str) -> str:
    return f"{request.host_url}{account}/"


@bp.get("/tenants")
def tenants():
    return jsonify(
        [{"account": t.account, "baseUrl": base_url_of(t.account)} for t in list_tenants(_store())]
    )


@bp.post("/tenants")
def new_tenant():
    data = _body()
    tenant, token = create_tenant(_store(), str(data.get("account", "")), data.get("token"))
    return jsonify({"account": tenant.account, "baseUrl": base_url_of(tenant.account), "token": token}), 201


@bp.route("/tenants/<account>/faults", methods=["GET", "POST"])
def faults(account: str):
    tenant = _tenant_or_404(account)
    if request.method == "GET":
        return jsonify(get_faults(_store(), tenant.id).as_dict())
    data = _body()
    reset = bool(data.pop("reset", False))
    return jsonify(set_faults(_store(), account, data, reset=reset).as_dict())


@bp.post("/tenants/<account>/import-formats")
def import_format(account: str):
    data = _body()
    add_customer_import_format(
        _store(),
        account,
        int(data.get("settingId", 0)),
        str(data.get("name", "")),
        list(data.get("columns", [])),
    )
    return jsonify({"ok": True})


@bp.post("/tenants/<account>/customers/<code>/web-status")
def web_status(account: str, code: str):
    set_web_status(_store(), account, code, str(_body().get("status", "")))
    return jsonify({"ok": True})


@bp.get("/tenants/<account>/documents")
def documents(account: str):
    """Every version of every document, oldest first (replaced versions carry ``replacedAt``)."""
    tenant = _tenant_or_404(account)
    promote_scheduled(_store())
    with _store().session() as session:
        rows = session.scalars(select(Document).where(Document.tenant_id == tenant.id).order_by(Document.id))
        return jsonify([document_json(d) for d in rows])


def _iso(moment) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def document_json(d: Document) -> dict:
    iso = _iso
    return {
        "id": d.id,
        "reportTypeId": d.report_type_id,
        "documentNo": d.document_no,
        "customerCode": d.customer_code,
        "importId": d.import_id,
        "state": d.state,
        "scheduledAt": iso(d.scheduled_at),
        "issuedAt": iso(d.issued_at),
        "approvalFlowId": d.approval_flow_id,
        "header": d.header,
        "lines": d.lines,
        "pdfName": d.pdf_name,
        "pdfSize": len(d.pdf) if d.pdf else 0,
        "isReplacement": d.is_replacement,
        "sendMail": d.send_mail,
        "postRequest": d.post_request,
        "sendFax": d.send_fax,
        "replacesId": d.replaces_id,
        "replacedAt": iso(d.replaced_at),
    }


@bp.get("/tenants/<account>/imports")
def imports(account: str):
    tenant = _tenant_or_404(account)
    with _store().session() as session:
        rows = session.scalars(select(Import).where(Import.tenant_id == tenant.id).order_by(Import.id)).all()
        files = session.scalars(
            select(ImportFile).where(ImportFile.import_id.in_([i.id for i in rows])).order_by(ImportFile.id)
        ).all()
    by_import: dict[int, list] = {}
    for f in files:
        by_import.setdefault(f.import_id, []).append(
            {"part": f.part, "filename": f.filename, "contentType": f.content_type, "size": f.size}
        )
    return jsonify(
        [
            {
                "importId": i.id,
                "kind": i.kind,
                "mode": i.mode,
                "params": i.params,
                "effective": {k: v for k, v in i.effective.items() if k != "columns"},
                "state": i.state(),
                "receivedAt": _iso(i.received_at),
                "processedAt": _iso(i.processed_at),
                "deleted": i.deleted_at is not None,
                "files": by_import.get(i.id, []),
            }
            for i in rows
        ]
    )


@noop_bp.route("/_noop/<path:_rest>", methods=["GET", "POST", "PUT", "DELETE"])
def noop(_rest: str):
    """Reads the whole body and answers like an accepted import: the benchmark's raw-transfer yardstick."""
    size = 0
    while chunk := request.stream.read(1 << 16):
        size += len(chunk)
    return jsonify({"status": "success", "code": "200", "importId": 0, "received": size, "version": "v1"})


def token_hint(token: str) -> str:
    """What the UI shows of a token: never the token, only its end."""
    return f"…{token[-4:]}" if len(token) >= 16 else "（短いトークン）"
