"""DBs, their fields (項目), records and レコード一覧 menus."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.clock import utcnow
from ..core.dbtypes import JSONType
from ..extensions import db
from .fieldtypes import FieldKind, kind_of

PLACEMENT_HEADER = "header"
PLACEMENT_DETAIL = "detail"
PLACEMENT_LABELS = {PLACEMENT_HEADER: "ヘッダ項目", PLACEMENT_DETAIL: "明細項目"}

ORIGIN_INPUT = "input"
ORIGIN_LINK = "link"
ORIGIN_DEPENDENT = "dependent"
ORIGIN_LABELS = {ORIGIN_INPUT: "通常項目", ORIGIN_LINK: "リンク先のDB項目", ORIGIN_DEPENDENT: "従属項目"}


class Database(db.Model):
    __tablename__ = "databases"
    # Ids are never reused on SQLite either: links, history and stored values keep pointing at the right row.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # Bumped in every transaction that changes this DB's records (see record_counts.py): a count cached for
    # one version is exact for every request that reads that version.
    records_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Bumped only when records are added or removed (what a list without filters or keyword depends on).
    records_added_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    fields: Mapped[list[Field]] = relationship(
        back_populates="database", order_by="Field.position", cascade="all, delete-orphan"
    )
    menus: Mapped[list[Menu]] = relationship(
        back_populates="database", order_by="Menu.position", cascade="all, delete-orphan"
    )

    @property
    def header_fields(self) -> list[Field]:
        return [f for f in self.fields if f.placement == PLACEMENT_HEADER]

    @property
    def detail_fields(self) -> list[Field]:
        return [f for f in self.fields if f.placement == PLACEMENT_DETAIL]


class Field(db.Model):
    __tablename__ = "fields"
    __table_args__ = (
        UniqueConstraint("database_id", "name", name="uq_fields_database_id_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    field_type: Mapped[str] = mapped_column(String(20), nullable=False)
    placement: Mapped[str] = mapped_column(String(10), nullable=False, default=PLACEMENT_HEADER)
    origin: Mapped[str] = mapped_column(String(10), nullable=False, default=ORIGIN_INPUT)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    options: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    # Type-specific settings, e.g. the document template of a 自動生成ファイル field.
    settings: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    help_text: Mapped[str] = mapped_column(String(500), nullable=False, default="")

    database: Mapped[Database] = relationship(back_populates="fields")

    @property
    def key(self) -> str:
        """The key of this field's value in a record's JSON."""
        return str(self.id)

    @property
    def kind(self) -> FieldKind:
        """The field's type object (fieldtypes.py): every per-type rule is asked of it."""
        return kind_of(self.field_type)

    @property
    def input_name(self) -> str:
        """The name of this field's input in the record form (and of the DomainError field naming it)."""
        return f"f{self.id}"

    @property
    def type_label(self) -> str:
        return self.kind.label

    @property
    def is_detail(self) -> bool:
        return self.placement == PLACEMENT_DETAIL

    @property
    def is_input(self) -> bool:
        """Whether people type this value (link and dependent fields are filled from elsewhere, and some types are
        made by the app)."""
        return self.origin == ORIGIN_INPUT and self.kind.typed


class Record(db.Model):
    __tablename__ = "records"
    __table_args__ = (Index("ix_records_database_id_id", "database_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"), nullable=False)
    # Header values keyed by str(field.id).
    data: Mapped[dict] = mapped_column(JSONType, nullable=False, default=dict)
    # 明細 rows: a list of dicts keyed by str(field.id).
    details: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    # Lower-cased text of every value, for keyword search without parsing JSON per row.
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    database: Mapped[Database] = relationship()

    def value(self, field: Field):
        return self.data.get(field.key)


MENU_TYPE_RECORD_LIST = "record_list"
MENU_TYPE_LABELS = {MENU_TYPE_RECORD_LIST: "レコード一覧"}


class Menu(db.Model):
    __tablename__ = "menus"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    menu_type: Mapped[str] = mapped_column(String(20), nullable=False, default=MENU_TYPE_RECORD_LIST)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sort_field_id: Mapped[int | None] = mapped_column(ForeignKey("fields.id", ondelete="SET NULL"))
    sort_desc: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    page_size: Mapped[int] = mapped_column(Integer, nullable=False, default=50)

    database: Mapped[Database] = relationship(back_populates="menus")
    sort_field: Mapped[Field | None] = relationship()
    columns: Mapped[list[MenuColumn]] = relationship(
        order_by="MenuColumn.position", cascade="all, delete-orphan"
    )
    filters: Mapped[list[MenuFilter]] = relationship(
        order_by="MenuFilter.position", cascade="all, delete-orphan"
    )

    @property
    def column_fields(self) -> list[Field]:
        return [c.field for c in self.columns]


class MenuColumn(db.Model):
    __tablename__ = "menu_columns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    menu_id: Mapped[int] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"), nullable=False)
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    field: Mapped[Field] = relationship(lazy="joined")


class MenuFilter(db.Model):
    __tablename__ = "menu_filters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    menu_id: Mapped[int] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"), nullable=False)
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"), nullable=False)
    operator: Mapped[str] = mapped_column(String(20), nullable=False)
    # Operator-specific: a string, [from, to] for ranges, a list of options for "in".
    value: Mapped[object] = mapped_column(JSONType, nullable=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    field: Mapped[Field] = relationship(lazy="joined")
