"""Base form: CSRF from flask-wtf, WTForms' own messages in Japanese, and the input rules every form shares.

Every field of a BaseForm, including those of its 明細-style subforms, refuses control characters before its own
validators run (tab and line breaks only in multi-line text: core/text.py). FieldList here reports rows over its
limit as an error instead of dropping them as WTForms' max_entries does. `report_error` shows an operation's
DomainError on the form that caused it.
"""

from __future__ import annotations

from collections.abc import Iterator

import wtforms
from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage
from wtforms.fields.core import Field, UnboundField
from wtforms.i18n import get_translations
from wtforms.utils import unset_value
from wtforms.validators import StopValidation
from wtforms.widgets import TextArea

from .errors import DomainError
from .text import control_character_problem

# Row indices of a FieldList are small numbers; longer ones are not rows a page could have made.
_ROW_INDEX_DIGITS = 6


class NoControlCharacters:
    """First validator of every field: stops with one clear message, so no later rule reads such text."""

    def __init__(self, multiline: bool):
        self.multiline = multiline

    def __call__(self, form, field):
        for text in _texts_of(field):
            problem = control_character_problem(text, multiline=self.multiline)
            if problem:
                raise StopValidation(problem)


def _texts_of(field: Field) -> Iterator[str]:
    values = field.raw_data if field.raw_data else field.data
    if not isinstance(values, list | tuple):
        values = [values]
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, FileStorage) and value.filename:
            yield value.filename


def _leaf_fields(fields) -> Iterator[Field]:
    for field in fields:
        if isinstance(field, wtforms.FormField):
            yield from _leaf_fields(field.form)
        elif isinstance(field, wtforms.FieldList):
            yield from _leaf_fields(field.entries)
        elif field.type != "CSRFTokenField":  # flask-wtf checks the token itself
            yield field


class BaseForm(FlaskForm):
    class Meta:
        locales = ["ja"]

        def get_translations(self, form):
            return get_translations(["ja"])

    def process(self, formdata=None, obj=None, data=None, extra_filters=None, **kwargs):
        """After every field (and subform) is processed: put the control-character rule first on each one."""
        super().process(formdata, obj, data=data, extra_filters=extra_filters, **kwargs)
        for field in _leaf_fields(self):
            if not getattr(field, "_refuses_control_characters", False):
                multiline = isinstance(field.widget, TextArea)
                field.validators = [NoControlCharacters(multiline), *field.validators]
                field._refuses_control_characters = True


class FieldList(wtforms.FieldList):
    """A FieldList whose `max_entries` is a rule the user is told about: more rows posted is an error on the
    form, and the rows stay on the page (up to twice the limit) instead of being cut off silently."""

    def __init__(self, unbound_field: UnboundField, label=None, validators=None, min_entries=0, max_entries=None,
                 **kwargs):
        super().__init__(unbound_field, label, validators, min_entries=min_entries, max_entries=max_entries, **kwargs)
        self.submitted_rows = 0

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.submitted_rows = len(set(self._extract_indices(self.name, formdata))) if formdata else 0
        limit = self.max_entries
        self.max_entries = limit * 2 if limit else limit
        try:
            super().process(formdata, data, extra_filters)
        finally:
            self.max_entries = limit

    def _extract_indices(self, prefix, formdata):
        offset = len(prefix) + 1
        for key in formdata:
            if key.startswith(prefix):
                text = key[offset:].split(self._field_separator, 1)[0]
                if text.isdecimal() and text.isascii() and len(text) <= _ROW_INDEX_DIGITS:
                    yield int(text)

    def validate(self, form, extra_validators=()):
        valid = super().validate(form, extra_validators)
        if self.max_entries and self.submitted_rows > self.max_entries:
            message = (f"{self.label.text}は{self.max_entries}行までです(送信された行: {self.submitted_rows}行)。"
                       "行を減らしてからもう一度確定してください。")
            self.errors.append(message)
            form.form_errors.append(message)
            return False
        return valid


def report_error(form, error: DomainError) -> None:
    """Show a refused action on its form: each problem under the field it names, else at the top of the form."""
    for problem in error.problems:
        target = form._fields.get(problem.field) if problem.field else None
        if target is not None:
            target.errors = [*target.errors, problem.message]
        else:
            form.form_errors.append(problem.message)
