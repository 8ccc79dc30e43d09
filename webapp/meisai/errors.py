"""Typed errors of the 楽楽明細 wire.

Every error carries what support needs (HTTP status, the API's error code, message and descriptions) and a
Japanese ``user_message`` safe to show on a page. None of them ever holds the API token.

Two flags drive the callers' decisions:

- ``retryable``: trying the same call again later may succeed (maintenance, rate limit, 5xx, network).
- ``outcome_unknown``: the request may have reached 楽楽明細 and been accepted (e.g. the connection broke or
  timed out after the body was sent). A POST that raised with this flag must not be sent again blindly; check
  the import history first. When it is False the request was definitely not accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import contract


@dataclass(frozen=True)
class ErrorDescription:
    """One entry of an error's ``description`` list (which parameter or column, and the offending value)."""

    code: str = ""
    msg: str = ""
    name: str = ""
    value: str = ""


class MeisaiError(Exception):
    """Base class of every 楽楽明細 error."""

    default_user_message = "楽楽明細との連携でエラーが発生しました。"
    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        http_status: int | None = None,
        code: str | None = None,
        descriptions: tuple[ErrorDescription, ...] | list[ErrorDescription] = (),
        outcome_unknown: bool = False,
        user_message: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        retryable: bool | None = None,
    ) -> None:
        self.message = message or self.default_user_message
        self.http_status = http_status
        self.code = code
        self.descriptions = tuple(descriptions)
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after
        self.attempts = attempts
        self._user_message = user_message
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self.message)

    @property
    def user_message(self) -> str:
        """A Japanese sentence for pages and mails, with the API's own words when it gave any."""
        text = self._user_message or self.default_user_message
        details = "、".join(_describe(d) for d in self.descriptions if d.name or d.msg)
        if details:
            text = f"{text}（{details}）"
        if self.outcome_unknown:
            text += " 楽楽明細側で受け付けられた可能性があります。取込履歴を確認してから再実行してください。"
        return text

    def __str__(self) -> str:
        parts = [self.message]
        if self.code or self.http_status:
            parts.append(f"[{self.code or '-'} / HTTP {self.http_status or '-'}]")
        for d in self.descriptions:
            parts.append(f"{d.name}: {d.msg}" + (f" ({d.value})" if d.value else ""))
        return " ".join(parts)


def _describe(description: ErrorDescription) -> str:
    if description.name and description.msg:
        return f"{description.name}: {description.msg}"
    return description.name or description.msg


class MeisaiConfigError(MeisaiError):
    """The integration settings cannot work (bad URL, empty or malformed token); nothing was sent."""

    default_user_message = "楽楽明細連携の設定が正しくありません。"


class MeisaiUrlError(MeisaiConfigError):
    """The URL cannot be a 楽楽明細 base URL."""

    default_user_message = "URLが正しくありません。"


class MeisaiRedirectError(MeisaiConfigError):
    """A 3xx answer: never followed (the token would go to wherever it points), its body never kept."""

    default_user_message = "楽楽明細のURLから別の場所へ転送されました。URLを確認してください。"


