"""Jobs the worker test enqueues: plain importable functions, as RQ expects."""

from sqlalchemy import func, select


def count_users() -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    return db.session.execute(select(func.count()).select_from(User)).scalar_one()
