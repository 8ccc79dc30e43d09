"""RQ worker entry point: runs jobs inside the Flask app context.

    python worker.py              # one worker: the timer dispatcher queue first, then REDIS_URL's run queue
    python worker.py --scheduler  # the timer scheduler: enqueues the dispatcher every minute (rq-scheduler)
Start as many workers as needed, on any host that reaches Redis and the database; one scheduler is enough
(a second one does no harm: slots fire once, enforced by the database).
"""

from __future__ import annotations

import argparse
import logging
import os

from redis import Redis
from rq import Queue, Worker

from webapp import create_app
from webapp.extensions import db
from webapp.health.operations import WORKER_TTL


def main() -> None:
    parser = argparse.ArgumentParser(description="楽楽明細連携 background worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty (tests, one-off runs)")
    parser.add_argument("--scheduler", action="store_true",
                        help="run the timer scheduler instead of a worker (triggers the timer dispatcher every minute)")
    parser.add_argument("--interval", type=float, default=None,
                        help="scheduler: seconds between checks for due jobs (default TIMER_SCHEDULER_INTERVAL)")
    args = parser.parse_args()

    app = create_app()
    # Background work yields the CPU to people's page views on a shared machine (the forked work-horses inherit
    # it). Raising one's niceness needs no privilege; 0 leaves it as is.
    os.nice(app.config["WORKER_NICE"])
    connection = Redis.from_url(app.config["REDIS_URL"])
    log = logging.getLogger(__name__)
    if args.scheduler:
        from webapp.timers.scheduler import run_scheduler

        with app.app_context():
            run_scheduler(app, connection, args.interval or app.config["TIMER_SCHEDULER_INTERVAL"], burst=args.burst)
        return

    from webapp.timers.scheduler import dispatch_queue_name

    # The timer dispatcher is short and time-critical: a free worker takes it before the next run.
    queues = [Queue(dispatch_queue_name(app.config), connection=connection),
              Queue(app.config["RQ_QUEUE"], connection=connection)]
    log.info("worker listening on queues %s", ", ".join(q.name for q in queues))
    with app.app_context():
        from webapp.runs.operations import recover_runs

        # Runs whose worker died or whose job Redis lost are found before taking new work.
        recovered = recover_runs()
        if recovered:
            log.warning("recovered runs: %s", recovered)
        # Jobs run in forked work-horses: the parent must hold no connection (or open transaction) for them to
        # inherit — a connection that died with a database restart would fail every later job.
        db.session.remove()
        db.engine.dispose()
        # Jobs are plain functions taking ids; the pushed context gives them the database session.
        # A short TTL makes idle workers beat every ~2 minutes, so /healthz notices a dead one soon.
        Worker(queues, connection=connection, worker_ttl=WORKER_TTL).work(with_scheduler=True, burst=args.burst)


if __name__ == "__main__":
    main()
