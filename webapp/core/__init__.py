"""Cross-cutting pieces: error pages, template helpers, htmx detection.

core imports no feature module (an import-linter contract, see pyproject.toml): features plug into it.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..extensions import db
from .clock import format_local
from .permissions import PERMISSION_LABELS, Permission, has_permission
from .text import escape_control_characters

log = logging.getLogger(__name__)

ERROR_TITLES = {
    400: "不正なリクエストです",
    403: "権限がありません",
    404: "ページが見つかりません",
    405: "この操作はできません",
    413: "ファイルが大きすぎます",
    429: "しばらくお待ちください",
    500: "システムエラーが発生しました",
    503: "一時的にご利用いただけません",
}
ERROR_DEFAULT_MESSAGES = {
    400: "入力内容を確認して、もう一度お試しください。",
    403: "この画面を表示する権限がありません。",
    404: "指定されたデータは存在しないか、削除されました。",
    405: "この画面ではその操作はできません。",
    413: "アップロードできるファイルの大きさを超えています。",
    429: "短い時間に操作が集中したため、受け付けを一時停止しています。しばらく待ってからお試しください。",
    500: "処理中に問題が発生しました。時間をおいて再度お試しください。解決しない場合は管理者に連絡してください。",
}


def pretty_json(value: object) -> str:
    """JSON as people read it: indented, Japanese as it is (no \\u escapes). A text that is not JSON stays as is."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return json.dumps(value, ensure_ascii=False, indent=2)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render_error(status: int, message: str | None = None):
    """The Japanese error page with `status`."""
    return (
        render_template(
            "error.html",
            status=status,
            title=ERROR_TITLES.get(status, "エラー"),
            message=message or ERROR_DEFAULT_MESSAGES.get(status, ""),
        ),
        status,
    )


def register_core(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, "画面の有効期限が切れたか、不正な送信です。画面を再読み込みしてからやり直してください。")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        description = error.description if status in (400, 403, 404, 429) and _is_own_message(error) else None
        return render_error(status, description)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, escape_control_characters(request.path))
        db.session.rollback()
        return render_error(500)

    app.add_template_filter(format_local, "localtime")
    app.add_template_filter(pretty_json, "pretty_json")
    app.add_template_global(refresh_attrs, "refresh_attrs")

    @app.context_processor
    def layout_context():
        # The left panel's DBs and menus come from the databases blueprint's own context processor.
        return {
            "has_permission": lambda *p: has_permission(current_user, *p),
            "Permission": Permission,
            "PERMISSION_LABELS": PERMISSION_LABELS,
            "is_htmx": is_htmx(),
        }

    @app.after_request
    def no_store_for_pages(response):
        # Pages show business data: keep them out of shared caches and the back-button cache.
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _is_own_message(error: HTTPException) -> bool:
    """Werkzeug's default English descriptions are replaced; our abort() messages are Japanese."""
    return bool(error.description) and error.description != type(error).description


def refresh_attrs() -> dict[str, str]:
    """htmx attributes of a control whose change re-posts its form to this page, which renders it again.

    The view sees action=refresh and saves nothing; templates pass these real attribute names to WTForms
    fields (`field(**refresh_attrs())`), never `hx_post=`, which WTForms would render as `hx_post`.
    """
    return {"hx-post": request.path, "hx-trigger": "change", "hx-vals": '{"action": "refresh"}'}


def render(template: str, block: str | None = None, **context):
    """The whole page, or only `block` of the same template when htmx asks for a fragment.

    One template holds the markup of both, so a swapped fragment never differs from a reloaded page. A
    fragment also replaces the page's banners (out of band): a 「保存しました」 from an earlier step never stays
    above the outcome the fragment shows, so one outcome banner is on screen at a time.
    """
    if block and is_htmx() and request.headers.get("HX-Target") and not request.headers.get("HX-Boosted"):
        from jinja2_fragments.flask import render_block

        return render_block(template, block, **context) + render_template("_flashes.html", oob=True)
    return render_template(template, **context)


def htmx_redirect(url: str):
    """Redirect that works for both a plain form post and an htmx request (full page load)."""
    from flask import make_response, redirect

    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
