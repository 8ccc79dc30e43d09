"""Request parameters the views may trust: ids that fit the database, query strings without control characters.

- `<int:…>` in every URL rule is bounded to the database's integer range (PostgreSQL `integer`): a larger id
  matches no route, so it is a 404 and never an overflow in the query.
- `request.args.get(name, type=int)` and `request.form.get(name, type=int)` clamp to the same range: a huge
  `?page=` is the last page, a huge `?sort=` or `setting_id` an id that does not exist.
- A query parameter holding a control character, tab or line break is refused with a Japanese 400 page
  (form fields get their own message on the field: core/forms.py).
"""

from __future__ import annotations

from flask import Flask, Request, abort, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from .text import control_character_problem

# Every id and integer column is a 32-bit `integer` on PostgreSQL; SQLite's are wider.
DB_INT_MAX = 2**31 - 1
_DB_INT_DIGITS = len(str(DB_INT_MAX))

QUERY_MESSAGE = ("URLまたは検索条件に使えない文字(改行・タブ・NULなどの制御文字)が含まれています。"
                 "入力内容を確認して、もう一度お試しください。")


def _digits_at_most(limit: int) -> str:
    """A regex of the digit strings whose value is at most `limit` (so that no rule's path matches a larger id:
    a converter that refused it only after matching would turn a GET into a 405 where a POST rule shares the path)."""
    text = str(limit)
    width = len(text)
    options = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for position, digit in enumerate(text):
        if digit != "0":
            rest = width - position - 1
            options.append(f"{text[:position]}[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(text)
    return "(?:" + "|".join(options) + ")"


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` limited to the ids the database can hold: ASCII digits up to DB_INT_MAX, a larger id is a 404."""

    regex = _digits_at_most(DB_INT_MAX)

    def __init__(self, map, fixed_digits=0, min=None, max=DB_INT_MAX, signed=False):  # noqa: A002 (werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def clamped_int(text: str) -> int:
    """An integer parameter in ASCII digits, clamped to the database's range; ValueError when it is not one."""
    text = text.strip()
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    if not digits.isascii() or not digits.isdecimal():
        raise ValueError("not an integer")
    digits = digits.lstrip("0") or "0"
    return sign * (DB_INT_MAX if len(digits) > _DB_INT_DIGITS else min(DB_INT_MAX, int(digits)))


def parse_id(text: str | None) -> int | None:
    """A positive id posted as text (clamped like query parameters, so a huge one matches no row), else None."""
    try:
        value = clamped_int(text or "")
    except ValueError:
        return None
    return value if value > 0 else None


class Parameters(ImmutableMultiDict):
    """request.args / request.form: `get(…, type=int)` clamps to the database's integer range."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's signature)
        return super().get(key, default, clamped_int if type is int else type)


class AppRequest(Request):
    parameter_storage_class = Parameters


def refuse_control_characters_in_query() -> None:
    """before_request: a query string with a control character, tab or line break is a 400 with a message."""
    for key, values in request.args.lists():
        if any(control_character_problem(text) for text in (key, *values)):
            abort(400, description=QUERY_MESSAGE)


def register_parameter_rules(app: Flask) -> None:
    """Install the bounded `int` converter (before any blueprint adds its rules), the request class and the
    query guard."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.request_class = AppRequest
    app.before_request(refuse_control_characters_in_query)
