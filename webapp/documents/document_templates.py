"""Document templates (帳票テンプレート): editable TOML files that say what a generated PDF shows.

A template maps the parts of a document to DB fields by field NAME (the first listed name whose field exists
and has a value wins; a missing field prints blank) and holds the fixed texts. `_company.toml` beside the
templates holds the issuer (発行元: 会社名, 登録番号, 振込先) that every template shares; a template's own
[issuer] / [payment] keys override it. Files in DOCUMENT_TEMPLATES_DIR (default: instance/document_templates)
add templates or replace bundled ones of the same file name. Edits apply without a restart: a changed file
changes the fingerprint of every PDF made from it, so those PDFs are regenerated when next used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flask import current_app, has_app_context

from .errors import TemplateError

BUNDLED_DIR = Path(__file__).resolve().parent / "templates_pdf"
COMPANY_FILE = "_company.toml"
DEFAULT_TEMPLATE = "invoice"
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,50}")
REGISTRATION_NUMBER = re.compile(r"T\d{13}")

COLUMN_VALUES = {"no", "item", "quantity", "unit", "unit_price", "amount", "tax_rate"}
FORMATS = {"text", "date", "yen"}
ROUNDINGS = {"down", "half_up", "up"}
ALIGNS = {"left", "center", "right"}


@dataclass(frozen=True)
class InfoLine:
    label: str
    fields: tuple[str, ...]
    format: str = "text"


@dataclass(frozen=True)
class Column:
    label: str
    value: str
    width: float = 10.0
    align: str = "left"


@dataclass(frozen=True)
class DocumentTemplate:
    key: str
    name: str
    title: str
    lead: str = ""
    file_name: str = ""
    font: str = "gothic"
    order: int = 100
    addressee: dict = field(default_factory=dict)
    info: tuple[InfoLine, ...] = ()
    subject: InfoLine | None = None
    amount: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    columns: tuple[Column, ...] = ()
    totals: dict = field(default_factory=dict)
    issuer: dict = field(default_factory=dict)
    payment: dict = field(default_factory=dict)
    remarks: InfoLine | None = None
    stamps: tuple[str, ...] = ()
    source: str = ""

    @property
    def spec_hash(self) -> str:
        """Changes whenever anything printed changes (not for comments or spacing in the file)."""
        spec = asdict(self)
        spec.pop("source")
        return hashlib.sha256(json.dumps(spec, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


# ---- parsing --------------------------------------------------------------------------------------------

ADDRESSEE_KEYS = {"company", "department", "person", "postal_code", "address", "address2",
                  "company_honorific", "person_honorific"}
AMOUNT_KEYS = {"label", "note", "show"}
DETAIL_KEYS = {"item", "quantity", "unit", "unit_price", "amount", "tax_rate", "default_tax_rate",
               "reduced_rates", "reduced_mark"}
TOTALS_KEYS = {"show", "rounding", "subtotal_label", "tax_label", "total_label", "breakdown_title",
               "breakdown_base_label", "breakdown_tax_label", "reduced_note", "exempt_label"}
ISSUER_KEYS = {"company", "postal_code", "address", "tel", "fax", "email", "person", "registration_number",
               "registration_label", "seal"}
PAYMENT_KEYS = {"show", "label", "lines", "note"}
TOP_KEYS = {"name", "title", "lead", "file_name", "font", "order", "addressee", "info", "subject", "amount",
            "details", "columns", "totals", "issuer", "payment", "remarks", "stamps"}
FIELD_LIST_KEYS = {"company", "department", "person", "postal_code", "address", "address2",
                   "item", "quantity", "unit", "unit_price", "amount", "tax_rate"}


class _Reader:
    """Validates one file's values, naming the file and the key in every Japanese error message."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, message: str):
        raise TemplateError(f"帳票テンプレート {self.source}: {message}")

    def table(self, value, where: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"[{where}] は表(テーブル)で書いてください。")
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.fail(f"[{where}] に不明な設定があります: {', '.join(unknown)}")
        return value

    def text(self, value, where: str, default: str = "") -> str:
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(f"{where} は文字列で書いてください。")
        return value

    def names(self, value, where: str) -> tuple[str, ...]:
        """A field name or a list of them (fallbacks in order)."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{where} は項目名(文字列)かそのリストで書いてください。")
        return tuple(v.strip() for v in value if v.strip())

    def choice(self, value, where: str, allowed: set[str], default: str) -> str:
        value = default if value is None else value
        if value not in allowed:
            self.fail(f"{where} は {' / '.join(sorted(allowed))} のいずれかにしてください(現在: {value})。")
        return value

    def info_line(self, value, where: str) -> InfoLine:
        value = self.table(value, where, {"label", "fields", "format"})
        return InfoLine(
            label=self.text(value.get("label"), f"{where}.label"),
            fields=self.names(value.get("fields"), f"{where}.fields"),
            format=self.choice(value.get("format"), f"{where}.format", FORMATS, "text"),
        )


def _merge_company(raw: dict, company: dict) -> dict:
    merged = dict(raw)
    for section in ("issuer", "payment"):
        base = dict(company.get(section) or {})
        base.update(raw.get(section) or {})
        if base:
            merged[section] = base
    return merged


def parse_template(key: str, raw: dict, source: str, company: dict | None = None) -> DocumentTemplate:
    """Validate a template's parsed TOML (merged with the shared issuer) into a DocumentTemplate."""
    read = _Reader(source)
    raw = _merge_company(raw, company or {})
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        read.fail(f"不明な設定があります: {', '.join(unknown)}")
    name = read.text(raw.get("name"), "name").strip()
    if not name:
        read.fail("name(項目設定に表示する名前)を書いてください。")

    addressee = read.table(raw.get("addressee"), "addressee", ADDRESSEE_KEYS)
    addressee = {k: (read.names(v, f"addressee.{k}") if k in FIELD_LIST_KEYS else read.text(v, f"addressee.{k}"))
                 for k, v in addressee.items()}
    details = read.table(raw.get("details"), "details", DETAIL_KEYS)
    parsed_details: dict = {}
    for k, v in details.items():
        if k in FIELD_LIST_KEYS:
            parsed_details[k] = read.names(v, f"details.{k}")
        elif k == "default_tax_rate":
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 100:
                read.fail("details.default_tax_rate は 0〜100 の数値にしてください。")
            parsed_details[k] = v
        elif k == "reduced_rates":
            if not isinstance(v, list) or not all(isinstance(r, int | float) for r in v):
                read.fail("details.reduced_rates は税率(数値)のリストにしてください(例: [8])。")
            parsed_details[k] = tuple(v)
        else:
            parsed_details[k] = read.text(v, f"details.{k}")

    columns = []
    raw_columns = raw.get("columns") or []
    if not isinstance(raw_columns, list):
        read.fail("[[columns]] は表の配列で書いてください。")
    for index, raw_column in enumerate(raw_columns, start=1):
        where = f"columns {index}件目"
        column = read.table(raw_column, where, {"label", "value", "width", "align"})
        width = column.get("width", 10)
        if not isinstance(width, int | float) or isinstance(width, bool) or width <= 0:
            read.fail(f"{where}.width は正の数値にしてください。")
        columns.append(Column(
            label=read.text(column.get("label"), f"{where}.label"),
            value=read.choice(column.get("value"), f"{where}.value", COLUMN_VALUES, "item"),
            width=float(width),
            align=read.choice(column.get("align"), f"{where}.align", ALIGNS, "left"),
        ))

    totals = read.table(raw.get("totals"), "totals", TOTALS_KEYS)
    totals = {k: (bool(v) if k == "show" else read.text(v, f"totals.{k}")) for k, v in totals.items()}
    totals["rounding"] = read.choice(totals.get("rounding"), "totals.rounding", ROUNDINGS, "down")

    issuer = read.table(raw.get("issuer"), "issuer", ISSUER_KEYS)
    issuer = {k: (bool(v) if k == "seal" else read.text(v, f"issuer.{k}")) for k, v in issuer.items()}
    number = issuer.get("registration_number", "")
    if number and not REGISTRATION_NUMBER.fullmatch(number):
        read.fail(f"issuer.registration_number(登録番号)は「T」+13桁の数字で書いてください(現在: {number})。")

    payment = read.table(raw.get("payment"), "payment", PAYMENT_KEYS)
    lines = payment.get("lines", [])
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        read.fail("payment.lines は文字列のリストにしてください。")
    payment = {"show": bool(payment.get("show", True)), "label": read.text(payment.get("label"), "payment.label"),
               "lines": tuple(lines), "note": read.text(payment.get("note"), "payment.note")}

    amount = read.table(raw.get("amount"), "amount", AMOUNT_KEYS)
    amount = {"show": bool(amount.get("show", True)), "label": read.text(amount.get("label"), "amount.label"),
              "note": read.text(amount.get("note"), "amount.note")}

    stamps = raw.get("stamps") or []
    if not isinstance(stamps, list) or not all(isinstance(s, str) for s in stamps):
        read.fail("stamps は文字列のリストにしてください(例: [\"受領印\"])。")
    order = raw.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        read.fail("order は整数にしてください。")
    info = raw.get("info") or []
    if not isinstance(info, list):
        read.fail("[[info]] は表の配列で書いてください。")

    return DocumentTemplate(
        key=key,
        name=name,
        title=read.text(raw.get("title"), "title", name),
        lead=read.text(raw.get("lead"), "lead"),
        file_name=read.text(raw.get("file_name"), "file_name"),
        font=read.choice(raw.get("font"), "font", {"gothic", "mincho"}, "gothic"),
        order=order,
        addressee=addressee,
        info=tuple(read.info_line(line, f"info {i}件目") for i, line in enumerate(info, start=1)),
        subject=read.info_line(raw["subject"], "subject") if raw.get("subject") else None,
        amount=amount,
        details=parsed_details,
        columns=tuple(columns),
        totals=totals,
        issuer=issuer,
        payment=payment,
        remarks=read.info_line(raw["remarks"], "remarks") if raw.get("remarks") else None,
        stamps=tuple(stamps),
        source=source,
    )


