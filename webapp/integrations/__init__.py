"""楽楽明細連携設定, システム連携設定 of menus, 接続テスト and the audit log page."""

from flask import Blueprint

bp = Blueprint("integrations", __name__, template_folder="templates")

from . import routes  # noqa: E402,F401
