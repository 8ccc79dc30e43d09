"""Row edits of repeating form parts (表示項目, 絞り込み条件, 明細行, レコード更新, 処理) before 確定.

The page posts the whole form with `action` = "add_<part>", "remove_<part>:<i>", "up_<part>:<i>" or
"down_<part>:<i>"; the server applies the edit to the submitted rows and renders the form again, saving nothing.
"""

from __future__ import annotations

from collections.abc import Callable


def edit_rows(rows: list, action: str, part: str, new_row: Callable[[], object] | None = None,
              max_rows: int | None = None) -> bool:
    """Apply `action` to `rows` in place when it names `part`; returns whether it did."""
    verb, _, index_text = action.partition(":")
    index = int(index_text) if index_text.isdecimal() and len(index_text) <= 6 else -1
    if verb == f"add_{part}":
        if new_row is not None and (max_rows is None or len(rows) < max_rows):
            rows.append(new_row())
        return True
    if verb == f"remove_{part}" and 0 <= index < len(rows):
        rows.pop(index)
        return True
    if verb == f"up_{part}" and 0 < index < len(rows):
        rows[index - 1], rows[index] = rows[index], rows[index - 1]
        return True
    if verb == f"down_{part}" and 0 <= index < len(rows) - 1:
        rows[index + 1], rows[index] = rows[index], rows[index + 1]
        return True
    return False
