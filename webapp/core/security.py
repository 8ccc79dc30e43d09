"""HTTP hardening: security headers (a CSP htmx works under), proxy awareness, request ids and request logs."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from .text import escape_control_characters

log = logging.getLogger("webapp.request")

# htmx 2 runs from 'self' without eval (allowEval is off in base.html) and its indicator styles are disabled,
# so scripts need no 'unsafe-*'. Inline style attributes remain in a few templates: styles only.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def register_security(app: Flask) -> None:
    if app.config.get("PROXY_FIX"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex[:16]
        g.request_started = time.perf_counter()

    @app.after_request
    def harden(response):
        headers = response.headers
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        headers["X-Request-ID"] = g.get("request_id", "")
        _log_request(response)
        return response


def _log_request(response) -> None:
    """One line per request: id, user, method, path (no query: it may hold search terms), status, time."""
    if request.path.startswith("/static/"):
        return
    elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    user = current_user.id if current_user and current_user.is_authenticated else "-"
    # The path is decoded: %0D%0A in a URL must not start a forged line of its own.
    log.info("rid=%s user=%s %s %s %s %.0fms", g.get("request_id", "-"), user, escape_control_characters(request.method),
             escape_control_characters(request.path), response.status_code, elapsed)
