"""API errors in the documented JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import jsonify

from webapp.meisai import contract

MESSAGES = {
    contract.E_AUTH: "APIトークンが正しくありません。",
    contract.E_PARAM: "パラメータが正しくありません。",
    contract.E_FILE: "ファイルが正しくありません。",
    contract.E_LIMIT: "ファイルが上限（10,000行・3MB）を超えています。",
    contract.E_NOT_FOUND: "指定されたデータが見つかりません。",
    contract.E_CONFLICT: "現在の状態では処理できません。",
    contract.E_RATE: "リクエストが多すぎます。しばらくしてから再度実行してください。",
    contract.E_MAINTENANCE: "ただいまメンテナンス中です。",
    contract.E_SERVER: "サーバーエラーが発生しました。",
}


@dataclass
class Description:
    code: str
    msg: str
    name: str = ""
    value: str = ""


@dataclass
class ApiError(Exception):
    """Raised anywhere in an API handler; answered as ``{"status": "error", ...}`` with the code's status."""

    code: str
    msg: str | None = None
    descriptions: list[Description] = field(default_factory=list)
    status: int | None = None
    retry_after: int | None = None

    def response(self):
        status = self.status or contract.ERROR_STATUS[self.code]
        body = {
            "status": "error",
            "code": str(status),
            "errors": [
                {
                    "code": self.code,
                    "msg": self.msg or MESSAGES[self.code],
                    "description": [d.__dict__ for d in self.descriptions],
                }
            ],
        }
        response = jsonify(body)
        response.status_code = status
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def param_error(name: str, msg: str, value: object = "", code: str = "E_PARAM_INVALID") -> Description:
    return Description(code=code, msg=msg, name=name, value="" if value is None else str(value))
