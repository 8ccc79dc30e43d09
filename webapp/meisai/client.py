"""The product's client of the 楽楽明細 HTTP API (see ``MEISAI_API.md``).

A pure library module: no Flask, no app imports. Run jobs and the settings form create one
``MeisaiClient`` per integration setting and call it; every exchange is handed to an optional
``log_exchange`` callback (with the token masked) so the run history can store what the vendor's support asks
for. Errors are the typed exceptions of ``webapp.meisai.errors``.

Where the token goes: only to the base URL's scheme + host + port. Redirects are never followed (a 3xx is
``MeisaiRedirectError`` and its body is not kept); in production the peer of every connection must be a public
address unless the operator allows the host (``webapp.meisai.transport``). Each answer is read up to
``MAX_RESPONSE_BYTES`` and each attempt ends within ``call_timeout`` seconds, however slowly a server answers.

Retry rules: connection failures before the request was sent, 429, 503 (JSON or an HTML maintenance page)
and other 5xx are retried with exponential backoff and jitter, bounded by ``RetryPolicy.total_time``. Other
4xx are never retried. A POST or DELETE whose outcome is unknown (read timeout or broken connection after
sending, 504) is never retried: it raises with ``outcome_unknown=True``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.filepost import encode_multipart_formdata

from . import contract
from .errors import (
    ERROR_CLASSES,
    ErrorDescription,
    MeisaiAuthError,
    MeisaiConfigError,
    MeisaiConflict,
    MeisaiConnectionError,
    MeisaiDestinationError,
    MeisaiError,
    MeisaiImportTimeout,
    MeisaiLimitError,
    MeisaiMaintenance,
    MeisaiNotFound,
    MeisaiParamError,
    MeisaiProtocolError,
    MeisaiRateLimited,
    MeisaiRedirectError,
    MeisaiResponseTooLarge,
    MeisaiServerError,
    MeisaiUrlError,
)
from .transport import Deadline, DestinationPolicy, DestinationRefused, GuardedAdapter, check_destination

logger = logging.getLogger(__name__)

USER_AGENT = "rakuraku-meisai-renkei/0.1"
# Enough of a response for support to read; an HTML error page can be far larger.
MAX_LOGGED_RESPONSE_CHARS = 64 * 1024
# An API answer is small JSON: more is not 楽楽明細 (and must not grow a worker's memory).
MAX_RESPONSE_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024
# One attempt (connect, send, receive) ends within this many seconds, however slowly the server trickles.
DEFAULT_CALL_TIMEOUT = 90.0
# A search term that matches no real customer: 接続テスト only needs an authenticated answer.
CONNECTION_TEST_KEYWORD = "__connection_test__"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# Requests whose outcome must be known before sending them again. A DELETE is not repeated either: a second
# one would answer 404 for an import the first one did withdraw, and misreport the outcome.
_STATE_CHANGING = {"POST", "DELETE"}


# --- URL and token ----------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str, allow_insecure_loopback: bool = False) -> str:
    """The base URL the API hangs off: ``https://{host}/{account}/``.

    Accepts a pasted admin URL (``…/{account}/backadmin/…`` is cut at ``/backadmin``), drops query and
    fragment, enforces the trailing slash. Requires https, except for a loopback host when
    ``allow_insecure_loopback`` (development and test). Raises ``MeisaiUrlError`` with a Japanese message.
    """
    text = (url or "").strip()
    if not text:
        raise MeisaiUrlError("empty URL", user_message="URLを入力してください。")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise MeisaiUrlError("unparsable URL", user_message="URLの形式が正しくありません。") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in {"http", "https"} or not host:
        raise MeisaiUrlError(
            "not an http(s) URL", user_message="URLは https:// で始まる楽楽明細のURLを入力してください。"
        )
    if parts.username or parts.password:
        raise MeisaiUrlError(
            "credentials in URL", user_message="URLにユーザー名やパスワードを含めないでください。"
        )
    if scheme != "https" and not (allow_insecure_loopback and _is_loopback(host)):
        raise MeisaiUrlError(
            "https required",
            user_message="URLは https:// で始まる必要があります（暗号化されない通信は使えません）。",
        )
    segments = [s for s in parts.path.split("/") if s]
    for index, segment in enumerate(segments):
        # Cut the admin UI part, and an API path pasted by mistake (``…/api/v1/…``).
        is_api = index > 0 and segment == "api" and segments[index + 1 : index + 2] == ["v1"]
        if segment.lower().startswith(contract.ADMIN_SEGMENT) or is_api:
            segments = segments[:index]
            break
    if not segments:
        raise MeisaiUrlError(
            "no account segment",
            user_message="URLにアカウントのパスがありません（例: https://xxxx.eco-serv.jp/アカウント/）。",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, "/" + "/".join(segments) + "/", "", ""))


def origin_of(base_url: str) -> str:
    """``scheme://host:port`` of a normalised base URL (port always written): where its token may be sent."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{netloc}:{port}"


