"""Request-level validation of the import POSTs: the parameter tables and the files of MEISAI_API.md.

Everything here answers before an import exists (E_PARAM, E_FILE, E_LIMIT); row-level checks happen later in
the worker and end up in the import's ``rowErrors``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime

from webapp.meisai import contract

from .errors import ApiError, Description, param_error

_PUBLICATION_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
# Bounds what a ZIP may expand to, so a crafted archive cannot fill the disk.
MAX_ZIP_UNCOMPRESSED = 200 * 1024 * 1024


# --- parameters -------------------------------------------------------------------------------------------


def _int(raw: dict, name: str, problems: list, allowed: tuple[int, ...] | None = None) -> int | None:
    """A JSON number or a numeric string; None when absent. Problems are collected, not raised."""
    if name not in raw or raw[name] is None:
        return None
    value = raw[name]
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,9}", value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is None:
        problems.append(param_error(name, "整数で指定してください。", value))
        return None
    if allowed is not None and number not in allowed:
        problems.append(
            param_error(name, f"{' / '.join(map(str, allowed))} のいずれかを指定してください。", value)
        )
        return None
    return number


def _text(raw: dict, name: str, problems: list) -> str | None:
    if name not in raw or raw[name] is None:
        return None
    value = raw[name]
    if not isinstance(value, str):
        problems.append(param_error(name, "文字列で指定してください。", value))
        return None
    if len(value) > contract.MAX_PROCESS_NAME_CHARS:
        problems.append(
            param_error(name, f"{contract.MAX_PROCESS_NAME_CHARS}文字以内で指定してください。", value[:50])
        )
        return None
    return value


def _unknown(raw: dict, known: tuple[str, ...], problems: list) -> None:
    for name in raw:
        if name not in known:
            problems.append(param_error(name, "不明なパラメータです。", raw[name], code="E_PARAM_UNKNOWN"))


def _not_allowed(raw: dict, name: str, why: str, problems: list) -> None:
    if raw.get(name) is not None:
        problems.append(param_error(name, why, raw[name], code="E_PARAM_NOT_ALLOWED"))


def _required(name: str, problems: list) -> None:
    problems.append(param_error(name, "必須です。", "", code="E_PARAM_REQUIRED"))


def validate_customer_params(raw: dict) -> dict:
    """The effective customer import parameters, defaults applied; raises E_PARAM listing every problem."""
    problems: list[Description] = []
    _unknown(raw, contract.CUSTOMER_PARAMS, problems)
    effective = {
        "isUpdateInfo": _int(raw, "isUpdateInfo", problems, (0, 1)),
        "updateBlank": _int(
            raw, "updateBlank", problems, (contract.UPDATE_BLANK_OVERWRITE, contract.UPDATE_BLANK_KEEP)
        ),
        "importProcessName": _text(raw, "importProcessName", problems),
        "skipFirst": _int(raw, "skipFirst", problems, (0, 1)),
        "settingId": _int(raw, "settingId", problems),
    }
    if problems:
        raise ApiError(contract.E_PARAM, descriptions=problems)
    defaults = {"isUpdateInfo": 0, "updateBlank": contract.UPDATE_BLANK_KEEP, "skipFirst": 1}
    return {k: (defaults.get(k) if v is None else v) for k, v in effective.items()}


def validate_report_params(raw: dict, now_jst: datetime) -> dict:
    """The effective document import parameters; raises E_PARAM listing every problem."""
    problems: list[Description] = []
    _unknown(raw, contract.REPORT_PARAMS, problems)
    new_issues = _int(raw, "isNewIssues", problems, (contract.NEW_ISSUE, contract.REPLACE_ISSUE))
    if "isNewIssues" not in raw or raw["isNewIssues"] is None:
        _required("isNewIssues", problems)
    skip = _int(raw, "isImmApproval", problems, (0, 1)) or 0
    effective = {
        "reportTypeId": _int(raw, "reportTypeId", problems),
        "isNewIssues": new_issues,
        "importProcessName": _text(raw, "importProcessName", problems),
        "skipFirst": _int(raw, "skipFirst", problems, (0, 1)),
        "isImmApproval": skip,
        "pdfIssueType": None,
        "publicationDate": None,
        "isSendMail": None,
        "isPostReplaceBill": None,
        "isSendFax": None,
        "approvalFlowId": _int(raw, "approvalFlowId", problems),
    }
    if skip == 1:
        issue_type = _int(
            raw, "pdfIssueType", problems, (contract.PDF_ISSUE_IMMEDIATE, contract.PDF_ISSUE_SCHEDULED)
        )
        if raw.get("pdfIssueType") is None:
            _required("pdfIssueType", problems)
        effective["pdfIssueType"] = issue_type
    else:
        _not_allowed(raw, "pdfIssueType", "承認スキップ（isImmApproval=1）のときだけ指定できます。", problems)
    if effective["pdfIssueType"] == contract.PDF_ISSUE_SCHEDULED:
        effective["publicationDate"] = _publication_date(raw, now_jst, problems)
    else:
        _not_allowed(raw, "publicationDate", "予約発行（pdfIssueType=1）のときだけ指定できます。", problems)
    for name in ("isSendMail", "isPostReplaceBill", "isSendFax"):
        if new_issues == contract.REPLACE_ISSUE:
            effective[name] = _int(raw, name, problems, (0, 1)) or 0
        else:
            _not_allowed(raw, name, "差替発行（isNewIssues=2）のときだけ指定できます。", problems)
    if problems:
        raise ApiError(contract.E_PARAM, descriptions=problems)
    if effective["reportTypeId"] is None:
        effective["reportTypeId"] = 1
    if effective["skipFirst"] is None:
        effective["skipFirst"] = 1
    return effective


def _publication_date(raw: dict, now_jst: datetime, problems: list) -> str | None:
    value = raw.get("publicationDate")
    if value is None or value == "":
        _required("publicationDate", problems)
        return None
    if not isinstance(value, str) or not _PUBLICATION_DATE.match(value):
        problems.append(param_error("publicationDate", "YYYY-MM-DD HH:MM:SS 形式で指定してください。", value))
        return None
    try:
        moment = datetime.strptime(value, contract.PUBLICATION_DATE_FORMAT).replace(tzinfo=contract.JST)
    except ValueError:
        problems.append(param_error("publicationDate", "存在しない日時です。", value))
        return None
    if moment <= now_jst:
        problems.append(
            param_error("publicationDate", "未来の日時を指定してください。", value, "E_PARAM_PAST")
        )
        return None
    return value


# --- files ------------------------------------------------------------------------------------------------


@dataclass
class ReceivedFile:
    part: str
    filename: str
    content_type: str
    data: bytes

    @property
    def looks_like_zip(self) -> bool:
        return (
            self.data[:4] in (b"PK\x03\x04", b"PK\x05\x06")
            or "zip" in self.content_type.lower()
            or self.filename.lower().endswith(".zip")
        )


def check_size(upload: ReceivedFile) -> None:
    if len(upload.data) > contract.MAX_FILE_BYTES:
        raise ApiError(
            contract.E_LIMIT,
            f"1ファイルのサイズ上限（{contract.MAX_FILE_BYTES:,}バイト）を超えています。",
            [param_error(upload.part, f"{len(upload.data):,}バイト", upload.filename, "E_LIMIT_SIZE")],
            status=contract.LIMIT_STATUS_SIZE,
        )
    if not upload.data:
        raise ApiError(
            contract.E_FILE, "ファイルが空です。", [param_error(upload.part, "空のファイル", upload.filename)]
        )


def encoding_refusal(upload: ReceivedFile, why: str) -> ApiError:
    """E_FILE for a CSV that is not read as Windows-31J (also the ``refuse_csv_encoding`` fault knob)."""
    return ApiError(
        contract.E_FILE,
        "CSVファイルの文字コードがWindows-31J(Shift_JIS)ではありません。",
        [param_error(upload.part, why, upload.filename, contract.E_FILE_ENCODING)],
    )


def decode_csv(upload: ReceivedFile) -> str:
    """The text of a Windows-31J CSV; anything else (UTF-8, UTF-16, binary) is E_FILE."""
    data = upload.data

    def refuse(why: str):
        return encoding_refusal(upload, why)

    if data.startswith(b"\xef\xbb\xbf"):
        raise refuse("UTF-8 (BOM付き) のファイルです。")
    if b"\x00" in data:
        raise refuse("NULバイトを含みます（UTF-16 などのファイルです）。")
    if not data.isascii():
        # Japanese UTF-8 often decodes as cp932 without error (as mojibake); real cp932 text almost
        # never is valid UTF-8. So a file that is valid UTF-8 with non-ASCII bytes is refused as UTF-8.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise refuse("UTF-8 のファイルです。")
    try:
        return data.decode(contract.CSV_ENCODING)
    except UnicodeDecodeError as exc:
        raise refuse(f"{exc.start}バイト目が Windows-31J として読めません。") from None


def parse_csv(upload: ReceivedFile, text: str, skip_first: int) -> list[tuple[int, list[str]]]:
    """Data records as ``(record number in the file, cells)``; blank lines are ignored. Enforces the row limit."""
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise ApiError(
            contract.E_FILE,
            "CSVファイルの形式が正しくありません。",
            [param_error(upload.part, str(exc), upload.filename, contract.E_FILE_FORMAT)],
        ) from None
    numbered = [(number, record) for number, record in enumerate(records, start=1) if record]
    rows = numbered[1:] if skip_first and numbered else numbered
    if len(rows) > contract.MAX_ROWS_PER_FILE:
        raise ApiError(
            contract.E_LIMIT,
            f"1ファイルのデータ行数の上限（{contract.MAX_ROWS_PER_FILE:,}行）を超えています。",
            [param_error(upload.part, f"{len(rows):,}行", upload.filename, "E_LIMIT_ROWS")],
            status=contract.LIMIT_STATUS_ROWS,
        )
    return rows


def read_pdf_zip(upload: ReceivedFile) -> list[tuple[str, bytes]]:
    """``(member name, bytes)`` of every PDF in the ZIP; E_FILE when it is not a ZIP of PDFs only."""

    def refuse(msg: str, name: str = ""):
        return ApiError(contract.E_FILE, msg, [param_error(upload.part, msg, name or upload.filename)])

    try:
        archive = zipfile.ZipFile(io.BytesIO(upload.data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, ValueError):
        raise refuse("ZIPファイルではありません。") from None
    if not infos:
        raise refuse("ZIPファイルにPDFがありません。")
    if len(infos) > contract.MAX_ROWS_PER_FILE:
        raise ApiError(
            contract.E_LIMIT,
            f"ZIP内のPDFが上限（{contract.MAX_ROWS_PER_FILE:,}件）を超えています。",
            [param_error(upload.part, f"{len(infos):,}件", upload.filename, "E_LIMIT_ROWS")],
            status=contract.LIMIT_STATUS_ROWS,
        )
    if sum(i.file_size for i in infos) > MAX_ZIP_UNCOMPRESSED:
        raise ApiError(
            contract.E_LIMIT, "ZIPの展開後のサイズが大きすぎます。", status=contract.LIMIT_STATUS_SIZE
        )
    pdfs = []
    for info in infos:
        if not info.filename.lower().endswith(".pdf"):
            raise refuse("ZIPにPDF以外のファイルが含まれています。", info.filename)
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError):
            raise refuse("ZIP内のファイルを読めません。", info.filename) from None
        if not data.startswith(b"%PDF"):
            raise refuse("PDFではないファイルが含まれています。", info.filename)
        pdfs.append((info.filename, data))
    return pdfs
