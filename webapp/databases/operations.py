"""Business actions on DBs, fields, menus and records, shared by views, CLI, jobs and the demo seed.

Each action validates first, then changes the session and flushes; the caller (view, job, CLI) commits, so a
refused change saves nothing and several actions can form one unit. Deletions and menu changes add their
監査ログ entry to that same transaction; stored files follow it (core/files.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from itertools import islice
from pathlib import Path

from sqlalchemy import delete, func, insert, select, text

from ..core import dependents, files
from ..core.audit import audit, diff
from ..core.dependents import menu_usage
from ..core.errors import DomainError, DomainErrors
from ..extensions import db
from .fieldtypes import (
    OP_EMPTY,
    OP_IN,
    OP_NOT_EMPTY,
    OP_RANGE,
    OPERATOR_LABELS,
    OPTION_MAX,
    FieldValueError,
    kind_of,
    search_text_of,
)
from .models import (
    ORIGIN_INPUT,
    PLACEMENT_DETAIL,
    PLACEMENT_HEADER,
    Database,
    Field,
    Menu,
    MenuColumn,
    MenuFilter,
    Record,
)
from .query import index_expression, operators_for
from .record_counts import records_of


class DatabaseError(DomainError):
    """A refused change of a DB, field, menu or record; `field` names the form field the message belongs to."""


# ---- DBs -----------------------------------------------------------------------------------------------


def _name_taken(model, name: str, exclude_id: int | None = None, **scope) -> bool:
    statement = select(func.count()).select_from(model).where(model.name == name)
    for column, value in scope.items():
        statement = statement.where(getattr(model, column) == value)
    if exclude_id:
        statement = statement.where(model.id != exclude_id)
    return db.session.execute(statement).scalar_one() > 0


def create_database(name: str, description: str = "") -> Database:
    name = name.strip()
    if _name_taken(Database, name):
        raise DatabaseError(f"DB名「{name}」は既に使われています。", "name")
    position = (db.session.execute(select(func.max(Database.position))).scalar() or 0) + 1
    database = Database(name=name, description=description.strip(), position=position)
    db.session.add(database)
    db.session.flush()
    return database


def update_database(database: Database, name: str, description: str) -> None:
    name = name.strip()
    if _name_taken(Database, name, exclude_id=database.id):
        raise DatabaseError(f"DB名「{name}」は既に使われています。", "name")
    database.name = name
    database.description = description.strip()
    db.session.flush()


def delete_database(database: Database) -> None:
    count = db.session.execute(
        select(func.count()).select_from(Record).where(Record.database_id == database.id)
    ).scalar_one()
    audit("delete", "DB", database.id, database.name,
          {"項目": [f"{len(database.fields)}件", ""], "メニュー": [f"{len(database.menus)}件", ""],
           "レコード": [f"{count:,}件", ""]})
    # Records are removed in bulk: loading 100,000 rows to cascade them one by one would take minutes.
    db.session.execute(delete(Record).where(Record.database_id == database.id),
                       execution_options=records_of(database.id))
    db.session.delete(database)
    db.session.flush()


# ---- fields --------------------------------------------------------------------------------------------


@dataclass
class FieldSpec:
    name: str
    field_type: str
    placement: str = PLACEMENT_HEADER
    required: bool = False
    options: list[str] = dc_field(default_factory=list)
    origin: str = ORIGIN_INPUT
    help_text: str = ""
    settings: dict = dc_field(default_factory=dict)


def _check_field_spec(database: Database, spec: FieldSpec, existing: Field | None = None) -> list[str]:
    name = spec.name.strip()
    if _name_taken(Field, name, exclude_id=existing.id if existing else None, database_id=database.id):
        raise DatabaseError(f"項目名「{name}」はこのDBで既に使われています。", "name")
    kind = kind_of(spec.field_type)
    if spec.placement == PLACEMENT_DETAIL and not kind.detail:
        raise DatabaseError(f"{kind.label}は明細項目にできません。ヘッダ項目にしてください。", "placement")
    options: list[str] = []
    if kind.has_options:
        for option in spec.options:
            option = option.strip()
            if not option:
                continue
            if len(option) > OPTION_MAX:
                raise DatabaseError(f"選択肢は{OPTION_MAX}文字以内にしてください: {option[:20]}…", "options")
            if option in options:
                raise DatabaseError(f"選択肢「{option}」が重複しています。", "options")
            options.append(option)
        if not options:
            raise DatabaseError("選択肢を1つ以上入力してください(1行に1つ)。", "options")
    return options


def add_field(database: Database, spec: FieldSpec) -> Field:
    options = _check_field_spec(database, spec)
    position = (
        db.session.execute(select(func.max(Field.position)).where(Field.database_id == database.id)).scalar() or 0
    ) + 1
    new_field = Field(
        database_id=database.id,
        name=spec.name.strip(),
        field_type=kind_of(spec.field_type).name,
        placement=spec.placement,
        required=spec.required and kind_of(spec.field_type).typed,
        options=options,
        origin=spec.origin,
        help_text=spec.help_text.strip(),
        settings=spec.settings,
        position=position,
    )
    db.session.add(new_field)
    db.session.flush()
    create_field_index(new_field)
    return new_field


FIELD_INDEX_PREFIX = "ix_records_f"


def field_index_name(target: Field, descending: bool = False) -> str:
    return f"{FIELD_INDEX_PREFIX}{int(target.id)}{'d' if descending else ''}"


def create_field_index(target: Field) -> None:
    """An expression index on (the field's value, id) over its own DB's records, created with the field.

    Filters, sorts and counts on the field then read the index instead of parsing the JSON of every record
    (100,000 records: 70 ms -> 3 ms). Partial (WHERE database_id = N): writing a record maintains only the
    indexes of its own DB, not every field of every DB. Fields are data in a no-code DB, so these indexes
    follow the fields rather than Alembic migrations (migrations/env.py ignores them).
    """
    expression = index_expression(target)
    if expression is None:
        return
    dialect = db.session.get_bind().dialect
    sql = expression.compile(dialect=dialect, compile_kwargs={"include_table": False, "literal_binds": True})
    where = f"WHERE database_id = {int(target.database_id)}"
    db.session.execute(text(f"CREATE INDEX IF NOT EXISTS {field_index_name(target)} ON records (({sql}), id) {where}"))
    if dialect.name == "postgresql":
        # Lists keep blanks last in both directions. PostgreSQL's B-tree puts NULLs last ascending, so a
        # backward scan gives DESC NULLS *FIRST*: a descending list (newest 請求日 first) would sort the whole
        # DB on every page without this second index. SQLite puts NULLs first, so its one index reads
        # backward for descending lists already.
        db.session.execute(text(
            f"CREATE INDEX IF NOT EXISTS {field_index_name(target, descending=True)} ON records"
            f" (({sql}) DESC NULLS LAST, id DESC) {where}"
        ))


def ensure_field_indexes(rebuild: bool = False) -> int:
    """Create the per-field indexes that are missing (after a restore or an upgrade, on every start); with
    rebuild, drop and create every one. Returns how many fields were seen.

    Only missing ones by default: each index reads its whole DB (100,000 records: ~0.3 s), and a start would
    otherwise rebuild them all."""
    fields = db.session.execute(select(Field)).scalars().all()
    for target in fields:
        if rebuild:
            drop_field_index(target)
        create_field_index(target)
    db.session.flush()
    return len(fields)


def drop_field_index(target: Field) -> None:
    for descending in (False, True):
        db.session.execute(text(f"DROP INDEX IF EXISTS {field_index_name(target, descending)}"))


def update_field(existing: Field, spec: FieldSpec) -> None:
    """Name, required, options, help and settings change; the type and placement are fixed once created."""
    spec.field_type, spec.placement = existing.field_type, existing.placement
    options = _check_field_spec(existing.database, spec, existing)
    existing.name = spec.name.strip()
    existing.required = spec.required and existing.kind.typed
    existing.options = options
    existing.origin = spec.origin
    existing.help_text = spec.help_text.strip()
    existing.settings = spec.settings
    db.session.flush()


def delete_field(existing: Field) -> None:
    audit("delete", "項目", existing.id, f"{existing.database.name} › {existing.name}",
          {"項目タイプ": [existing.type_label, ""]})
    drop_field_index(existing)
    db.session.delete(existing)
    db.session.flush()


def move_field(existing: Field, direction: str) -> None:
    siblings = [f for f in existing.database.fields if f.placement == existing.placement]
    index = siblings.index(existing)
    other_index = index - 1 if direction == "up" else index + 1
    if 0 <= other_index < len(siblings):
        other = siblings[other_index]
        existing.position, other.position = other.position, existing.position
        if existing.position == other.position:  # legacy equal positions: make them distinct
            existing.position += -1 if direction == "up" else 1
        db.session.flush()


# ---- menus ---------------------------------------------------------------------------------------------


@dataclass
class FilterInputs:
    """A filter row's value as typed in the menu form: parsed and checked by create_menu / update_menu."""

    value: str = ""
    value_to: str = ""  # a range's end
    values: list[str] = dc_field(default_factory=list)  # いずれかに一致


@dataclass
class FilterSpec:
    field_id: int
    operator: str
    value: object = None  # the stored value (a typed one: demo seed, tests), unless `inputs` is given
    inputs: FilterInputs | None = None


@dataclass
class MenuSpec:
    name: str
    column_field_ids: list[int]
    filters: list[FilterSpec] = dc_field(default_factory=list)
    sort_field_id: int | None = None
    sort_desc: bool = False
    page_size: int = 50


PAGE_SIZES = (20, 50, 100)


def _check_menu_spec(database: Database, spec: MenuSpec, existing: Menu | None = None) -> None:
    name = spec.name.strip()
    if _name_taken(Menu, name, exclude_id=existing.id if existing else None, database_id=database.id):
        raise DatabaseError(f"メニュー名「{name}」はこのDBで既に使われています。", "name")
    fields_by_id = {f.id: f for f in database.fields}
    if not spec.column_field_ids:
        raise DatabaseError("表示する項目を1つ以上選んでください。", "columns")
    if len(set(spec.column_field_ids)) != len(spec.column_field_ids):
        raise DatabaseError("同じ項目が表示項目に2回選ばれています。", "columns")
    for field_id in spec.column_field_ids:
        if field_id not in fields_by_id:
            raise DatabaseError("このDBにない項目が選ばれています。", "columns")
    for menu_filter in spec.filters:
        target = fields_by_id.get(menu_filter.field_id)
        if target is None:
            raise DatabaseError("このDBにない項目が絞り込み条件に選ばれています。", "filters")
        if menu_filter.operator not in operators_for(target):
            label = OPERATOR_LABELS.get(menu_filter.operator)
            raise DatabaseError(f"項目「{target.name}」には条件「{label}」を使えません。" if label
                                else f"項目「{target.name}」の条件を選んでください。", "filters")
        if menu_filter.inputs is not None:
            menu_filter.value = filter_value_from_inputs(target, menu_filter.operator, menu_filter.inputs)
    if spec.sort_field_id is not None:
        sort_field = fields_by_id.get(spec.sort_field_id)
        if sort_field is None or sort_field.is_detail:
            raise DatabaseError("並び順にはこのDBのヘッダ項目を選んでください。", "sort_field_id")
    if spec.page_size not in PAGE_SIZES:
        raise DatabaseError("表示件数が正しくありません。", "page_size")


def _apply_menu_spec(menu: Menu, spec: MenuSpec) -> None:
    menu.name = spec.name.strip()
    menu.sort_field_id = spec.sort_field_id
    menu.sort_desc = spec.sort_desc
    menu.page_size = spec.page_size
    menu.columns = [MenuColumn(field_id=fid, position=i) for i, fid in enumerate(spec.column_field_ids)]
    menu.filters = [
        MenuFilter(field_id=f.field_id, operator=f.operator, value=f.value, position=i)
        for i, f in enumerate(spec.filters)
    ]


def _filter_text(menu_filter: MenuFilter) -> str:
    target = db.session.get(Field, menu_filter.field_id)
    value = menu_filter.value
    if menu_filter.operator == OP_RANGE:
        low, high = (list(value or []) + [None, None])[:2]
        shown = "〜".join(target.kind.display(v) if v is not None else "" for v in (low, high))
    elif isinstance(value, list):
        shown = "・".join(str(v) for v in value)
    elif value is None:
        shown = ""
    else:
        shown = target.kind.filter_text(value) if not target.is_detail else str(value)
    return " ".join(p for p in (target.name, OPERATOR_LABELS.get(menu_filter.operator, menu_filter.operator), shown) if p)


def menu_snapshot(menu: Menu) -> dict[str, str]:
    """The menu as people read its settings, for the 監査ログ diff."""
    db.session.flush()  # new column and filter rows get their ids and fields
    sort_field = db.session.get(Field, menu.sort_field_id) if menu.sort_field_id else None
    return {
        "メニュー名": menu.name,
        "表示項目": "、".join(db.session.get(Field, c.field_id).name for c in menu.columns),
        "絞り込み条件": "、".join(_filter_text(f) for f in menu.filters) or "なし",
        "並び順": f"{sort_field.name if sort_field else '登録順(レコードID)'} {'降順' if menu.sort_desc else '昇順'}",
        "表示件数": f"{menu.page_size}件",
    }


def create_menu(database: Database, spec: MenuSpec) -> Menu:
    _check_menu_spec(database, spec)
    position = (
        db.session.execute(select(func.max(Menu.position)).where(Menu.database_id == database.id)).scalar() or 0
    ) + 1
    menu = Menu(database_id=database.id, position=position)
    _apply_menu_spec(menu, spec)
    db.session.add(menu)
    shown = menu_snapshot(menu)
    audit("create", "メニュー", menu.id, f"{database.name} › {menu.name}", diff({}, shown))
    db.session.flush()
    return menu


def update_menu(menu: Menu, spec: MenuSpec) -> dict[str, list[str]]:
    """Save the menu; returns the changes as {label: [before, after]} (empty when nothing changed)."""
    _check_menu_spec(menu.database, spec, menu)
    before = menu_snapshot(menu)
    _apply_menu_spec(menu, spec)
    changes = diff(before, menu_snapshot(menu))
    if changes:
        audit("update", "メニュー", menu.id, f"{menu.database.name} › {menu.name}", changes)
    db.session.flush()
    return changes


def delete_menu(menu: Menu) -> None:
    audit("delete", "メニュー", menu.id, f"{menu.database.name} › {menu.name}", diff(menu_snapshot(menu), {}))
    db.session.delete(menu)
    db.session.flush()


def menus_using(target: Field) -> list[Menu]:
    """The menus of the field's DB that show it, filter on it or sort by it."""
    return [menu for menu in target.database.menus
            if target.id == menu.sort_field_id or any(c.field_id == target.id for c in menu.columns)
            or any(f.field_id == target.id for f in menu.filters)]


# A field's dependents include those of every menu that uses it (see core.dependents).
dependents.register("databases", field=lambda target: [d for menu in menus_using(target) for d in menu_usage(menu)])


def filter_value_from_inputs(target: Field, operator: str, inputs: FilterInputs):
    """The stored value of a filter row, checked against the field type (raises DatabaseError)."""
    if operator in (OP_EMPTY, OP_NOT_EMPTY):
        return None
    if operator == OP_IN:
        chosen = [v for v in inputs.values if v in target.options]
        if not chosen:
            raise DatabaseError(f"「{target.name}」の条件にする選択肢を1つ以上選んでください。", "filters")
        return chosen
    try:
        if operator == OP_RANGE:
            low = target.kind.parse(inputs.value, field=target) if inputs.value.strip() else None
            high = target.kind.parse(inputs.value_to, field=target) if inputs.value_to.strip() else None
            if low is None and high is None:
                raise DatabaseError(f"「{target.name}」の範囲の開始か終了を入力してください。", "filters")
            if low is not None and high is not None and low > high:
                raise DatabaseError(f"「{target.name}」の範囲は開始が終了より前になるように入力してください。", "filters")
            return [low, high]
        if not inputs.value.strip() and target.kind.filter_widget != "checkbox":  # unchecked is a value
            raise DatabaseError(f"「{target.name}」の条件の値を入力してください。", "filters")
        if target.is_detail:
            return inputs.value.strip()
        return target.kind.filter_value(inputs.value, target)
    except FieldValueError as exc:
        raise DatabaseError(f"「{target.name}」の条件: {exc}", "filters") from exc


# ---- records -------------------------------------------------------------------------------------------


def build_search_text(data: dict, details: list[dict]) -> str:
    parts = [search_text_of(v) for v in data.values()]
    for row in details:
        parts.extend(search_text_of(v) for v in row.values())
    return " ".join(p for p in parts if p).lower()


def new_record(database: Database, data: dict, details: list[dict], user_id: int | None) -> Record:
    """A record of already checked values added to the session (save_record, the demo seed, tests)."""
    record = Record(
        database_id=database.id,
        data=data,
        details=details,
        search_text=build_search_text(data, details),
        created_by_id=user_id,
        updated_by_id=user_id,
    )
    db.session.add(record)
    return record


def bulk_insert_records(database: Database, rows: Iterable[tuple[dict, list[dict]]], user_id: int | None = None,
                        batch: int = 10_000) -> int:
    """Insert many already-typed (data, details) records (demo seed, imports, benchmarks); streams `rows` in
    batches in the caller's transaction, returns the count."""
    total = 0
    iterator = iter(rows)
    while chunk := list(islice(iterator, batch)):
        db.session.execute(insert(Record), [
            {"database_id": database.id, "data": data, "details": details,
             "search_text": build_search_text(data, details), "created_by_id": user_id, "updated_by_id": user_id}
            for data, details in chunk
        ], execution_options=records_of(database.id))
        total += len(chunk)
    db.session.flush()
    if total >= 10_000:
        # Fresh statistics let the planner choose between a filter's index and the sort field's index.
        # (Both databases count the transaction's own new rows.)
        db.session.execute(text("ANALYZE records"))
    return total


DETAIL_ROWS_MAX = 500


@dataclass
class RecordChanges:
    """What one save sets on a record — from the record form, a CSV row or a bulk update: typed values (parsed by
    the field types), keyed by Field.key."""

    data: dict[str, object] = dc_field(default_factory=dict)  # header values; fields left out keep theirs
    details: list[dict] | None = None  # the 明細 rows (blank rows are dropped); None keeps the rows
    uploads: dict = dc_field(default_factory=dict)  # a ファイル field's key -> its new file (a FileStorage)
    cleared: set[str] = dc_field(default_factory=set)  # ファイル fields whose file is removed


@dataclass
class SavedRecord:
    record: Record
    created: bool
    messages: list[str] = dc_field(default_factory=list)  # for the user: a PDF that could not be made …


def save_record(database: Database, record: Record | None, changes: RecordChanges,
                user_id: int | None) -> SavedRecord:
    """Create (`record` None) or update a record of `database` in the caller's transaction, then flush.

    The one way records are saved from input: the values are checked against the DB's fields (typed header
    fields only, required values and files present, at most DETAIL_ROWS_MAX 明細 rows); uploads are stored
    (and removed again if the caller does not commit), replaced or cleared files are removed once it commits;
    the values people do not type are made last (field types' on_save: PDFs whose inputs changed). Record
    counts follow by themselves (record_counts.py). Raises DatabaseError or DomainErrors naming the form
    inputs (Field.input_name); nothing is changed then.
    """
    _check_record_changes(database, record, changes)
    created = record is None
    data = {} if created else dict(record.data)
    data.update(changes.data)
    details = record.details if changes.details is None and record is not None else [
        dict(row) for row in changes.details or [] if any(v not in (None, "", [], False) for v in row.values())]
    if created:
        record = new_record(database, data, details, user_id)
        db.session.flush()  # the id names the folder of uploaded files
    replaced = []
    for target in database.header_fields:
        if target.key in changes.uploads:
            replaced.append(data.get(target.key))
            data[target.key] = store_upload(record, target, changes.uploads[target.key])
        elif target.key in changes.cleared:
            replaced.append(data.get(target.key))
            data[target.key] = None
    files.remove_after_commit(old.get("path") for old in replaced if isinstance(old, dict))
    # New objects so SQLAlchemy sees the JSON change.
    record.data = data
    record.details = [dict(row) for row in details]
    record.search_text = build_search_text(record.data, record.details)
    record.updated_by_id = user_id
    messages = []
    for target in sorted((f for f in database.fields if not f.kind.typed), key=lambda f: f.kind.save_order):
        messages += target.kind.on_save(target, record)
    db.session.flush()
    return SavedRecord(record, created, messages)


def _check_record_changes(database: Database, record: Record | None, changes: RecordChanges) -> None:
    typed = {f.key: f for f in database.header_fields if f.is_input}
    problems = []
    for key, value in changes.data.items():
        target = typed.get(key)
        if target is None or target.kind.is_file:
            raise DatabaseError("このDBで入力できる項目ではありません。")
        if target.required and (value is None or value == "" or value == []):
            problems.append(DatabaseError("必須項目です。入力してください。", target.input_name))
    for target in typed.values():
        if target.required and not target.kind.is_file and record is None and target.key not in changes.data:
            problems.append(DatabaseError("必須項目です。入力してください。", target.input_name))
        if target.required and target.kind.is_file:
            kept = bool(record and record.data.get(target.key)) and target.key not in changes.cleared
            if target.key not in changes.uploads and not kept:
                problems.append(DatabaseError("必須項目です。ファイルを選んでください。", target.input_name))
    for key in list(changes.uploads) + list(changes.cleared):
        if key not in typed or not typed[key].kind.is_file:
            raise DatabaseError("ファイル項目ではありません。")
    if changes.details is not None:
        detail_keys = {f.key for f in database.detail_fields if f.is_input}
        if len(changes.details) > DETAIL_ROWS_MAX:
            problems.append(DatabaseError(f"明細は{DETAIL_ROWS_MAX}行までです。", "details"))
        if any(set(row) - detail_keys for row in changes.details):
            raise DatabaseError("このDBで入力できる明細項目ではありません。", "details")
    if problems:
        raise DomainErrors(problems) if len(problems) > 1 else problems[0]


def record_label(record: Record) -> str:
    """請求書 › レコード12 (INV-0001): the DB, the id and the first header value, as the 監査ログ names it."""
    first = next((f.kind.display(record.data.get(f.key)) for f in record.database.header_fields
                  if f.kind.record_label and record.data.get(f.key)), "")
    return f"{record.database.name} › レコード{record.id}" + (f"({first})" if first else "")


def delete_record(record: Record) -> None:
    """Delete a record (audited); its stored files go once the caller commits."""
    files.remove_after_commit(v.get("path") for v in record.data.values() if isinstance(v, dict))
    audit("delete", "レコード", record.id, record_label(record), {})
    db.session.delete(record)
    db.session.flush()


# ---- files ---------------------------------------------------------------------------------------------


def store_upload(record: Record, target: Field, storage) -> dict:
    """Save an uploaded file under FILES_DIR and return the value kept in the record. The file is removed again
    if the transaction ends without a commit."""
    original = os.path.basename(storage.filename or "file").replace("\x00", "")[:200] or "file"
    relative = Path("records") / str(record.database_id) / str(record.id) / str(target.id) / f"{uuid.uuid4().hex}"
    size = files.save_upload(relative, storage)
    files.remove_unless_committed([str(relative)])
    return {
        "name": original,
        "path": str(relative),
        "size": size,
        "content_type": storage.mimetype or "application/octet-stream",
    }


def stored_file_path(value) -> Path | None:
    """The file of a file or 自動生成ファイル value, or None (no file, or a path that would leave FILES_DIR)."""
    return files.path_of(value.get("path")) if isinstance(value, dict) else None