def mask_token(token: str | None) -> str:
    """The token as it may appear in logs and pages: only its last 4 characters, and only if it is long."""
    if not token:
        return ""
    return "********" + token[-4:] if len(token) >= 16 else "********"


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of request headers safe to log: the token (and any Authorization) masked."""
    secret = {contract.TOKEN_HEADER.lower(), contract.WRONG_TOKEN_HEADER.lower(), "authorization", "cookie"}
    return {k: (mask_token(v) if k.lower() in secret else v) for k, v in headers.items()}


# --- Typed values -----------------------------------------------------------------------------------------


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    REPORTS = "reports"


@dataclass(frozen=True)
class FileInfo:
    """A file part as logged: never the bytes."""

    part: str
    filename: str
    size: int
    content_type: str


@dataclass(frozen=True)
class ExchangeLog:
    """One HTTP exchange (one attempt), as 楽楽明細's support wants it: request, send time, raw response."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_params: dict | None
    files: tuple[FileInfo, ...]
    sent_at: datetime  # UTC
    http_status: int | None
    response_text: str | None
    response_truncated: bool
    elapsed_ms: float
    error: str | None
    attempt: int


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total time (seconds)."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    total_time: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Upload:
    """A file part to send. ``content_type`` defaults from the name (.zip → ZIP, else Windows-31J CSV)."""

    filename: str
    data: bytes
    content_type: str | None = None

    @property
    def effective_content_type(self) -> str:
        if self.content_type:
            return self.content_type
        if self.filename.lower().endswith(".zip"):
            return contract.ZIP_CONTENT_TYPE
        return contract.CSV_CONTENT_TYPE


@dataclass(frozen=True)
class CustomerImportParams:
    """Parameters of a customer import, in the settings' own terms."""

    overwrite_in_use: bool = False  # 「利用中」の上書き
    overwrite_blank: bool = False  # 空白セルの上書き
    memo: str | None = None  # the run's メモ
    setting_id: int | None = None  # 取込設定ID; None → the format with the smallest ID
    header_row: bool = True

    def to_api(self) -> dict:
        params = {
            "isUpdateInfo": int(self.overwrite_in_use),
            "updateBlank": contract.UPDATE_BLANK_OVERWRITE
            if self.overwrite_blank
            else contract.UPDATE_BLANK_KEEP,
            "skipFirst": int(self.header_row),
        }
        if self.memo:
            params["importProcessName"] = self.memo
        if self.setting_id is not None:
            params["settingId"] = int(self.setting_id)
        return params