class MeisaiDestinationError(MeisaiConfigError):
    """The URL's host is, or connected to, an internal address (loopback, private, link-local …): nothing sent."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        super().__init__(
            f"refused to send to {host} at internal address {address}",
            user_message=f"楽楽明細のURLのホスト（{host}）が社内ネットワークなどの内部アドレス（{address}）を指しているため、"
            "接続しませんでした。URLを確認してください（プロキシ経由の楽楽明細は、管理者が MEISAI_ALLOWED_HOSTS "
            "でホストを許可できます）。",
        )


class MeisaiCsvEncodingError(MeisaiError):
    """A value cannot be written in Windows-31J (cp932); it would otherwise become a silent ``?``."""

    default_user_message = "Windows-31J(Shift_JIS)で表せない文字が含まれています。"

    def __init__(self, message: str, *, row: int, column: str, value: str, char: str) -> None:
        self.row = row
        self.column = column
        self.value = value
        self.char = char
        super().__init__(
            message,
            user_message=f"{row}行目の「{column}」に Windows-31J で表せない文字「{char}」が含まれています。",
        )


class MeisaiAuthError(MeisaiError):
    """401: the API token is missing or wrong."""

    default_user_message = (
        "APIトークンが正しくありません。楽楽明細の基本設定 › API設定で発行したトークンを確認してください。"
    )


class MeisaiParamError(MeisaiError):
    """400 E_PARAM: a parameter is missing or invalid (``descriptions`` name it)."""

    default_user_message = "楽楽明細が連携パラメータを受け付けませんでした。"


class MeisaiFileError(MeisaiError):
    """400 E_FILE: a file part is missing, not Windows-31J, not a ZIP, or holds a file that is not a PDF."""

    default_user_message = "楽楽明細が送信ファイルを受け付けませんでした。"


class MeisaiLimitError(MeisaiError):
    """E_LIMIT: one file is over 10,000 rows or 3 MB."""

    default_user_message = "1ファイルの上限（10,000行・3MB）を超えています。"


class MeisaiNotFound(MeisaiError):
    """404 E_NOT_FOUND: unknown import ID, 取込設定ID, 帳票種別ID or 承認フローID."""

    default_user_message = "指定されたIDが楽楽明細に見つかりません。"


class MeisaiConflict(MeisaiError):
    """409 E_CONFLICT: e.g. deleting an import whose documents are already issued."""

    default_user_message = "楽楽明細側の状態により処理できません（発行済みの帳票があるなど）。"


class MeisaiRateLimited(MeisaiError):
    """429 E_RATE: too many requests; retried with backoff."""

    default_user_message = "楽楽明細へのリクエストが多すぎます。時間をおいて再実行してください。"
    retryable = True


class MeisaiMaintenance(MeisaiError):
    """503, or a 200 answer with an HTML page: 楽楽明細 is under maintenance; retried with backoff."""

    default_user_message = "楽楽明細はメンテナンス中です。時間をおいて再実行してください。"
    retryable = True


class MeisaiServerError(MeisaiError):
    """5xx other than maintenance; retried with backoff (except where the outcome is unknown)."""

    default_user_message = "楽楽明細でサーバーエラーが発生しました。"
    retryable = True


class MeisaiConnectionError(MeisaiError):
    """No usable answer: DNS, refused connection, TLS, timeout, broken connection."""

    default_user_message = "楽楽明細に接続できませんでした。URLとネットワークを確認してください。"
    retryable = True

    def __init__(self, message: str = "", *, reason: str = "unreachable", **kwargs) -> None:
        # reason: "unreachable" | "timeout" | "tls" | "broken" (connection lost after sending)
        self.reason = reason
        super().__init__(message, **kwargs)


class MeisaiProtocolError(MeisaiError):
    """The answer is not what the API sends (e.g. an HTML 404: the URL is not a 楽楽明細 API)."""

    default_user_message = "楽楽明細のAPIから想定外の応答がありました。URLを確認してください。"


class MeisaiResponseTooLarge(MeisaiProtocolError):
    """The answer is longer than the client reads (an API answer is small JSON): it was not read to the end."""

    default_user_message = "楽楽明細のURLから想定より大きな応答が返りました。URLを確認してください。"


class MeisaiImportTimeout(MeisaiError):
    """An import was still ``active`` when the caller stopped waiting; it may still complete later."""

    default_user_message = "楽楽明細の取込が時間内に完了しませんでした。取込状況を後で確認してください。"
    retryable = True


# API error code → exception class (the HTTP status decides when the code is absent or unknown).
ERROR_CLASSES: dict[str, type[MeisaiError]] = {
    contract.E_AUTH: MeisaiAuthError,
    contract.E_PARAM: MeisaiParamError,
    contract.E_FILE: MeisaiFileError,
    contract.E_LIMIT: MeisaiLimitError,
    contract.E_NOT_FOUND: MeisaiNotFound,
    contract.E_CONFLICT: MeisaiConflict,
    contract.E_RATE: MeisaiRateLimited,
    contract.E_MAINTENANCE: MeisaiMaintenance,
}
