"""Login, users and 全体権限一覧."""

from flask import Blueprint

bp = Blueprint("auth", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401
