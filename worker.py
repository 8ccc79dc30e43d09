"""RQ worker entry point: runs jobs inside the Flask app context.

    python worker.py            # one worker on REDIS_URL's queue, with RQ's own scheduler for enqueue_at/in
Start as many as needed, on any host that reaches Redis and the database.
"""

from __future__ import annotations

import argparse
import logging

from redis import Redis
from rq import Queue, Worker

from webapp import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="楽楽明細連携 background worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty (tests, one-off runs)")
    args = parser.parse_args()

    app = create_app()
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue = Queue(app.config["RQ_QUEUE"], connection=connection)
    logging.getLogger(__name__).info("worker listening on queue %s", queue.name)
    with app.app_context():
        from webapp.runs.operations import recover_runs

        # Runs whose worker died or whose job Redis lost are found before taking new work.
        recovered = recover_runs()
        if recovered:
            logging.getLogger(__name__).warning("recovered runs: %s", recovered)
        # Jobs are plain functions taking ids; the pushed context gives them the database session.
        Worker([queue], connection=connection).work(with_scheduler=True, burst=args.burst)


if __name__ == "__main__":
    main()
