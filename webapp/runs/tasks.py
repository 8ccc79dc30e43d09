"""RQ job entry points: plain functions taking ids, run inside the worker's app context."""

from __future__ import annotations

from functools import wraps

from ..extensions import db


def fresh_database_connections(job):
    """A forked work-horse must not reuse the parent's pooled connections; it opens its own and closes them."""

    @wraps(job)
    def wrapped(*args, **kwargs):
        db.engine.dispose(close=False)
        try:
            return job(*args, **kwargs)
        finally:
            db.session.remove()

    return wrapped


@fresh_database_connections
def execute_run(run_id: int) -> str:
    from .engine import execute_run as run_engine

    return run_engine(run_id)


@fresh_database_connections
def recover_runs() -> list[int]:
    from .operations import recover_runs as recover

    return recover()
