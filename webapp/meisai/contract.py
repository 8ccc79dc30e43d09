"""The 楽楽明細 API contract as code: the one named place for every value both ends of the wire agree on.

Mirrors ``MEISAI_API.md``. Items marked "(chosen)" there are not public: this product fixes them so that the
client and the emulator agree. When a real tenant shows otherwise, correct the value here; the client and the
emulator both read it from this module. Pure constants and tiny pure helpers only: no Flask, no requests.
"""

from __future__ import annotations

from datetime import timedelta, timezone

# --- Connection -------------------------------------------------------------------------------------------
API_ROOT = "api/v1/"
TOKEN_HEADER = "X-WB-apitoken"
# The sister product 楽楽精算 uses this one; a token sent under it is a configuration mistake worth naming.
WRONG_TOKEN_HEADER = "X-RS-apitoken"
# The admin UI lives under this path segment; the base URL is everything before it.
ADMIN_SEGMENT = "backadmin"

# --- Endpoints (relative to the API root) -----------------------------------------------------------------
PATH_CUSTOMER_IMPORTS = "customers/imports"
PATH_CUSTOMER_IMPORT_STATE = "customers/imports/{import_id}/state"
PATH_REPORT_IMPORTS = "reports/imports"
PATH_REPORT_IMPORT_STATE = "reports/imports/{import_id}/state"
PATH_REPORT_IMPORT = "reports/imports/{import_id}"
PATH_CUSTOMERS = "customers/"  # GET with ?keyword=… (chosen: JSON list)

# --- Multipart body ---------------------------------------------------------------------------------------
PARAMS_PART = "json"
FILE_PART = "files[{index}]"
CSV_ENCODING = "cp932"  # Windows-31J
CSV_CONTENT_TYPE = "text/csv; charset=Windows-31J"
ZIP_CONTENT_TYPE = "application/zip"
CSV_LINE_END = "\r\n"

# --- Parameters -------------------------------------------------------------------------------------------
CUSTOMER_PARAMS = ("isUpdateInfo", "updateBlank", "importProcessName", "skipFirst", "settingId")
REPORT_PARAMS = (
    "reportTypeId",
    "isNewIssues",
    "importProcessName",
    "skipFirst",
    "isImmApproval",
    "pdfIssueType",
    "publicationDate",
    "isSendMail",
    "isPostReplaceBill",
    "isSendFax",  # (chosen name)
    "approvalFlowId",
)
NEW_ISSUE = 1
REPLACE_ISSUE = 2
UPDATE_BLANK_OVERWRITE = 1
UPDATE_BLANK_KEEP = 2
PDF_ISSUE_IMMEDIATE = 0
PDF_ISSUE_SCHEDULED = 1
PUBLICATION_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# 楽楽明細 runs on Japan time; Japan has no DST, so a fixed offset is exact.
JST = timezone(timedelta(hours=9), "JST")
# (chosen) The emulator refuses longer memos; the real limit is not published.
MAX_PROCESS_NAME_CHARS = 255

# --- Limits -----------------------------------------------------------------------------------------------
MAX_ROWS_PER_FILE = 10_000
# (chosen) "3 MB" read as 3 MiB.
MAX_FILE_BYTES = 3 * 1024 * 1024
# (chosen) HTTP statuses of E_LIMIT: a file over the size limit is 413, over the row limit 400.
LIMIT_STATUS_SIZE = 413
LIMIT_STATUS_ROWS = 400

# --- Responses --------------------------------------------------------------------------------------------
STATE_ACTIVE = "active"
STATE_COMPLETE = "complete"
STATE_ERROR = "error"  # (chosen) the failure value; rows without errors are still imported
# (chosen) rowErrors[].row is the record number in the file as sent, the header row being 1 when skipFirst=1.
# (chosen) rowErrors[].msg of a row whose number of cells differs from the import format's columns; the
# pattern reads the two numbers back (full- or half-width parentheses).
COLUMN_COUNT_ROW_ERROR = "列数（{sent}）が取込設定の列数（{expected}）と一致しません。"
COLUMN_COUNT_ROW_ERROR_PATTERN = r"列数[（(](?P<sent>\d+)[）)]が取込設定の列数[（(](?P<expected>\d+)[）)]"

