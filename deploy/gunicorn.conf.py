"""gunicorn settings for the web app, read from the environment (see deploy/env.example).

    gunicorn -c deploy/gunicorn.conf.py "webapp:create_app()"

GUNICORN_BIND      address:port or unix:/path (default 127.0.0.1:8000; keep it private behind the proxy)
GUNICORN_WORKERS   processes (default 2 × CPU cores + 1; WEB_CONCURRENCY is honoured too)
GUNICORN_THREADS   threads per process (default 4; htmx polling pages are many short requests)
GUNICORN_TIMEOUT   seconds before a silent worker is killed and replaced (default 60)
GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_MAX_REQUESTS  see below
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle processes now and then so a slow leak (e.g. in a PDF library) never grows unbounded.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max_requests // 10
# Each process builds its own app and connection pools: nothing (sockets, DB connections) crosses a fork.
preload_app = False

# Logs to stdout/stderr, for journald or a container runtime. The app logs one line per request itself
# (with user and request id), so the access log carries the request id to join both.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Path without the query string: it may carry search terms.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
# X-Forwarded-* is handled by the app (PROXY_FIX=1), trusting one hop; gunicorn itself trusts only loopback.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "meisai-web"
