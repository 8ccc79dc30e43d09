"""Tenant operations shared by the CLI, the admin endpoint and the UI: create, seed, fault knobs."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from webapp.meisai import contract

from .models import ApprovalFlow, Customer, CustomerImportFormat, Faults, ReportType, Store, Tenant

DEMO_ACCOUNT = "demo"
# Lower-case letters, digits and hyphens; a leading underscore is reserved for the emulator's own paths.
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TOKEN_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}$")
MAINTENANCE_MODES = ("off", "json", "html")
FAILURE_STATUSES = (500, 502, 504)
# What the count-based knob answers: 503 E_MAINTENANCE, the 200 HTML maintenance page, a 5xx, a 429, or a
# normal answer after ``next_slow_ms``.
NEXT_FAULTS = ("maintenance", "maintenance_html", "500", "502", "504", "429", "slow")
# Which requests the count-based knob counts: every API request, POST …/imports only, or GET …/state only.
NEXT_SCOPES = ("any", "import", "state")


class TenantError(ValueError):
    """A tenant operation was given something unusable; the message is safe to show."""


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def get_tenant(store: Store, account: str) -> Tenant | None:
    with store.session() as session:
        return session.scalar(select(Tenant).where(Tenant.account == account))


def list_tenants(store: Store) -> list[Tenant]:
    with store.session() as session:
        return list(session.scalars(select(Tenant).order_by(Tenant.account)))


def create_tenant(store: Store, account: str, token: str | None = None) -> tuple[Tenant, str]:
    """A new tenant with the default import formats, report types and approval flows; returns its token."""
    if not ACCOUNT_PATTERN.match(account or ""):
        raise TenantError("account must be lower-case letters, digits and hyphens (max 63)")
    token = token or generate_token()
    if not TOKEN_PATTERN.match(token):
        raise TenantError("token must be 8-200 printable ASCII characters without spaces")
    with store.session.begin() as session:
        if session.scalar(select(Tenant).where(Tenant.account == account)):
            raise TenantError(f"tenant {account!r} already exists")
        tenant = Tenant(account=account, token=token)
        session.add(tenant)
        session.flush()
        for setting_id, (name, columns) in contract.DEFAULT_CUSTOMER_IMPORT_FORMATS.items():
            session.add(
                CustomerImportFormat(
                    tenant_id=tenant.id, setting_id=setting_id, name=name, columns=list(columns)
                )
            )
        for report_type_id, (name, columns) in contract.DEFAULT_REPORT_TYPES.items():
            session.add(
                ReportType(
                    tenant_id=tenant.id, report_type_id=report_type_id, name=name, columns=list(columns)
                )
            )
        for flow_id, (name, skip) in contract.DEFAULT_APPROVAL_FLOWS.items():
            session.add(ApprovalFlow(tenant_id=tenant.id, flow_id=flow_id, name=name, skip_approval=skip))
    return tenant, token


def ensure_demo_tenant(store: Store, token: str | None) -> str:
    """The demo tenant exists and answers to ``token`` (kept from an earlier run, or generated, when None)."""
    tenant = get_tenant(store, DEMO_ACCOUNT)
    if tenant is None:
        return create_tenant(store, DEMO_ACCOUNT, token)[1]
    if token and token != tenant.token:
        set_token(store, DEMO_ACCOUNT, token)
        return token
    return tenant.token


def set_token(store: Store, account: str, token: str) -> None:
    if not TOKEN_PATTERN.match(token):
        raise TenantError("token must be 8-200 printable ASCII characters without spaces")
    with store.session.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.account == account))
        if tenant is None:
            raise TenantError(f"no tenant {account!r}")
        tenant.token = token


def add_customer_import_format(
    store: Store, account: str, setting_id: int, name: str, columns: list[str]
) -> None:
    """Add or replace an import format (columns are 楽楽明細 attributes or スキップ, in CSV order)."""
    unknown = [c for c in columns if c not in (*contract.CUSTOMER_ATTRIBUTES, contract.SKIP_COLUMN)]
    if unknown or contract.CUSTOMER_CODE not in columns:
        raise TenantError(f"columns must include 顧客コード and only known attributes (unknown: {unknown})")
    tenant = _require(store, account)
    with store.session.begin() as session:
        existing = session.scalar(
            select(CustomerImportFormat).where(
                CustomerImportFormat.tenant_id == tenant.id, CustomerImportFormat.setting_id == setting_id
            )
        )
        if existing is None:
            session.add(
                CustomerImportFormat(tenant_id=tenant.id, setting_id=setting_id, name=name, columns=columns)
            )
        else:
            existing.name, existing.columns = name, columns


@dataclass
class FaultSettings:
    """A tenant's fault knobs. The first ones hold until changed; the ``next_*`` ones are spent by requests.

    Tests use the count-based knob ("the next 3 state polls answer 503") rather than opening a fault for a
    while and hoping the retries land inside that window; demos and the fault drill use the lasting ones.
    """

    latency_ms: int = 0
    maintenance: str = "off"
    failure_rate: float = 0.0
    failure_status: int = 500
    rate_limit: int = 0
    rate_window_s: float = 60.0
    import_delay_s: float | None = None
    state_latency_ms: int = 0
    refuse_csv_encoding: bool = False
    next_count: int = 0
    next_fault: str = "maintenance"
    next_on: str = "any"
    next_slow_ms: int = 20_000

    def as_dict(self) -> dict:
        return dict(self.__dict__)


FAULT_FIELDS = tuple(FaultSettings().__dict__)


def get_faults(store: Store, tenant_id: int) -> FaultSettings:
    with store.session() as session:
        row = session.get(Faults, tenant_id)
        if row is None:
            return FaultSettings()
        return FaultSettings(**{name: getattr(row, name) for name in FAULT_FIELDS})


def set_faults(store: Store, account: str, changes: dict, reset: bool = False) -> FaultSettings:
    """Change some knobs (unknown names and bad values raise ``TenantError``); ``reset`` clears all first."""
    unknown = set(changes) - set(FAULT_FIELDS)
    if unknown:
        raise TenantError(f"unknown fault knobs: {', '.join(sorted(unknown))}")
    tenant = _require(store, account)
    current = FaultSettings() if reset else get_faults(store, tenant.id)
    for name, value in changes.items():
        setattr(current, name, _fault_value(name, value))
    with store.session.begin() as session:
        row = session.get(Faults, tenant.id) or Faults(tenant_id=tenant.id)
        for name in FAULT_FIELDS:
            setattr(row, name, getattr(current, name))
        session.add(row)
    return current


def take_next_fault(store: Store, tenant_id: int, call: str) -> tuple[str, int] | None:
    """Spend one request of the count-based knob if it applies to ``call`` (import | state | other).

    Returns ``(next_fault, next_slow_ms)`` for this request, or None. One UPDATE … RETURNING, so that two
    requests in flight at once never both take the last one.
    """
    scopes = ["any", call] if call in NEXT_SCOPES else ["any"]
    with store.session.begin() as session:
        row = session.execute(
            update(Faults)
            .where(Faults.tenant_id == tenant_id, Faults.next_count > 0, or_(*(Faults.next_on == s for s in scopes)))
            .values(next_count=Faults.next_count - 1)
            .returning(Faults.next_fault, Faults.next_slow_ms)
        ).first()
    return (row[0], row[1]) if row else None


def _fault_value(name: str, value):
    try:
        if name == "next_fault":
            value = str(value)
            if value not in NEXT_FAULTS:
                raise ValueError
            return value
        if name == "next_on":
            if value not in NEXT_SCOPES:
                raise ValueError
            return value
        if name == "maintenance":
            if value in (True, False):
                value = "json" if value else "off"
            if value not in MAINTENANCE_MODES:
                raise ValueError
            return value
        if name == "import_delay_s":
            return None if value in (None, "") else _non_negative(float(value))
        if name == "failure_rate":
            rate = float(value)
            if not 0 <= rate <= 1:
                raise ValueError
            return rate
        if name == "failure_status":
            status = int(value)
            if status not in FAILURE_STATUSES:
                raise ValueError
            return status
        if name == "refuse_csv_encoding":
            if value in (True, False, 0, 1, "0", "1", "true", "false"):
                return value in (True, 1, "1", "true")
            raise ValueError
        if name in ("latency_ms", "rate_limit", "state_latency_ms", "next_count", "next_slow_ms"):
            return _non_negative(int(value))
        if name == "rate_window_s":
            window = float(value)
            if window <= 0:
                raise ValueError
            return window
    except (TypeError, ValueError):
        raise TenantError(f"bad value for {name}: {value!r}") from None
    raise TenantError(f"unknown fault knob {name}")


def _non_negative(value):
    if value < 0:
        raise ValueError
    return value


def set_web_status(store: Store, account: str, code: str, status: str) -> None:
    """Change a customer's Web利用 (in 楽楽明細 the customer does it by registering on the web)."""
    if status not in contract.WEB_STATUSES:
        raise TenantError(f"Web利用 must be one of {', '.join(contract.WEB_STATUSES)}")
    tenant = _require(store, account)
    with store.session.begin() as session:
        customer = session.scalar(
            select(Customer).where(Customer.tenant_id == tenant.id, Customer.code == code)
        )
        if customer is None:
            raise TenantError(f"no customer {code!r}")
        customer.web_status = status


def _require(store: Store, account: str) -> Tenant:
    tenant = get_tenant(store, account)
    if tenant is None:
        raise TenantError(f"no tenant {account!r}")
    return tenant