# ---- loading --------------------------------------------------------------------------------------------

_cache: dict[str, tuple[tuple, DocumentTemplate]] = {}
_company_cache: dict[str, tuple[tuple, dict]] = {}
_lock = threading.Lock()


def template_dirs() -> list[Path]:
    """Where templates are looked up, the first one winning for a file name."""
    configured = None
    if has_app_context():
        configured = current_app.config.get("DOCUMENT_TEMPLATES_DIR") or os.environ.get("DOCUMENT_TEMPLATES_DIR")
        configured = configured or str(Path(current_app.instance_path) / "document_templates")
    else:
        configured = os.environ.get("DOCUMENT_TEMPLATES_DIR")
    return [Path(configured), BUNDLED_DIR] if configured else [BUNDLED_DIR]


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"帳票テンプレート {path.name} の書式が正しくありません(TOML): {exc}") from exc
    except OSError as exc:
        raise TemplateError(f"帳票テンプレート {path.name} を読み込めません: {exc}") from exc


def _find(file_name: str) -> Path | None:
    for directory in template_dirs():
        path = directory / file_name
        if path.is_file():
            return path
    return None


def _company() -> tuple[dict, tuple]:
    path = _find(COMPANY_FILE)
    if path is None:
        return {}, ()
    stamp = (str(path), *_stamp(path))
    cached = _company_cache.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1], stamp
    company = _read_toml(path)
    _company_cache[str(path)] = (stamp, company)
    return company, stamp


