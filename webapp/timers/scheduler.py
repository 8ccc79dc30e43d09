"""The scheduler process (`python worker.py --scheduler`): rq-scheduler enqueues the dispatcher every minute.

It only keeps time. The dispatcher job runs on a worker, from a queue that workers poll before the run queue,
so a long run queue does not delay the timers. Both job ids are fixed: registering again on every start (or
from a second scheduler) replaces the entry instead of adding one, and the dispatcher itself is idempotent.
"""

from __future__ import annotations

import logging
import warnings

from flask import Flask
from redis import Redis
from rq import Queue
from rq_scheduler import Scheduler

DISPATCH_FUNC = "webapp.timers.tasks.dispatch_timers"
EVERY_MINUTE = "* * * * *"
DISPATCH_TIMEOUT = 600

log = logging.getLogger(__name__)


def dispatch_queue_name(config) -> str:
    return f"{config['RQ_QUEUE']}-timers"


def dispatch_job_id(config) -> str:
    return f"timers-dispatch-{config['RQ_QUEUE']}"


def startup_job_id(config) -> str:
    return f"timers-dispatch-startup-{config['RQ_QUEUE']}"


def register(scheduler: Scheduler, config) -> None:
    """The every-minute dispatcher entry (result kept: rq-scheduler drops a cron entry whose job hash expired)."""
    scheduler.cron(EVERY_MINUTE, func=DISPATCH_FUNC, id=dispatch_job_id(config), queue_name=dispatch_queue_name(config),
                   timeout=DISPATCH_TIMEOUT, result_ttl=-1, description="タイマー: 毎分のディスパッチ")


def run_scheduler(app: Flask, connection: Redis, interval: float, burst: bool = False) -> None:
    """Register the dispatcher, fire one at start-up (catch-up of the last hour), then keep time."""
    # rq-scheduler asks crontab in a way that the crontab package warns about; the result is correct for
    # an every-minute entry.
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    config = app.config
    queue = Queue(dispatch_queue_name(config), connection=connection)
    scheduler = Scheduler(queue=queue, connection=connection, interval=interval)
    register(scheduler, config)
    queue.enqueue(DISPATCH_FUNC, job_id=startup_job_id(config), job_timeout=DISPATCH_TIMEOUT, result_ttl=3600,
                  description="タイマー: 起動時のディスパッチ(キャッチアップ)")
    log.info("timer scheduler: dispatcher every minute on queue %s (checks every %s s)", queue.name, interval)
    scheduler.run(burst=burst)