# (chosen) error codes and their HTTP statuses.
E_AUTH = "E_AUTH"
E_PARAM = "E_PARAM"
E_FILE = "E_FILE"
E_LIMIT = "E_LIMIT"
E_NOT_FOUND = "E_NOT_FOUND"
E_CONFLICT = "E_CONFLICT"
E_RATE = "E_RATE"
E_MAINTENANCE = "E_MAINTENANCE"
# (chosen, emulator only) the body of an injected 5xx; the real API's 5xx body is unknown, so the client
# classifies 5xx by status, never by this code.
E_SERVER = "E_SERVER"
# (chosen) description codes of E_FILE naming why a file was refused.
E_FILE_ENCODING = "E_FILE_ENCODING"  # not Windows-31J
E_FILE_FORMAT = "E_FILE_FORMAT"  # not a readable CSV
ERROR_STATUS = {
    E_AUTH: 401,
    E_PARAM: 400,
    E_FILE: 400,
    E_LIMIT: 400,
    E_NOT_FOUND: 404,
    E_CONFLICT: 409,
    E_RATE: 429,
    E_MAINTENANCE: 503,
    E_SERVER: 500,
}
# (chosen) DELETE of a report import whose documents are issued (or that is still importing) answers 409.
DELETE_CONFLICT_STATUS = 409

# (chosen) The customer search answers {"status": "success", "code": "200", "total": n, "customers": [...]};
# each customer carries these keys (JSON key → the 楽楽明細 attribute).
CUSTOMER_JSON_KEYS = {
    "customerCode": "顧客コード",
    "customerName": "顧客名",
    "postalCode": "郵便番号",
    "address1": "住所1",
    "address2": "住所2",
    "companyName": "会社名",
    "departmentName": "部署名",
    "personName": "担当者名",
    "mailAddress": "メールアドレス",
    "webStatus": "Web利用",
}
# (chosen) at most this many customers per search answer; `total` counts all matches.
CUSTOMER_SEARCH_LIMIT = 100

# --- Import formats (columns map by position to these attributes) -----------------------------------------
SKIP_COLUMN = "スキップ"
CUSTOMER_CODE = "顧客コード"
DOCUMENT_NO = "帳票No"
CUSTOMER_ATTRIBUTES = tuple(CUSTOMER_JSON_KEYS.values())
WEB_STATUS_UNUSED = "未利用"
WEB_STATUS_IN_USE = "利用中"
WEB_STATUS_STOPPED = "利用停止"
WEB_STATUSES = (WEB_STATUS_UNUSED, WEB_STATUS_IN_USE, WEB_STATUS_STOPPED)
# Document header attributes carried for 電子帳簿保存法 search.
BOOKKEEPING_ATTRIBUTES = ("取引年月日", "取引金額", "取引先")

# Every new tenant starts with these; the host app's demo menus follow them.
DEFAULT_CUSTOMER_IMPORT_FORMATS = {
    1: (
        "標準顧客フォーマット",
        (
            "顧客コード",
            "顧客名",
            "郵便番号",
            "住所1",
            "住所2",
            "会社名",
            "部署名",
            "担当者名",
            "メールアドレス",
        ),
    ),
}
DEFAULT_REPORT_COLUMNS = (
    "顧客コード",
    "帳票No",
    "取引年月日",
    "取引金額",
    "取引先",
    "件名",
    "品名",
    "数量",
    "単価",
    "金額",
)
DEFAULT_REPORT_TYPES = {1: ("請求書", DEFAULT_REPORT_COLUMNS), 2: ("納品書", DEFAULT_REPORT_COLUMNS)}
# approval flow id → (name, 「承認をスキップする」)
DEFAULT_APPROVAL_FLOWS = {1: ("通常承認", False), 2: ("承認スキップ用", True)}


def pdf_member_name(customer_code: str, document_no: str | None = None) -> str:
    """(chosen) The name of a PDF inside the ZIP: ``{顧客コード}_{帳票No}.pdf`` or ``{顧客コード}.pdf``."""
    return f"{customer_code}_{document_no}.pdf" if document_no else f"{customer_code}.pdf"


def customer_code_of_pdf(member_name: str) -> str:
    """The customer code a PDF joins to: the base name up to the first ``_`` (without ``.pdf``)."""
    stem = member_name.rsplit("/", 1)[-1]
    if stem.lower().endswith(".pdf"):
        stem = stem[:-4]
    return stem.split("_", 1)[0]


def generated_document_no(report_type_id: int, import_id: int, customer_code: str) -> str:
    """The 帳票No 楽楽明細 gives a document imported without one."""
    return f"R{report_type_id:02d}{import_id:06d}_{customer_code}"
