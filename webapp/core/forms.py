"""Base form: CSRF from flask-wtf, WTForms' own messages in Japanese."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms.i18n import get_translations


class BaseForm(FlaskForm):
    class Meta:
        locales = ["ja"]

        def get_translations(self, form):
            return get_translations(["ja"])
