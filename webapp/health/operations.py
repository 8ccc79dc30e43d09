"""What is alive: database, Redis, RQ workers, the timer scheduler; queue lengths and recent failed runs.

Checks report short fixed reasons only, never exception text: /healthz is public and an error message may
carry a host name, a URL or a password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select, text

from ..core.clock import as_utc, utcnow
from ..extensions import db
from ..runs.models import Run, RunStatus
from ..timers.operations import HEARTBEAT_MAX_AGE, last_heartbeat
from ..timers.scheduler import dispatch_queue_name

log = logging.getLogger(__name__)

# worker.py registers its workers with this TTL: an idle worker beats every TTL - 15 s (rq's blocking
# dequeue), a busy one every 30 s. Older than TTL + 60 s (rq's own key expiry), the worker is dead.
WORKER_TTL = 120
WORKER_HEARTBEAT_MAX_AGE = WORKER_TTL + 60
FAILED_RUN_STATUSES = (RunStatus.ERROR, RunStatus.PARTIAL, RunStatus.NEEDS_CHECK, RunStatus.INTERRUPTED)
FAILED_RUN_COUNT = 10
WORKER_STATE_LABELS = {"idle": "待機中", "busy": "処理中", "started": "起動中", "suspended": "一時停止"}


def redis_connection() -> Redis:
    # Short timeouts: a health check must answer even when Redis hangs.
    return Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)


def run_queue_names() -> list[str]:
    """The run queue and the timer dispatcher's queue (the two queues worker.py listens on)."""
    return [current_app.config["RQ_QUEUE"], dispatch_queue_name(current_app.config)]


@dataclass
class WorkerInfo:
    name: str
    hostname: str
    pid: int | None
    state: str
    current_job_id: str
    queues: list[str]
    last_heartbeat: datetime | None
    live: bool

    @property
    def state_label(self) -> str:
        return WORKER_STATE_LABELS.get(self.state, self.state)


@dataclass
class QueueInfo:
    name: str
    label: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass
class Health:
    checks: dict[str, dict] = field(default_factory=dict)
    workers: list[WorkerInfo] = field(default_factory=list)
    heartbeat: datetime | None = None

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    def as_json(self) -> dict:
        return {"status": "ok" if self.ok else "degraded", "checks": self.checks}


def _check_database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception:  # noqa: BLE001  (any failure means "not reachable"; details go to the log only)
        db.session.rollback()
        log.warning("health: database check failed", exc_info=True)
        return {"ok": False, "reason": "database unreachable"}


def _live_workers(connection: Redis, now: datetime) -> list[WorkerInfo]:
    """Workers serving this installation's run queue, newest heartbeat first."""
    queue = Queue(current_app.config["RQ_QUEUE"], connection=connection)
    found = []
    for worker in Worker.all(queue=queue):
        beat = as_utc(worker.last_heartbeat)
        live = beat is not None and (now - beat).total_seconds() <= WORKER_HEARTBEAT_MAX_AGE
        found.append(WorkerInfo(
            name=worker.name, hostname=worker.hostname or "", pid=worker.pid, state=str(worker.get_state()),
            current_job_id=worker.get_current_job_id() or "", queues=worker.queue_names(), last_heartbeat=beat,
            live=live,
        ))
    return sorted(found, key=lambda w: w.last_heartbeat or datetime.min.replace(tzinfo=now.tzinfo), reverse=True)


def check_health(now: datetime | None = None) -> Health:
    """Every check, each on its own (one failing does not hide the others)."""
    now = now or utcnow()
    health = Health()
    health.checks["database"] = _check_database()

    connection = redis_connection()
    try:
        connection.ping()
        health.checks["redis"] = {"ok": True}
        health.workers = _live_workers(connection, now)
        count = sum(1 for w in health.workers if w.live)
        health.checks["workers"] = {"ok": count > 0, "count": count}
        if not count:
            health.checks["workers"]["reason"] = "no live worker"
    except (RedisError, OSError):
        log.warning("health: Redis check failed", exc_info=True)
        health.checks["redis"] = {"ok": False, "reason": "redis unreachable"}
        health.checks["workers"] = {"ok": False, "count": 0, "reason": "redis unreachable"}
    finally:
        connection.close()

    if not health.checks["database"]["ok"]:
        health.checks["scheduler"] = {"ok": False, "reason": "database unreachable"}
        return health
    health.heartbeat = last_heartbeat()
    if health.heartbeat is None:
        health.checks["scheduler"] = {"ok": False, "reason": "no heartbeat yet"}
        return health
    age = max(0, int((now - health.heartbeat).total_seconds()))
    scheduler = {"ok": age < HEARTBEAT_MAX_AGE.total_seconds(), "age_seconds": age}
    if not scheduler["ok"]:
        scheduler["reason"] = "heartbeat too old"
    health.checks["scheduler"] = scheduler
    return health


def queue_overview() -> list[QueueInfo] | None:
    """Lengths of the run and timer queues and their registries; None when Redis does not answer."""
    connection = redis_connection()
    labels = ["連携実行", "タイマー"]
    try:
        result = []
        for name, label in zip(run_queue_names(), labels, strict=True):
            queue = Queue(name, connection=connection)
            result.append(QueueInfo(
                name=name, label=label, queued=queue.count,
                started=StartedJobRegistry(queue=queue).count, scheduled=ScheduledJobRegistry(queue=queue).count,
                failed=FailedJobRegistry(queue=queue).count,
            ))
        return result
    except (RedisError, OSError):
        log.warning("status page: Redis unreachable", exc_info=True)
        return None
    finally:
        connection.close()


def recent_failed_runs(limit: int = FAILED_RUN_COUNT) -> list[Run]:
    return list(db.session.execute(
        select(Run).where(Run.status.in_([s.value for s in FAILED_RUN_STATUSES])).order_by(Run.id.desc()).limit(limit)
    ).scalars())
