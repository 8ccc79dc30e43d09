"""The one base of refused actions: a Japanese message shown as is, optionally for one input of a form.

Operations raise a DomainError (or a module's subclass: DatabaseError, IntegrationError, UserError …) whose
`field` is the name of the form field the message belongs to; views hand it to core.forms.report_error, which
puts it under that field or at the top of the form. Nothing else maps errors to forms.
"""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(ValueError):
    """A refused action. `field` names the form field the message belongs to (None: the whole form or page)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def problems(self) -> list[DomainError]:
        """Each problem on its own (one here; several in DomainErrors)."""
        return [self]


class DomainErrors(DomainError):
    """Several problems found at once (every missing required file of a record, every bad cell of a CSV row)."""

    def __init__(self, problems: Iterable[DomainError]):
        found = [p for problem in problems for p in problem.problems]
        super().__init__("\n".join(p.message for p in found))
        self._problems = found

    @property
    def problems(self) -> list[DomainError]:
        return list(self._problems)
