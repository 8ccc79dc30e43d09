"""The emulator's browser UI (Japanese): what 楽楽明細's admin side would show after the API calls.

Served under ``/{account}/backadmin/`` like the real admin screens, so that pasting this URL into the
product's settings and cutting ``/backadmin…`` off gives the API base URL. No login: a local sandbox.
"""

from __future__ import annotations

from datetime import UTC

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select

from webapp.meisai import contract

from .admin import token_hint
from .models import (
    ApprovalFlow,
    Customer,
    CustomerImportFormat,
    Document,
    Import,
    ImportFile,
    ReportType,
    Tenant,
    utcnow,
)
from .processing import STATE_ISSUED, STATE_PENDING, STATE_SCHEDULED, promote_scheduled
from .tenants import TenantError, get_faults, list_tenants, set_web_status

bp = Blueprint("ui", __name__)
PAGE_SIZE = 100
KIND_LABELS = {"customers": "顧客データ", "reports": "帳票データ"}
MODE_LABELS = {"csv": "CSV", "pdf": "PDF", "pdf+csv": "PDF+CSV"}
STATE_LABELS = {"active": "取込中", "complete": "完了", "error": "エラー"}


def _store():
    return current_app.extensions["meisai_emulator"].store


@bp.app_template_filter("jst")
def jst(moment) -> str:
    if moment is None:
        return ""
    return moment.replace(tzinfo=UTC).astimezone(contract.JST).strftime("%Y/%m/%d %H:%M:%S")


@bp.before_request
def _same_site_posts_only():
    # The UI has no login; refuse state changes a foreign web page could trigger in the user's browser.
    if request.method == "POST" and request.headers.get("Sec-Fetch-Site", "same-origin") not in (
        "same-origin",
        "none",
    ):
        abort(403)


def _tenant(account: str) -> Tenant:
    with _store().session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.account == account))
    if tenant is None:
        abort(404)
    return tenant


def _page() -> int:
    return max(1, request.args.get("page", 1, type=int))


@bp.get("/")
def tenants():
    store = _store()
    rows = []
    with store.session() as session:
        for tenant in list_tenants(store):
            rows.append(
                {
                    "tenant": tenant,
                    "token_hint": token_hint(tenant.token),
                    "imports": session.scalar(select(func.count()).where(Import.tenant_id == tenant.id)),
                    "customers": session.scalar(select(func.count()).where(Customer.tenant_id == tenant.id)),
                    "documents": session.scalar(
                        select(func.count()).where(
                            Document.tenant_id == tenant.id, Document.replaced_at.is_(None)
                        )
                    ),
                    "faults": get_faults(store, tenant.id),
                }
            )
    return render_template("emulator/tenants.html", rows=rows)


@bp.get("/<account>/")
@bp.get("/<account>/backadmin/")
def tenant_home(account: str):
    _tenant(account)
    return redirect(url_for("ui.imports", account=account))


