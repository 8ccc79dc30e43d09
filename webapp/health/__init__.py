"""稼働状況: /healthz for load balancers and monitors, and the administrators' status page."""

from flask import Blueprint

bp = Blueprint("health", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401