@dataclass(frozen=True)
class ReportImportParams:
    """Parameters of a document (帳票) import, in the settings' own terms.

    Options that do not apply (差替 flags on a new issue) are left out of the request, as the form hides them.
    ``scheduled_at`` (予約発行日時) is only meaningful with ``skip_approval``; an aware datetime is sent
    in JST.
    """

    report_type_id: int = 1
    replace: bool = False  # 取込方法: 差替 (else 新規発行)
    memo: str | None = None
    skip_approval: bool = False
    scheduled_at: datetime | None = None  # 予約発行; None → 即時発行 when approval is skipped
    replace_send_mail: bool = False
    replace_post: bool = False
    replace_fax: bool = False
    approval_flow_id: int | None = None
    header_row: bool = True

    def to_api(self) -> dict:
        params: dict[str, object] = {
            "reportTypeId": int(self.report_type_id),
            "isNewIssues": contract.REPLACE_ISSUE if self.replace else contract.NEW_ISSUE,
            "skipFirst": int(self.header_row),
            "isImmApproval": int(self.skip_approval),
        }
        if self.memo:
            params["importProcessName"] = self.memo
        if self.skip_approval:
            if self.scheduled_at is None:
                params["pdfIssueType"] = contract.PDF_ISSUE_IMMEDIATE
            else:
                params["pdfIssueType"] = contract.PDF_ISSUE_SCHEDULED
                params["publicationDate"] = format_publication_date(self.scheduled_at)
        elif self.scheduled_at is not None:
            raise ValueError("scheduled_at (予約発行) needs skip_approval (承認スキップ)")
        if self.replace:
            params["isSendMail"] = int(self.replace_send_mail)
            params["isPostReplaceBill"] = int(self.replace_post)
            params["isSendFax"] = int(self.replace_fax)
        if self.approval_flow_id is not None:
            params["approvalFlowId"] = int(self.approval_flow_id)
        return params


