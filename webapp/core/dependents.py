"""What depends on a menu, a field, a DB or a 楽楽明細連携設定 — answered by the modules that own the dependents.

The permission policy (core/permissions.py) asks whether changing a menu or a field changes what an integration
or a timer sends (then the change needs システム連携 as well as DB設定); the menu screens name those dependents
in their messages; deleting a 楽楽明細連携設定 asks whether a run history keeps its name. core imports no feature
module, so the owners register finders here when they are imported (create_app imports every module):
integrations for its 楽楽明細連携設定, timers for its タイマー, runs for the run history, databases for the menus
that show a field.

Subjects: "menu", "field", "database" (what integrations and timers send), "setting" (what keeps a setting's
name after it is deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

SUBJECTS = ("menu", "field", "database", "setting")

# Messages name the 楽楽明細連携設定 first, then the タイマー.
ORDER_SETTING = 0
ORDER_TIMER = 1
ORDER_HISTORY = 2


@dataclass(frozen=True)
class Dependent:
    """One thing that depends on the subject, as messages name it: 楽楽明細連携「A」, タイマー「A」(ON・毎日 09:00)."""

    key: tuple  # identity: a dependent found twice is named once
    label: str
    order: int = ORDER_SETTING


class Usage:
    """The dependents of a subject, each once, settings before timers; false when there are none."""

    def __init__(self, dependents: Iterable[Dependent] = ()):
        self._items: dict[tuple, Dependent] = {}
        self.extend(dependents)

    def extend(self, dependents: Iterable[Dependent]) -> None:
        for dependent in dependents:
            self._items.setdefault(dependent.key, dependent)

    def __iter__(self) -> Iterator[Dependent]:
        return iter(sorted(self._items.values(), key=lambda d: d.order))  # stable: found order within a kind

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def describe(self) -> str:
        """楽楽明細連携「A」、タイマー「A」(ON・毎日 09:00) — as a save message names them."""
        return "、".join(d.label for d in self)


Finder = Callable[[object], Iterable[Dependent]]
_finders: dict[str, dict[str, Finder]] = {subject: {} for subject in SUBJECTS}


def register(owner: str, **finders: Finder) -> None:
    """Register `owner`'s finder per subject (menu=…, field=…); registering again replaces, never duplicates."""
    for subject, finder in finders.items():
        if subject not in _finders:
            raise ValueError(f"unknown subject {subject!r}: one of {', '.join(SUBJECTS)}")
        _finders[subject][owner] = finder


def usage_of(subject: str, target) -> Usage:
    """Every registered dependent of `target` (a menu, field, DB or setting)."""
    usage = Usage()
    for finder in _finders[subject].values():
        usage.extend(finder(target))
    return usage


def menu_usage(menu) -> Usage:
    """The integrations in the menu's サブメニュー and the timers whose メニュー設定 it is."""
    return usage_of("menu", menu)


def field_usage(field) -> Usage:
    """Who sends something that depends on `field`: through a menu they use (column, filter, sort), as a
    レコード更新 target or the 連携対象PDF, or a timer without メニュー設定 (it sends every field of the DB)."""
    return usage_of("field", field)


def database_usage(database) -> Usage:
    """The 楽楽明細連携設定 of a DB (deleted with it)."""
    return usage_of("database", database)
