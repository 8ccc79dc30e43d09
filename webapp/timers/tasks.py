"""RQ job entry point of the timers: the dispatcher the scheduler enqueues every minute."""

from __future__ import annotations

from ..runs.tasks import fresh_database_connections


@fresh_database_connections
def dispatch_timers() -> str:
    from .dispatcher import dispatch

    return str(dispatch())