def format_publication_date(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in JST; a naive datetime is taken as JST already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(contract.JST)
    return moment.strftime(contract.PUBLICATION_DATE_FORMAT)


@dataclass(frozen=True)
class ImportAccepted:
    """The answer to an import POST: 楽楽明細 took the files and will import them asynchronously."""

    import_id: int
    url: str
    link_uri: str
    access_time: str
    raw: dict = field(repr=False)


@dataclass(frozen=True)
class RowError:
    row: int | None
    name: str
    msg: str


@dataclass(frozen=True)
class ImportState:
    import_id: int
    status: str  # "active" | "complete" | "error" (anything but active/complete is a failure)
    total: int
    succeeded: int
    failed: int
    row_errors: tuple[RowError, ...]
    raw: dict = field(repr=False)

    @property
    def done(self) -> bool:
        return self.status != contract.STATE_ACTIVE

    @property
    def ok(self) -> bool:
        return self.status == contract.STATE_COMPLETE


@dataclass(frozen=True)
class Customer:
    code: str
    name: str
    web_status: str
    attributes: dict  # every key the API sent (see contract.CUSTOMER_JSON_KEYS)


@dataclass(frozen=True)
class ConnectionCheck:
    """The result of 接続テスト: ``reason`` is a stable key, ``message`` a Japanese sentence for the page."""

    ok: bool
    reason: str  # ok | invalid_config | unreachable | timeout | tls | auth | maintenance | rate_limited |
    #              server_error | not_meisai | unexpected (and token_origin, set by the settings screen)
    message: str
    http_status: int | None = None


# --- The client -------------------------------------------------------------------------------------------


class MeisaiClient:
    """One 楽楽明細 tenant: base URL + API token. Not thread-safe (one per job); close it or use ``with``.

    ``destination`` decides which addresses it may connect to; by default the production rule (public
    addresses only), or no address rule when ``allow_insecure_loopback`` (development and test, as the
    emulator runs on loopback).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        allow_insecure_loopback: bool = False,
        destination: DestinationPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        retry: RetryPolicy | None = None,
        log_exchange: Callable[[ExchangeLog], None] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url, allow_insecure_loopback)
        self.api_root = self.base_url + contract.API_ROOT
        self.origin = origin_of(self.base_url)
        if destination is None:
            destination = DestinationPolicy.of(restrict_addresses=not allow_insecure_loopback)
        self.destination = destination
        token = (token or "").strip()
        if not token:
            raise MeisaiConfigError("empty API token", user_message="APIトークンを入力してください。")
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in token):
            # Checked here so that requests never builds an exception message that quotes the header value.
            raise MeisaiConfigError(
                "API token has characters a header cannot carry",
                user_message="APIトークンに使えない文字（空白や全角文字など）が含まれています。",
            )
        self._token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.call_timeout = call_timeout
        self.retry = retry or RetryPolicy()
        self.log_exchange = log_exchange
        self._session = session or requests.Session()
        # Identity: the size limit then counts what the server sent, and no decompression can inflate it.
        self._session.headers.update(
            {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}
        )
        self._transport = GuardedAdapter(destination)
        for prefix in ("https://", "http://"):
            self._session.mount(prefix, self._transport)

    def __repr__(self) -> str:
        return f"MeisaiClient({self.base_url!r}, token={mask_token(self._token)!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MeisaiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- API calls ----------------------------------------------------------------------------------------

    def import_customers(
        self, csv_bytes: bytes, filename: str, params: CustomerImportParams | Mapping | None = None
    ) -> ImportAccepted:
        """顧客データCSV一括取込: POST the cp932 CSV; returns the import ID to poll."""
        api_params = _api_params(params if params is not None else CustomerImportParams())
        data = self._call(
            "POST",
            contract.PATH_CUSTOMER_IMPORTS,
            params=api_params,
            uploads=[Upload(filename, csv_bytes, contract.CSV_CONTENT_TYPE)],
        )
        return _accepted(data)

    def import_reports(
        self,
        files: Sequence[Upload | tuple[str, bytes] | tuple[str, bytes, str]],
        params: ReportImportParams | Mapping,
    ) -> ImportAccepted:
        """帳票データCSV一括取込: ``files`` in contract order (CSV; or ZIP; or ZIP then CSV)."""
        uploads = [f if isinstance(f, Upload) else Upload(*f) for f in files]
        if not uploads:
            raise ValueError("a report import needs at least one file")
        data = self._call("POST", contract.PATH_REPORT_IMPORTS, params=_api_params(params), uploads=uploads)
        return _accepted(data)

    def get_import_state(self, kind: ImportKind | str, import_id: int) -> ImportState:
        """取込状況取得 of either kind."""
        path = (
            contract.PATH_CUSTOMER_IMPORT_STATE
            if ImportKind(kind) is ImportKind.CUSTOMERS
            else contract.PATH_REPORT_IMPORT_STATE
        )
        data = self._call(
            "GET", path.format(import_id=int(import_id)), extra_headers={"Cache-Control": "no-cache"}
        )
        return _state(data, import_id)

    def get_customer_import_state(self, import_id: int) -> ImportState:
        return self.get_import_state(ImportKind.CUSTOMERS, import_id)

    def get_report_import_state(self, import_id: int) -> ImportState:
        return self.get_import_state(ImportKind.REPORTS, import_id)

    def wait_for_import(
        self,
        kind: ImportKind | str,
        import_id: int,
        *,
        timeout: float = 600.0,
        first_interval: float = 2.0,
        max_interval: float = 15.0,
        on_poll: Callable[[ImportState], None] | None = None,
    ) -> ImportState:
        """Poll the state with a growing interval until it is no longer ``active``.

        Transient failures while polling (maintenance, rate limit, network) do not end the wait; only the
        deadline does, with ``MeisaiImportTimeout`` (the import itself may still finish later).
        """
        deadline = time.monotonic() + timeout
        interval = first_interval
        last_error: MeisaiError | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MeisaiImportTimeout(
                    f"import {import_id} still active after {timeout:.0f} s",
                    code=last_error.code if last_error else None,
                    http_status=last_error.http_status if last_error else None,
                )
            time.sleep(min(interval, remaining))
            interval = min(max_interval, interval * 1.5)
            try:
                state = self.get_import_state(kind, import_id)
            except MeisaiError as exc:
                if not exc.retryable:
                    raise
                last_error = exc
                continue
            if on_poll is not None:
                on_poll(state)
            if state.done:
                return state

    def delete_report_import(self, import_id: int) -> None:
        """帳票一括取込情報削除: withdraw an import whose documents are not issued yet (409 once issued)."""
        self._call("DELETE", contract.PATH_REPORT_IMPORT.format(import_id=int(import_id)))

    def search_customers(self, keyword: str = "") -> list[Customer]:
        """顧客情報取得: customers whose code or name contains ``keyword``."""
        data = self._call("GET", contract.PATH_CUSTOMERS, query={"keyword": keyword})
        customers = data.get("customers")
        if not isinstance(customers, list):
            raise MeisaiProtocolError("customer search answer has no customers list", http_status=200)
        return [
            Customer(
                code=str(c.get("customerCode", "")),
                name=str(c.get("customerName", "")),
                web_status=str(c.get("webStatus", "")),
                attributes=dict(c),
            )
            for c in customers
            if isinstance(c, dict)
        ]

    def check_destination(self) -> None:
        """An early lookup of the host for a clear error (``MeisaiDestinationError``); connecting checks again."""
        check_destination(self.base_url, self.destination)

    def test_connection(self, timeout: float = 5.0) -> ConnectionCheck:
        """接続テスト: one authenticated search, no retries, answered within ``timeout`` seconds."""
        saved = (self.retry, self.connect_timeout, self.read_timeout, self.call_timeout)
        self.retry, self.connect_timeout, self.read_timeout = NO_RETRY, min(3.0, timeout), timeout
        self.call_timeout = timeout
        try:
            self.check_destination()
            self.search_customers(CONNECTION_TEST_KEYWORD)
        except MeisaiError as exc:
            return _connection_check_failure(exc)
        finally:
            self.retry, self.connect_timeout, self.read_timeout, self.call_timeout = saved
        return ConnectionCheck(True, "ok", "接続に成功しました。URLとAPIトークンは有効です。", 200)

    # --- HTTP ---------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        uploads: Sequence[Upload] = (),
        query: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict:
        url = self.api_root + path
        body, content_type, files = None, None, ()
        if params is not None or uploads:
            body, content_type, files = _multipart(params or {}, uploads)
        deadline = time.monotonic() + self.retry.total_time
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(
                    method, url, query, body, content_type, params, files, extra_headers, attempt, deadline
                )
            except MeisaiError as exc:
                exc.attempts = attempt
                if not exc.retryable or exc.outcome_unknown or attempt >= self.retry.max_attempts:
                    raise
                wait = self.retry.delay(attempt, exc.retry_after)
                if time.monotonic() + wait >= deadline:
                    raise
                logger.info(
                    "%s %s failed (%s); retry %d in %.1f s", method, url, type(exc).__name__, attempt, wait
                )
                time.sleep(wait)

    def _attempt(
        self,
        method: str,
        url: str,
        query: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        params: dict | None,
        files: tuple[FileInfo, ...],
        extra_headers: Mapping[str, str] | None,
        attempt: int,
        deadline: float,
    ) -> dict:
        headers = {contract.TOKEN_HEADER: self._token, **(extra_headers or {})}
        if content_type:
            headers["Content-Type"] = content_type
        prepared = self._session.prepare_request(
            requests.Request(method, url, params=query, data=body, headers=headers)
        )
        # Only the CA bundle is taken from the environment: never a proxy (see webapp.meisai.transport).
        settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
        # Every attempt stays inside the total budget, with a floor so a last attempt can still succeed.
        limit = min(self.call_timeout, max(1.0, deadline - time.monotonic()))
        timeout = (min(self.connect_timeout, limit), min(self.read_timeout, limit))
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        response = None
        content: bytes | None = None
        error: MeisaiError | None = None
        with Deadline(limit, self._transport.cut_connections) as watch:
            try:
                response = self._session.send(
                    prepared, timeout=timeout, allow_redirects=False, stream=True,
                    verify=settings["verify"], cert=settings["cert"],
                )
                content = self._read_answer(method, response)
            except MeisaiError as exc:
                error = exc
            except requests.exceptions.RequestException as exc:
                error = self._transport_error(exc, method)
            finally:
                if response is not None:
                    response.close()
                self._transport.sweep()
        if watch.expired:
            # Whatever the cut connection raised (or a body cut short), the answer did not come in time.
            content, error = None, MeisaiConnectionError(
                f"no complete answer within {limit:.0f} s",
                reason="timeout",
                outcome_unknown=method in _STATE_CHANGING,
                user_message="楽楽明細から時間内に応答がありませんでした。",
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        data = None
        if content is not None and error is None:
            try:
                data = self._interpret(method, response.status_code, response.headers, content)
            except MeisaiError as exc:
                error = exc
        self._log(prepared, params, files, sent_at, response, content, elapsed_ms, error, attempt)
        if error is not None:
            raise error
        return data

    def _read_answer(self, method: str, response: requests.Response) -> bytes:
        """The body, read up to ``MAX_RESPONSE_BYTES``; a redirect's body is never read."""
        status = response.status_code
        if 300 <= status < 400:
            raise MeisaiRedirectError(f"HTTP {status} redirect, not followed", http_status=status)
        too_large = MeisaiResponseTooLarge(
            f"answer longer than {MAX_RESPONSE_BYTES} bytes",
            http_status=status,
            # A 2xx to a POST may mean an accepted import whose ID could not be read.
            outcome_unknown=method in _STATE_CHANGING and 200 <= status < 300,
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise too_large
        chunks, size = [], 0
        for chunk in response.iter_content(_READ_CHUNK):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _transport_error(self, exc: requests.exceptions.RequestException, method: str) -> MeisaiError:
        """Classify a failure without an HTTP answer; decide whether the request could have been accepted."""
        may_have_arrived = method in _STATE_CHANGING
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return MeisaiConnectionError("connect timeout", reason="timeout")
        if isinstance(exc, requests.exceptions.SSLError):
            return MeisaiConnectionError(
                "TLS handshake failed",
                reason="tls",
                retryable=False,
                user_message="SSL/TLS証明書を検証できませんでした。URLのホスト名を確認してください。",
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return MeisaiConnectionError(
                "read timeout after the request was sent",
                reason="timeout",
                outcome_unknown=may_have_arrived,
                user_message="楽楽明細から時間内に応答がありませんでした。",
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, MaxRetryError) and isinstance(cause.reason, DestinationRefused):
                return MeisaiDestinationError(cause.reason.host, cause.reason.address)
            if isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError):
                # DNS failure or refused connection: nothing was sent.
                return MeisaiConnectionError(
                    f"cannot connect: {type(cause.reason).__name__}", reason="unreachable"
                )
            return MeisaiConnectionError(
                "connection lost after the request was sent",
                reason="broken",
                outcome_unknown=may_have_arrived,
            )
        return MeisaiConnectionError(
            f"request failed: {type(exc).__name__}", reason="unreachable", retryable=False
        )

    def _interpret(self, method: str, status: int, headers: Mapping[str, str], content: bytes) -> dict:
        """The JSON of a success, or the typed error the answer means."""
        retry_after = _retry_after(headers.get("Retry-After"))
        data = None
        stripped = content.lstrip()
        if stripped[:1] in (b"{", b"["):
            try:
                data = json.loads(content.decode("utf-8"))
            except ValueError:
                data = None
        common = {"http_status": status, "retry_after": retry_after}
        if not isinstance(data, dict):
            return self._non_json_error(method, status, headers, stripped, common)
        if 200 <= status < 300:
            if data.get("status") == "success":
                return data
            raise MeisaiProtocolError("2xx answer without status=success", **common)
        errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
        first = errors[0] if errors else {}
        code = str(first.get("code") or "") or None
        descriptions = [
            ErrorDescription(
                code=str(d.get("code", "")),
                msg=str(d.get("msg", "")),
                name=str(d.get("name", "")),
                value=str(d.get("value", "")),
            )
            for e in errors
            for d in (e.get("description") or [])
            if isinstance(d, dict)
        ]
        cls = ERROR_CLASSES.get(code or "") or _class_for_status(status)
        kwargs = dict(common, code=code, descriptions=descriptions)
        if status >= 500 and cls in (MeisaiServerError, MeisaiMaintenance):
            kwargs.update(_unknown_if_gateway_timeout(method, status))
        raise cls(str(first.get("msg") or f"HTTP {status}"), **kwargs)

    def _non_json_error(self, method, status, headers, body: bytes, common: dict) -> dict:
        looks_html = "html" in headers.get("Content-Type", "").lower() or body[:1] == b"<"
        if status == 503 or (status == 200 and looks_html):
            # The sister product answers maintenance with a 200 HTML page; treat any HTML 200 the same way.
            raise MeisaiMaintenance(f"maintenance page (HTTP {status})", **common)
        if status == 429:
            raise MeisaiRateLimited("rate limited", **common)
        if status >= 500:
            raise MeisaiServerError(f"HTTP {status}", **common, **_unknown_if_gateway_timeout(method, status))
        if status == 401:
            raise MeisaiAuthError("HTTP 401", **common)
        if status == 404:
            raise MeisaiProtocolError(
                "HTTP 404 without API JSON",
                user_message="このURLには楽楽明細のAPIが見つかりません。"
                "管理画面トップのURL（/backadmin より前）を確認してください。",
                **common,
            )
        raise MeisaiProtocolError(f"unexpected answer (HTTP {status}, not JSON)", **common)

    def _log(self, prepared, params, files, sent_at, response, content, elapsed_ms, error, attempt) -> None:
        text = None
        truncated = False
        if response is not None and content is not None:
            # The API speaks UTF-8; only trust another charset when the server names it.
            declared = "charset=" in response.headers.get("Content-Type", "").lower()
            text = content.decode(
                (response.encoding if declared else None) or "utf-8", errors="replace"
            )
            # Defence in depth: never store the token even if a server echoed it back.
            text = text.replace(self._token, mask_token(self._token))
            if len(text) > MAX_LOGGED_RESPONSE_CHARS:
                text, truncated = text[:MAX_LOGGED_RESPONSE_CHARS], True
        entry = ExchangeLog(
            method=prepared.method,
            url=prepared.url,
            request_headers=mask_headers(dict(prepared.headers)),
            request_params=params,
            files=files,
            sent_at=sent_at,
            http_status=response.status_code if response is not None else None,
            response_text=text,
            response_truncated=truncated,
            elapsed_ms=round(elapsed_ms, 1),
            error=f"{type(error).__name__}: {error}" if error else None,
            attempt=attempt,
        )
        logger.debug(
            "%s %s → %s in %.0f ms (attempt %d)",
            entry.method,
            entry.url,
            entry.http_status,
            elapsed_ms,
            attempt,
        )
        if self.log_exchange is None:
            return
        try:
            self.log_exchange(entry)
        except Exception:
            # A failing log store must not turn an accepted import into an error the caller would retry.
            logger.exception("log_exchange hook failed for %s %s", entry.method, entry.url)


# --- helpers ----------------------------------------------------------------------------------------------


def _api_params(params: CustomerImportParams | ReportImportParams | Mapping) -> dict:
    if isinstance(params, CustomerImportParams | ReportImportParams):
        return params.to_api()
    return dict(params)


def _multipart(params: dict, uploads: Iterable[Upload]) -> tuple[bytes, str, tuple[FileInfo, ...]]:
    """The body, built once per call and reused by retries: the ``json`` part, then ``files[0]``, …"""
    fields: list[tuple[str, object]] = [
        (
            contract.PARAMS_PART,
            (None, json.dumps(params, ensure_ascii=False).encode("utf-8"), "application/json"),
        )
    ]
    infos = []
    for index, upload in enumerate(uploads):
        part = contract.FILE_PART.format(index=index)
        ctype = upload.effective_content_type
        fields.append((part, (upload.filename, upload.data, ctype)))
        infos.append(FileInfo(part, upload.filename, len(upload.data), ctype))
    body, content_type = encode_multipart_formdata(fields)
    return body, content_type, tuple(infos)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # the HTTP-date form is not worth parsing for a bounded backoff


def _class_for_status(status: int) -> type[MeisaiError]:
    if status == 401:
        return MeisaiAuthError
    if status == 404:
        return MeisaiNotFound
    if status == 409:
        return MeisaiConflict
    if status == 413:
        return MeisaiLimitError
    if status == 429:
        return MeisaiRateLimited
    if status == 503:
        return MeisaiMaintenance
    if status >= 500:
        return MeisaiServerError
    if status == 400:
        return MeisaiParamError
    return MeisaiError


def _unknown_if_gateway_timeout(method: str, status: int) -> dict:
    """A 504 means a gateway gave up waiting: the server behind it may have acted on the request."""
    if status == 504 and method in _STATE_CHANGING:
        return {"outcome_unknown": True}
    return {}


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MeisaiProtocolError(f"answer has no integer {name}", http_status=200) from None


def _accepted(data: dict) -> ImportAccepted:
    return ImportAccepted(
        import_id=_int(data.get("importId"), "importId"),
        url=str(data.get("url", "")),
        link_uri=str(data.get("linkuri", "")),
        access_time=str(data.get("accessTime", "")),
        raw=data,
    )


def _state(data: dict, import_id: int) -> ImportState:
    status = data.get("processStatus")
    if not isinstance(status, str) or not status:
        raise MeisaiProtocolError("state answer has no processStatus", http_status=200)
    row_errors = tuple(
        RowError(
            row=e.get("row") if isinstance(e.get("row"), int) else None,
            name=str(e.get("name", "")),
            msg=str(e.get("msg", "")),
        )
        for e in data.get("rowErrors") or []
        if isinstance(e, dict)
    )
    return ImportState(
        import_id=_int(data.get("importId", import_id), "importId"),
        status=status,
        total=_int(data.get("total") or 0, "total"),
        succeeded=_int(data.get("succeeded") or 0, "succeeded"),
        failed=_int(data.get("failed") or 0, "failed"),
        row_errors=row_errors,
        raw=data,
    )


def _connection_check_failure(exc: MeisaiError) -> ConnectionCheck:
    status = exc.http_status
    if isinstance(exc, MeisaiConfigError):
        return ConnectionCheck(False, "invalid_config", exc.user_message, status)
    if isinstance(exc, MeisaiAuthError):
        return ConnectionCheck(
            False,
            "auth",
            "APIトークンが正しくありません（HTTP 401）。楽楽明細の基本設定 › API設定で発行したトークンを"
            "確認してください。",
            status,
        )
    if isinstance(exc, MeisaiMaintenance) and exc.code is None and status == 200:
        return ConnectionCheck(
            False,
            "maintenance",
            "APIの代わりにHTMLページが返りました。楽楽明細のメンテナンス中か、URLが楽楽明細のものではありません。",
            status,
        )
    if isinstance(exc, MeisaiMaintenance):
        return ConnectionCheck(
            False, "maintenance", "楽楽明細はメンテナンス中です。時間をおいて再度お試しください。", status
        )
    if isinstance(exc, MeisaiRateLimited):
        return ConnectionCheck(
            False,
            "rate_limited",
            "楽楽明細へのリクエストが多すぎます。1分ほどおいて再度お試しください。",
            status,
        )
    if isinstance(exc, MeisaiConnectionError):
        if exc.reason == "timeout":
            return ConnectionCheck(False, "timeout", "楽楽明細から時間内に応答がありませんでした。", status)
        if exc.reason == "tls":
            return ConnectionCheck(False, "tls", exc.user_message, status)
        return ConnectionCheck(
            False,
            "unreachable",
            "楽楽明細に接続できません。URLのホスト名とネットワークを確認してください。",
            status,
        )
    if isinstance(exc, MeisaiServerError):
        return ConnectionCheck(
            False, "server_error", f"楽楽明細でサーバーエラーが発生しました（HTTP {status}）。", status
        )
    if isinstance(exc, MeisaiProtocolError | MeisaiNotFound | MeisaiParamError):
        return ConnectionCheck(
            False,
            "not_meisai",
            "このURLは楽楽明細のAPIとして応答しません。管理画面トップのURL（/backadmin より前）を確認して"
            "ください。" + (f"（HTTP {status}）" if status else ""),
            status,
        )
    return ConnectionCheck(False, "unexpected", exc.user_message, status)
