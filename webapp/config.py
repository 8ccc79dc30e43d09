"""Settings read from the environment, with safe defaults.

Nothing secret is a constant here: SECRET_KEY is generated once and kept in the instance folder when the
environment does not provide one.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path


def _secret_key(instance_path: Path) -> str:
    configured = os.environ.get("SECRET_KEY")
    if configured:
        return configured
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_hex(32)
    # Created with owner-only permissions before the key is written into it.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _json_dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _bool(name: str, default: bool | None) -> bool | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _words(value: str) -> list[str]:
    """A list setting: items separated by commas and/or spaces."""
    return [item for item in value.replace(",", " ").split() if item]


class ConfigurationError(RuntimeError):
    """A setting the app refuses to start with; the message says what to change."""


SECRET_KEY_MIN_LENGTH = 32
# Values copied from examples and tutorials rather than generated (compared without case, '-' and '_').
_PLACEHOLDER_WORDS = ("changeme", "replaceme", "placeholder", "yoursecret", "example")


def load_config(instance_path: Path) -> dict:
    """Build the Flask config mapping from environment variables."""
    instance_path.mkdir(parents=True, exist_ok=True)
    default_db = f"sqlite:///{instance_path / 'app.sqlite3'}"
    database_url = os.environ.get("DATABASE_URL", default_db)
    # SQLAlchemy wants the psycopg 3 driver named explicitly.
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Japanese stays readable in JSON columns, and keyword/contains filters match it as typed.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "json_serializer": _json_dumps},
        # Page requests are many short queries at once: a parallel scan spends three cores' time to answer one
        # a little sooner and leaves the other users waiting. 0 = off (PostgreSQL's own default is 2).
        "DATABASE_PARALLEL_WORKERS": int(os.environ.get("DATABASE_PARALLEL_WORKERS", "0")),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Encrypts stored API tokens; derived from SECRET_KEY when unset (see webapp/core/crypto.py).
        "TOKEN_ENCRYPTION_KEY": os.environ.get("TOKEN_ENCRYPTION_KEY", ""),
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "default"),
        # worker.py (runs, timers, the scheduler) raises its niceness by this much: page views come first.
        "WORKER_NICE": int(os.environ.get("WORKER_NICE", "10")),
        "TIMEZONE": os.environ.get("TZ", "Asia/Tokyo") or "Asia/Tokyo",
        "FILES_DIR": os.environ.get("FILES_DIR", str(instance_path / "files")),
        "APP_ENV": os.environ.get("APP_ENV", "production"),
        # Hosts the 楽楽明細 URL may name although they resolve to internal addresses (a gateway or proxy in front
        # of 楽楽明細). Production refuses loopback, private, link-local … addresses for every other host.
        "MEISAI_ALLOWED_HOSTS": _words(os.environ.get("MEISAI_ALLOWED_HOSTS", "")),
        # Logged-in sessions end after this many idle hours.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=float(os.environ.get("SESSION_HOURS", "8"))),
        "SESSION_REFRESH_EACH_REQUEST": True,
        # Sessions live in Redis (Flask-Session); the cookie holds only a random id. See webapp/auth/sessions.py.
        "SESSION_TYPE": "redis",
        # Visitors who are not logged in keep a browser-session cookie; a login makes its session permanent.
        "SESSION_PERMANENT": False,
        # Behind a TLS-terminating reverse proxy: trust one hop of X-Forwarded-* (see README, deploy/).
        "PROXY_FIX": _bool("PROXY_FIX", False),
        # Login throttling (Flask-Limiter on Redis): failed logins per user name and address, per address, and
        # per user name from any address (an attack spread over many addresses).
        "LOGIN_FAILURE_LIMIT": os.environ.get("LOGIN_FAILURE_LIMIT", "5 per 15 minutes"),
        "LOGIN_ADDRESS_LIMIT": os.environ.get("LOGIN_ADDRESS_LIMIT", "50 per 15 minutes"),
        "LOGIN_ACCOUNT_LIMIT": os.environ.get("LOGIN_ACCOUNT_LIMIT", "10 per 15 minutes"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")),
        "RATELIMIT_KEY_PREFIX": "meisai-renkei",
        # Without Redis, logins still work, throttled per process in memory.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # None = Secure in production (see apply_environment_settings); 0 allows plain http explicitly.
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", None),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_UPLOAD_MB", "20")) * 1024 * 1024,
        # A record form posts one part per 明細 cell: 500 rows (the limit the form reports) of up to 100 fields,
        # where Flask's default of 1,000 parts refused 500 rows of two fields with a 413.
        "MAX_FORM_PARTS": 50_000,
        "RECORDS_PER_PAGE": 50,
        # Runs: how often and how long the job polls 楽楽明細's import state, and when a silent run counts as
        # interrupted (its worker died). Seconds.
        # A short first wait: most imports finish in well under a second, and a run of 31 calls would
        # otherwise sleep over a minute in first waits alone.
        "RUN_POLL_FIRST_INTERVAL": float(os.environ.get("RUN_POLL_FIRST_INTERVAL", "0.5")),
        "RUN_POLL_MAX_INTERVAL": float(os.environ.get("RUN_POLL_MAX_INTERVAL", "15")),
        "RUN_POLL_TIMEOUT": float(os.environ.get("RUN_POLL_TIMEOUT", "1800")),
        "RUN_STALE_SECONDS": float(os.environ.get("RUN_STALE_SECONDS", "180")),
        # A queued run is committed a moment before its job is enqueued: recovery leaves it alone this long
        # before calling its job lost.
        "RUN_ENQUEUE_GRACE_SECONDS": float(os.environ.get("RUN_ENQUEUE_GRACE_SECONDS", "2")),
        "RUN_RETRY_TOTAL_SECONDS": float(os.environ.get("RUN_RETRY_TOTAL_SECONDS", "120")),
        "RUN_RETRY_BASE_DELAY": float(os.environ.get("RUN_RETRY_BASE_DELAY", "1")),
        # レコード更新 longer than 2 s pauses this many seconds per second of writing (0 = none), leaving the
        # database room for page views during a run's bulk updates.
        "RECORD_UPDATE_PAUSE": float(os.environ.get("RECORD_UPDATE_PAUSE", "0.5")),
        # Timers: how often the scheduler process checks for due jobs (the dispatcher itself runs every minute).
        "TIMER_SCHEDULER_INTERVAL": float(os.environ.get("TIMER_SCHEDULER_INTERVAL", "5")),
        # Report mails: SMTP when MAIL_SERVER is set; always kept in the outbox table.
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "meisai-renkei@localhost"),
        # Links in mails point here.
        "APP_BASE_URL": os.environ.get("APP_BASE_URL", "http://127.0.0.1:5000"),
        # Werkzeug's scrypt by default; the test suite picks a cheaper method to stay fast.
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
    }


def apply_environment_settings(config) -> None:
    """Defaults that depend on APP_ENV (possibly overridden after load_config), and the settings production
    refuses to start with."""
    production = config["APP_ENV"] == "production"
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = production
    config.setdefault("REMEMBER_COOKIE_SECURE", config["SESSION_COOKIE_SECURE"])
    if production:
        problem = secret_key_problem(config.get("SECRET_KEY") or "")
        if problem:
            raise ConfigurationError(
                f"SECRET_KEY {problem}. Generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))' "
                "(or leave SECRET_KEY unset to keep a generated one in instance/secret_key). "
                "SECRET_KEY が仮の値か短すぎるため起動しません。上のコマンドで生成した値を設定してください。"
            )


def secret_key_problem(key: str) -> str | None:
    """Why `key` cannot sign production sessions (English, for the operator), or None."""
    squashed = key.lower().replace("-", "").replace("_", "")
    if any(word in squashed for word in _PLACEHOLDER_WORDS):
        return "is a placeholder (such as CHANGE-ME of deploy/env.example)"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"is too short ({len(key)} characters; at least {SECRET_KEY_MIN_LENGTH} are needed)"
    if len(set(key)) < 8:
        return "repeats too few different characters"
    return None


def apply_database_settings(config) -> None:
    """Settings that depend on which database the (possibly overridden) URI names."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        workers = int(config["DATABASE_PARALLEL_WORKERS"])
        options["connect_args"] = {"options": f"-c max_parallel_workers_per_gather={workers}"}
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options
