"""タイマー設定: scheduled runs of a 楽楽明細連携設定 (schedule maths, the dispatcher, the scheduler process)."""

from flask import Blueprint

bp = Blueprint("timers", __name__, template_folder="templates")

from . import dependents, routes  # noqa: E402,F401
