"""Which characters text may hold, in one place: form inputs, query parameters, log lines and mail headers.

Control characters (C0, DEL, C1) never belong in business data: PostgreSQL refuses NUL in text, 楽楽明細 rejects
a whole CSV file for one, and CR/LF in a name can forge a mail header or a log line. Multi-line text keeps
tab and line breaks; single-line text (names, ids, search words, every query parameter) keeps neither.
"""

from __future__ import annotations

import re

CONTROL_MESSAGE = "制御文字(NULなど、画面に見えない特殊な文字)が含まれています。その文字を取り除いて入力し直してください。"
SINGLE_LINE_MESSAGE = "改行は入力できません(1行の項目です。タブも使えません)。"

# C0 except tab/LF/CR, DEL and C1: refused everywhere.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What only multi-line text may hold (U+2028/2029 are line breaks to many readers of text).
_LINE_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def control_character_problem(text: str, multiline: bool = False) -> str | None:
    """The Japanese message for a text that holds a character it may not, else None."""
    if _CONTROL.search(text):
        return CONTROL_MESSAGE
    if not multiline and _LINE_BREAKS.search(text):
        return SINGLE_LINE_MESSAGE
    return None


def escape_control_characters(text: str) -> str:
    r"""`text` on one line for a log: CR, LF, tab as \r \n \t, other control characters as \xNN or \uNNNN."""
    return _ANY_CONTROL.sub(lambda m: _ESCAPES.get(m.group(), m.group().encode("unicode_escape").decode()), text)


def one_line(text: str) -> str:
    """`text` with every control character and line break turned into a space (for a mail header)."""
    return _ANY_CONTROL.sub(" ", text)