def load_template(key: str) -> DocumentTemplate:
    """The template `key` (its file name without .toml), re-read when the file changed."""
    if not KEY_PATTERN.fullmatch(key or ""):
        raise TemplateError(f"帳票テンプレート「{key}」の名前が正しくありません。")
    path = _find(f"{key}.toml")
    if path is None:
        raise TemplateError(f"帳票テンプレート「{key}」が見つかりません。項目設定でテンプレートを選び直してください。")
    company, company_stamp = _company()
    stamp = (str(path), *_stamp(path), company_stamp)
    cached = _cache.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    with _lock:
        template = parse_template(key, _read_toml(path), path.name, company)
        _cache[key] = (stamp, template)
    return template


def available_templates() -> list[DocumentTemplate]:
    """Every loadable template, for the field settings' choice (broken files are left out)."""
    keys: set[str] = set()
    for directory in template_dirs():
        if directory.is_dir():
            keys.update(p.stem for p in directory.glob("*.toml") if not p.name.startswith("_"))
    templates = []
    for key in keys:
        try:
            templates.append(load_template(key))
        except TemplateError:
            continue
    return sorted(templates, key=lambda t: (t.order, t.key))


def template_key_of(target) -> str:
    """The template a 自動生成ファイル field uses (fields made before templates existed get the default)."""
    return (target.settings or {}).get("template") or DEFAULT_TEMPLATE