@bp.get("/<account>/backadmin/imports")
def imports(account: str):
    tenant = _tenant(account)
    page = _page()
    with _store().session() as session:
        total = session.scalar(select(func.count()).where(Import.tenant_id == tenant.id))
        rows = session.scalars(
            select(Import)
            .where(Import.tenant_id == tenant.id)
            .order_by(Import.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        files = _files_by_import(session, [i.id for i in rows])
    return render_template(
        "emulator/imports.html",
        tenant=tenant,
        imports=rows,
        files=files,
        page=page,
        pages=_pages(total),
        now=utcnow(),
        **_labels(),
    )


@bp.get("/<account>/backadmin/imports/<int:import_id>")
def import_detail(account: str, import_id: int):
    tenant = _tenant(account)
    promote_scheduled(_store())
    with _store().session() as session:
        imp = session.get(Import, import_id)
        if imp is None or imp.tenant_id != tenant.id:
            abort(404)
        files = _files_by_import(session, [imp.id]).get(imp.id, [])
        documents = session.scalars(
            select(Document).where(Document.import_id == imp.id).order_by(Document.id)
        ).all()
    return render_template(
        "emulator/import_detail.html",
        tenant=tenant,
        imp=imp,
        files=files,
        documents=documents,
        now=utcnow(),
        **_labels(),
    )


@bp.get("/<account>/backadmin/imports/<int:import_id>/files/<int:file_id>")
def download(account: str, import_id: int, file_id: int):
    tenant = _tenant(account)
    with _store().session() as session:
        imp = session.get(Import, import_id)
        stored = session.get(ImportFile, file_id)
    if imp is None or imp.tenant_id != tenant.id or stored is None or stored.import_id != imp.id:
        abort(404)
    return send_file(
        _store().data_dir / stored.path,
        mimetype=stored.content_type or "application/octet-stream",
        as_attachment=True,
        download_name=stored.filename,
    )


@bp.get("/<account>/backadmin/customers")
def customers(account: str):
    tenant = _tenant(account)
    page = _page()
    keyword = request.args.get("q", "").strip()
    condition = Customer.tenant_id == tenant.id
    if keyword:
        condition = condition & (Customer.code.contains(keyword) | Customer.name.contains(keyword))
    with _store().session() as session:
        total = session.scalar(select(func.count()).select_from(Customer).where(condition))
        rows = session.scalars(
            select(Customer)
            .where(condition)
            .order_by(Customer.code)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    return render_template(
        "emulator/customers.html",
        tenant=tenant,
        customers=rows,
        total=total,
        page=page,
        pages=_pages(total),
        keyword=keyword,
        web_statuses=contract.WEB_STATUSES,
    )


@bp.post("/<account>/backadmin/customers/<code>/web-status")
def change_web_status(account: str, code: str):
    _tenant(account)
    try:
        set_web_status(_store(), account, code, request.form.get("status", ""))
    except TenantError:
        abort(400)
    return redirect(url_for("ui.customers", account=account, q=request.form.get("q") or None))


@bp.get("/<account>/backadmin/documents")
def documents(account: str):
    tenant = _tenant(account)
    promote_scheduled(_store())
    page = _page()
    show_history = request.args.get("history") == "1"
    condition = Document.tenant_id == tenant.id
    if not show_history:
        condition = condition & Document.replaced_at.is_(None)
    with _store().session() as session:
        total = session.scalar(select(func.count()).select_from(Document).where(condition))
        rows = session.scalars(
            select(Document)
            .where(condition)
            .order_by(Document.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        type_names = _report_type_names(session, tenant.id)
    return render_template(
        "emulator/documents.html",
        tenant=tenant,
        documents=rows,
        total=total,
        page=page,
        pages=_pages(total),
        show_history=show_history,
        type_names=type_names,
        **_labels(),
    )


@bp.get("/<account>/backadmin/documents/<int:document_id>")
def document_detail(account: str, document_id: int):
    tenant = _tenant(account)
    promote_scheduled(_store())
    with _store().session() as session:
        document = session.get(Document, document_id)
        if document is None or document.tenant_id != tenant.id:
            abort(404)
        # The whole chain of versions of this 帳票No, newest first.
        versions = session.scalars(
            select(Document)
            .where(
                Document.tenant_id == tenant.id,
                Document.report_type_id == document.report_type_id,
                Document.document_no == document.document_no,
            )
            .order_by(Document.id.desc())
        ).all()
        type_names = _report_type_names(session, tenant.id)
    return render_template(
        "emulator/document_detail.html",
        tenant=tenant,
        document=document,
        versions=versions,
        type_names=type_names,
        **_labels(),
    )


@bp.get("/<account>/backadmin/documents/<int:document_id>/pdf")
def document_pdf(account: str, document_id: int):
    tenant = _tenant(account)
    with _store().session() as session:
        document = session.get(Document, document_id)
    if document is None or document.tenant_id != tenant.id or not document.pdf:
        abort(404)
    response = Response(document.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.post("/<account>/backadmin/documents/<int:document_id>/approve")
def approve(account: str, document_id: int):
    """承認: a pending document is issued (or scheduled, when a 予約 date was given at import)."""
    tenant = _tenant(account)
    with _store().session.begin() as session:
        document = session.get(Document, document_id)
        if document is None or document.tenant_id != tenant.id:
            abort(404)
        if document.state == STATE_PENDING and document.replaced_at is None:
            document.state = STATE_ISSUED
            document.issued_at = utcnow()
    return redirect(url_for("ui.document_detail", account=account, document_id=document_id))


@bp.get("/<account>/backadmin/settings")
def settings(account: str):
    tenant = _tenant(account)
    with _store().session() as session:
        formats = session.scalars(
            select(CustomerImportFormat)
            .where(CustomerImportFormat.tenant_id == tenant.id)
            .order_by(CustomerImportFormat.setting_id)
        ).all()
        types = session.scalars(
            select(ReportType).where(ReportType.tenant_id == tenant.id).order_by(ReportType.report_type_id)
        ).all()
        flows = session.scalars(
            select(ApprovalFlow).where(ApprovalFlow.tenant_id == tenant.id).order_by(ApprovalFlow.flow_id)
        ).all()
    return render_template(
        "emulator/settings.html",
        tenant=tenant,
        token_hint=token_hint(tenant.token),
        formats=formats,
        types=types,
        flows=flows,
        faults=get_faults(_store(), tenant.id),
        base_url=f"{request.host_url}{tenant.account}/",
    )


def _files_by_import(session, import_ids: list[int]) -> dict[int, list[ImportFile]]:
    result: dict[int, list[ImportFile]] = {}
    if not import_ids:
        return result
    for stored in session.scalars(
        select(ImportFile).where(ImportFile.import_id.in_(import_ids)).order_by(ImportFile.part)
    ):
        result.setdefault(stored.import_id, []).append(stored)
    return result


def _report_type_names(session, tenant_id: int) -> dict[int, str]:
    return {
        t.report_type_id: t.name
        for t in session.scalars(select(ReportType).where(ReportType.tenant_id == tenant_id))
    }


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _labels() -> dict:
    return {
        "kind_labels": KIND_LABELS,
        "mode_labels": MODE_LABELS,
        "state_labels": STATE_LABELS,
        "STATE_ISSUED": STATE_ISSUED,
        "STATE_PENDING": STATE_PENDING,
        "STATE_SCHEDULED": STATE_SCHEDULED,
    }
