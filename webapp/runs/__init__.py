"""Running integrations: the run dialog, jobs, システム連携状況確認, the mail outbox and the CLI."""

from flask import Blueprint

bp = Blueprint("runs", __name__, template_folder="templates")

from . import dependents, routes  # noqa: E402,F401
