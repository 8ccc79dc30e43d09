from __future__ import annotations

from flask import jsonify, render_template

from ..core.clock import utcnow
from ..core.permissions import Permission, permission_required
from ..extensions import limiter
from ..timers.operations import HEARTBEAT_MAX_AGE
from . import bp
from .operations import WORKER_HEARTBEAT_MAX_AGE, WORKER_TTL, check_health, queue_overview, recent_failed_runs


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """No login: load balancers and monitors poll it. 200 when everything is up, 503 when degraded."""
    health = check_health()
    response = jsonify(health.as_json())
    response.status_code = 200 if health.ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/status")
@permission_required(Permission.ADMIN)
def status():
    """稼働状況 (administrators)."""
    now = utcnow()
    health = check_health(now)
    return render_template(
        "health/status.html", health=health, queues=queue_overview(), failed_runs=recent_failed_runs(), now=now,
        worker_max_age=WORKER_HEARTBEAT_MAX_AGE, worker_beat_seconds=WORKER_TTL - 15, heartbeat_max_minutes=int(HEARTBEAT_MAX_AGE.total_seconds() // 60),
    )
