"""DBs, fields, records and レコード一覧 menus."""

from flask import Blueprint

bp = Blueprint("databases", __name__, template_folder="templates")

from . import record_routes, routes  # noqa: E402,F401
