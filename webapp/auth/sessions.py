"""Login sessions: where they live and how they end.

Two well-kept mechanisms, each for what it does best:

- **Flask-Session on the existing Redis** keeps the session on the server; the cookie carries only a random
  id. Logging out deletes that server-side session, so a cookie copied before logout (or one renewed by each
  request, as the signed-cookie sessions were) finds nothing afterwards and gets the login page. A login gets a
  fresh id (session fixation). Idle expiry is the Redis key's TTL, renewed by each request.
- **flask-login's alternative id**: `User.get_id()` is "<id>:<session_version>", stored in the session and in
  any remember cookie. The user loader accepts it only while the version matches, so raising the version
  (`revoke_sessions`) ends every session of that user on every device at once — what a password change,
  a deactivation and the administrator's 「全セッションを終了」 need, and what a store keyed by session id
  cannot do without an index of its own.

If Redis is down, pages answer 503 with a Japanese message (never a traceback); /healthz needs no session.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, request, session
from flask_login import login_user, logout_user
from flask_session.redis import RedisSessionInterface
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ..extensions import db

log = logging.getLogger(__name__)

SESSION_STORE_DOWN = ("ログイン状態を保存するサーバー(Redis)に接続できないため、現在ご利用いただけません。"
                      "しばらく待ってから再度お試しください。解決しない場合は管理者に連絡してください。")


class SessionStoreUnavailable(RedisError):
    """Redis did not answer while the session was read."""


class RedisSessions(RedisSessionInterface):
    """Flask-Session's Redis store; an unreachable Redis gives an empty, unsaved session flagged for a 503."""

    def open_session(self, app: Flask, request_):
        try:
            return super().open_session(app, request_)
        except RedisError as exc:
            log.error("session store unreachable (%s)", type(exc).__name__)
            unavailable = self.session_class(sid="", permanent=False)
            unavailable.store_unavailable = True
            return unavailable

    def save_session(self, app: Flask, session_, response) -> None:
        if getattr(session_, "store_unavailable", False):
            return
        try:
            super().save_session(app, session_, response)
        except RedisError as exc:
            log.error("session store unreachable (%s)", type(exc).__name__)


def init_sessions(app: Flask) -> None:
    """Keep sessions in Redis (REDIS_URL) under a key prefix of this installation."""
    # Short timeouts and one quick retry (a Redis restart): a missing Redis answers 503 within seconds
    # instead of holding the request through redis-py's default backoff.
    client = app.config.get("SESSION_REDIS") or Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 1))
    # Two installations sharing one Redis (distinct RQ_QUEUE) must not read each other's sessions.
    prefix = app.config.get("SESSION_KEY_PREFIX") or f"{app.config['RATELIMIT_KEY_PREFIX']}:{app.config['RQ_QUEUE']}:session:"
    app.config["SESSION_KEY_PREFIX"] = prefix
    app.session_interface = RedisSessions(app, client=client, key_prefix=prefix,
                                          permanent=app.config["SESSION_PERMANENT"])

    @app.before_request
    def refuse_without_session_store():
        if getattr(session, "store_unavailable", False) and request.endpoint not in ("static", "health.healthz"):
            raise SessionStoreUnavailable()

    @app.errorhandler(SessionStoreUnavailable)
    def session_store_down(error):
        from ..core import render_error

        return render_error(503, SESSION_STORE_DOWN)


def ensure_session_store() -> None:
    """503 unless Redis answers. A visitor without a cookie reads nothing from it, so the login page asks:
    otherwise its form would render and then fail as an expired page, the CSRF token having nowhere to live."""
    try:
        current_app.session_interface.client.ping()
    except RedisError as exc:
        log.error("session store unreachable (%s)", type(exc).__name__)
        raise SessionStoreUnavailable() from exc


def load_session_user(session_id: str):
    """The user a session or remember cookie names, or None once its version was revoked or the user is
    inactive (flask-login then treats the request as anonymous: login page)."""
    from .models import User

    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None  # an id from before versioning, or forged
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def start_session(user) -> None:
    """Log `user` in on a fresh server-side session: nothing from before the login survives (fixation)."""
    current_app.session_interface.regenerate(session)  # deletes the old id's data, issues a new id
    session.clear()
    login_user(user)
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME of inactivity


def end_session() -> None:
    """Log out: the server-side session is deleted, so the old cookie is worthless even if kept."""
    logout_user()
    current_app.session_interface.regenerate(session)
    session.clear()


def revoke_sessions(user) -> None:
    """End every session and remember cookie of `user`, on every device (the caller commits).

    For a password change, a deactivation or 「全セッションを終了」. A caller that keeps the current user
    logged in (e.g. a self-service password change) calls start_session(user) after committing.
    """
    user.session_version = (user.session_version or 0) + 1
