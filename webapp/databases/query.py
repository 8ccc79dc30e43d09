"""Which records a レコード一覧 menu shows: its filters, the keyword search, the sort and paging.

An integration sends exactly what the list shows: runs use `menu_records_statement` and `order_clauses` too.
How a field's value is compared and sorted is its type's (fieldtypes.py); this module builds the statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Select, Text, and_, cast, func, literal_column, select
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..extensions import db
from .fieldtypes import StoredValue
from .models import Field, Menu, MenuFilter, Record
from .record_counts import count_cache


def operators_for(field: Field) -> list[str]:
    """The filter operators a menu may use on `field` (its type decides; 明細 fields have their own)."""
    return list(field.kind.detail_operators if field.is_detail else field.kind.operators)


def _json_item(field: Field):
    """The field's value in Record.data, with the key inlined in the SQL rather than bound.

    An expression index (see index_expression) is only used when the query holds the very same expression, and
    SQLite never matches an expression containing a bound parameter. Field ids are integers: inlining is safe.
    """
    key = int(field.id)
    path = f"'{key}'" if db.engine.dialect.name == "postgresql" else f"""'$."{key}"'"""
    return Record.data[literal_column(path)]


class _Stored(StoredValue):
    """How SQL reads one header field's stored value (fieldtypes.StoredValue), built when a type asks."""

    def __init__(self, field: Field):
        self.field = field

    @cached_property
    def text(self):
        return _json_item(self.field).as_string()

    @cached_property
    def number(self):
        return _json_item(self.field).as_float()

    @cached_property
    def boolean(self):
        return Record.data[self.field.key].as_boolean()

    @cached_property
    def missing(self):
        return Record.data[self.field.key].is_(None)

    @cached_property
    def json_text(self):
        """The value's JSON text: json_extract on SQLite returns arrays/objects as JSON text already."""
        if db.engine.dialect.name == "postgresql":
            return cast(Record.data[self.field.key], Text)
        return func.json_extract(Record.data, f'$."{self.field.key}"')


def index_expression(field: Field):
    """The expression filters and sorts on this field use, or None when it is not worth an index."""
    if field.is_detail or not field.kind.indexed:
        return None
    return field.kind.sort_expression(_Stored(field))


def filter_clause(menu_filter: MenuFilter):
    """One menu filter as a SQL condition."""
    field, op, value = menu_filter.field, menu_filter.operator, menu_filter.value
    if field.is_detail:
        # Detail values live in a list; a substring match on its JSON text is enough for "contains".
        return func.lower(cast(Record.details, Text)).contains(str(value).lower(), autoescape=True)
    return field.kind.filter_clause(_Stored(field), op, value)


def keyword_terms(keyword: str) -> list[str]:
    return [t for t in keyword.lower().split() if t]


def keyword_clause(keyword: str):
    terms = keyword_terms(keyword)
    return and_(*[Record.search_text.contains(t, autoescape=True) for t in terms]) if terms else None


def menu_records_statement(menu: Menu, keyword: str = "") -> Select:
    """Records of the menu's DB passing its filters and the keyword, without ordering."""
    # The DB id inlined, as the per-field partial indexes' WHERE is: the planner can then match them.
    conditions = [Record.database_id == literal_column(str(int(menu.database_id)))]
    for menu_filter in menu.filters:
        clause = filter_clause(menu_filter)
        if clause is not None:
            conditions.append(clause)
    clause = keyword_clause(keyword)
    if clause is not None:
        conditions.append(clause)
    return select(Record).where(*conditions)


def menu_matches_key(menu: Menu, keyword: str = "") -> tuple:
    """What menu_records_statement's result depends on, short of the records themselves (record_counts.py)."""
    filters = tuple((f.field_id, f.operator, json.dumps(f.value, sort_keys=True, ensure_ascii=False))
                    for f in menu.filters)
    return (menu.database_id, filters, tuple(keyword_terms(keyword)))


def order_clauses(menu: Menu, sort_field: Field | None = None, desc: bool | None = None, *, use_index: bool = True):
    field = sort_field or menu.sort_field
    descending = menu.sort_desc if desc is None else desc
    if field is None or field.is_detail:
        return [Record.id.desc() if descending else Record.id.asc()]
    expr = field.kind.sort_expression(_Stored(field))
    if not use_index and db.engine.dialect.name == "sqlite":
        # SQLite's documented way to keep a term off an index: a unary +.
        expr = UnaryExpression(expr, operator=custom_op("+"))
    # NULLs (blank values) last in both directions, as people expect in a list.
    ordered = expr.desc().nulls_last() if descending else expr.asc().nulls_last()
    return [ordered, Record.id.desc() if descending else Record.id.asc()]


@dataclass
class Page:
    records: list[Record]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)


def menu_page(menu: Menu, keyword: str = "", page: int = 1, sort_field: Field | None = None,
              desc: bool | None = None) -> Page:
    # The version is read before the count: the count then includes at least every change up to that version.
    # Without filters or keyword only added or removed records change it (record_counts.py).
    key = menu_matches_key(menu, keyword)
    plain = not (menu.filters or keyword_terms(keyword))
    version = ("added", menu.database.records_added_version) if plain else ("any", menu.database.records_version)
    statement = menu_records_statement(menu, keyword)
    total = count_cache().get_or_count(
        (version, *key),
        lambda: db.session.execute(
            select(func.count()).select_from(statement.with_only_columns(Record.id).subquery())
        ).scalar_one(),
    )
    per_page = menu.page_size or 50
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    # Sort and skip ids only, then load the page's rows: sorting whole rows (JSON, search text) to skip
    # 50,000 of them costs 5x more on SQLite and spills to disk on PostgreSQL.
    offset = (page - 1) * per_page
    # Walking the sort field's index in order pays off only while matches are dense enough to fill the page
    # soon: a record met along the index costs ~5x one read in table order, and SQLite cannot estimate how
    # selective a keyword (LIKE '%…%') is. Without filters or keyword the walk reads the index alone.
    use_index = total > 5 * (offset + per_page) or not (menu.filters or keyword)
    ids = list(
        db.session.execute(
            statement.with_only_columns(Record.id)
            .order_by(*order_clauses(menu, sort_field, desc, use_index=use_index))
            .limit(per_page)
            .offset(offset)
        ).scalars()
    )
    by_id = {r.id: r for r in db.session.execute(select(Record).where(Record.id.in_(ids))).scalars()} if ids else {}
    records = [by_id[i] for i in ids]
    return Page(records=records, total=total, page=page, per_page=per_page)
