"""A stand-in 楽楽明細 server: the API of MEISAI_API.md over real HTTP, a small Japanese UI, fault knobs.

Its own Flask app and its own SQLite file under ``data_dir``; it shares nothing with the product but the
contract constants in ``webapp.meisai.contract``. Start it with ``python -m meisai_emulator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from webapp.meisai import contract

from .api import RateLimiter
from .errors import ApiError
from .models import Store
from .processing import ImportWorker

DEFAULT_IMPORT_DELAY = 2.0
# Room for a 3 MB ZIP plus a 3 MB CSV and the multipart framing; the per-file limit is checked per part so
# that an oversize file gets the API's E_LIMIT answer rather than a bare 413.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


@dataclass
class Emulator:
    """Per-app state, kept in ``app.extensions["meisai_emulator"]``."""

    store: Store
    worker: ImportWorker
    rate_limiter: RateLimiter
    import_delay: float

    def close(self) -> None:
        self.worker.stop()
        self.store.dispose()


def create_app(
    data_dir: str | Path,
    *,
    import_delay: float = DEFAULT_IMPORT_DELAY,
    admin_token: str | None = None,
) -> Flask:
    """The emulator app over ``data_dir``; its import worker thread is running when this returns.

    ``import_delay``: seconds an accepted import stays ``active`` (a tenant's fault knob can override it).
    ``admin_token``: when set, ``/_admin`` needs it in ``X-Emulator-Admin-Token`` (else loopback only).
    """
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, ADMIN_TOKEN=admin_token or None)
    # Raw responses end up in support logs: keep Japanese readable and keys in the documented order.
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    store = Store(data_dir)
    emulator = Emulator(store, ImportWorker(store), RateLimiter(), import_delay)
    app.extensions["meisai_emulator"] = emulator

    from . import admin, api, ui

    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin.noop_bp)
    app.register_blueprint(ui.bp)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        # Routing errors under the API root answer in the API's JSON shape; elsewhere a plain page.
        if f"/{contract.API_ROOT}" in request.path:
            if error.code == 413:
                return ApiError(contract.E_LIMIT, status=413).response()
            message = "このメソッドは使えません。" if error.code == 405 else "APIのURLが正しくありません。"
            return ApiError(contract.E_NOT_FOUND, message, status=error.code).response()
        return render_template("emulator/error.html", error=error), error.code

    @app.get("/favicon.ico")
    def _favicon():
        return "", 204

    @app.get("/_health")
    def _health():
        return jsonify({"ok": True})

    emulator.worker.start()
    return app
