"""worker.py runs RQ jobs on the real Redis, inside the app context (jobs reach the database)."""

import os
import subprocess
import sys
from pathlib import Path

from redis import Redis
from rq import Queue

ROOT = Path(__file__).resolve().parent.parent


def test_worker_runs_a_job_with_database_access(app, users):
    redis_url = app.config["REDIS_URL"]
    connection = Redis.from_url(redis_url)
    queue_name = f"test-worker-{os.getpid()}"
    queue = Queue(queue_name, connection=connection)
    queue.empty()
    job = queue.enqueue("worker_jobs.count_users")

    env = dict(os.environ)
    env.update({
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "RQ_QUEUE": queue_name,
        "SECRET_KEY": "worker-test",
        "APP_ENV": "test",  # production refuses a short SECRET_KEY
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
    })
    result = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    job.refresh()
    assert job.get_status() == "finished", result.stderr[-2000:]
    assert job.return_value() == 3
    queue.delete(delete_jobs=True)
