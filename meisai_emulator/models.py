"""The emulator's own SQLite database: tenants, their settings and fault knobs, imports, customers, documents.

Plain SQLAlchemy (not Flask-SQLAlchemy) so that the import worker thread and the CLI use the same ``Store``
without an app context. Times are stored as naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from webapp.meisai import contract


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64), unique=True)
    # Kept in the clear: this is a local sandbox and the demo token is printed at every start anyway.
    token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CustomerImportFormat(Base):
    __tablename__ = "customer_import_formats"
    __table_args__ = (UniqueConstraint("tenant_id", "setting_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    setting_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    columns: Mapped[list] = mapped_column(JSON)


class ReportType(Base):
    __tablename__ = "report_types"
    __table_args__ = (UniqueConstraint("tenant_id", "report_type_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    report_type_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    columns: Mapped[list] = mapped_column(JSON)


class ApprovalFlow(Base):
    __tablename__ = "approval_flows"
    __table_args__ = (UniqueConstraint("tenant_id", "flow_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    flow_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    skip_approval: Mapped[bool] = mapped_column(Boolean, default=False)  # 「承認をスキップする」


class Faults(Base):
    """Per-tenant fault knobs. A missing row means no faults."""

    __tablename__ = "faults"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)  # added to every API answer
    maintenance: Mapped[str] = mapped_column(String(10), default="off")  # off | json (503) | html (200)
    failure_rate: Mapped[float] = mapped_column(Float, default=0.0)  # share of API calls answered 5xx
    failure_status: Mapped[int] = mapped_column(Integer, default=500, server_default="500")  # 500 | 502 | 504
    rate_limit: Mapped[int] = mapped_column(Integer, default=0)  # requests per window; 0 = unlimited
    rate_window_s: Mapped[float] = mapped_column(Float, default=60.0)
    import_delay_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # None → server default
    state_latency_ms: Mapped[int] = mapped_column(Integer, default=0)  # extra, on state calls only
    # Every CSV is answered as not Windows-31J (E_FILE / E_FILE_ENCODING), as for a file 楽楽明細 cannot read.
    refuse_csv_encoding: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Count-based: the next `next_count` API requests matching `next_on` get `next_fault`; each one spends one.
    next_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_fault: Mapped[str] = mapped_column(String(20), default="maintenance", server_default=text("'maintenance'"))
    next_on: Mapped[str] = mapped_column(String(10), default="any", server_default=text("'any'"))  # any | import | state
    next_slow_ms: Mapped[int] = mapped_column(Integer, default=20_000, server_default="20000")  # for next_fault=slow


class Import(Base):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # customers | reports
    params: Mapped[dict] = mapped_column(JSON)  # as received (after JSON parsing)
    effective: Mapped[dict] = mapped_column(JSON)  # validated values with defaults applied
    mode: Mapped[str] = mapped_column(String(10), default="csv")  # csv | pdf | pdf+csv
    request_url: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ready_at: Mapped[datetime] = mapped_column(DateTime)  # not reported as done before this
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(10), nullable=True)  # complete | error
    total: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    row_errors: Mapped[list] = mapped_column(JSON, default=list)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    def state(self, now: datetime | None = None) -> str:
        """What the state API reports: active until processed and the configured delay has passed."""
        now = now or utcnow()
        if self.result is None or now < self.ready_at:
            return "active"
        return self.result


class ImportFile(Base):
    __tablename__ = "import_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"), index=True)
    part: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)  # relative to the data dir


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    address1: Mapped[str] = mapped_column(String(255), default="")
    address2: Mapped[str] = mapped_column(String(255), default="")
    company: Mapped[str] = mapped_column(String(255), default="")
    department: Mapped[str] = mapped_column(String(255), default="")
    person: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    web_status: Mapped[str] = mapped_column(String(10), default=contract.WEB_STATUS_UNUSED)
    import_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# 楽楽明細 attribute → Customer column
CUSTOMER_COLUMNS = {
    "顧客コード": "code",
    "顧客名": "name",
    "郵便番号": "postal_code",
    "住所1": "address1",
    "住所2": "address2",
    "会社名": "company",
    "部署名": "department",
    "担当者名": "person",
    "メールアドレス": "email",
    "Web利用": "web_status",
}


class Document(Base):
    """One version of a document (帳票). A replacement (差替) adds a version and marks the old one replaced."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    report_type_id: Mapped[int] = mapped_column(Integer)
    document_no: Mapped[str] = mapped_column(String(100), index=True)
    customer_code: Mapped[str] = mapped_column(String(100))
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"), index=True)
    state: Mapped[str] = mapped_column(String(10))  # 承認待ち | 予約 | 発行済
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    issued_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    approval_flow_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    header: Mapped[dict] = mapped_column(JSON, default=dict)  # 取引年月日, 取引金額, 取引先, 件名 …
    lines: Mapped[list] = mapped_column(JSON, default=list)  # one dict per 明細 row
    pdf_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    is_replacement: Mapped[bool] = mapped_column(Boolean, default=False)
    send_mail: Mapped[bool] = mapped_column(Boolean, default=False)
    post_request: Mapped[bool] = mapped_column(Boolean, default=False)
    send_fax: Mapped[bool] = mapped_column(Boolean, default=False)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), nullable=True)
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # set on the old version
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Store:
    """The engine and session factory over ``<data_dir>/meisai_emulator.sqlite3``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "files").mkdir(exist_ok=True)
        self.engine = create_engine(
            f"sqlite:///{self.data_dir / 'meisai_emulator.sqlite3'}",
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()


def _add_missing_columns(engine) -> None:
    """Bring a data dir made by an older emulator up to date: add new columns in place.

    A sandbox database needs no migration tool; new columns always come with a server default.
    """
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            present = {row[1] for row in connection.exec_driver_sql(f'PRAGMA table_info("{table.name}")')}
            for column in table.columns:
                if column.name in present:
                    continue
                ddl = column.type.compile(dialect=engine.dialect)
                default = f" DEFAULT {column.server_default.arg}" if column.server_default is not None else ""
                connection.exec_driver_sql(
                    f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {ddl}{default}'
                )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the UI and the API read while the import worker writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
