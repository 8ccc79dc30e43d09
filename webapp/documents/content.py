"""What a document says: the record's values picked by a template, the 明細 lines and the tax totals.

Pure functions of (fields, template, values): the fingerprint of a stored PDF is a hash of this content, so
a PDF is regenerated exactly when something it prints changes.

Consumption tax follows the インボイス制度 (適格請求書) rule: line amounts are added up per tax rate and the tax
is rounded ONCE per rate per document (totals.rounding, 切り捨て by default), never per line.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

from .document_templates import DocumentTemplate

ROUNDING_MODES = {"down": ROUND_DOWN, "half_up": ROUND_HALF_UP, "up": ROUND_UP}
ORGANISATION_MARKERS = (
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "法人", "組合", "協会", "連合会", "事務所", "商店",
    "学校", "大学", "病院", "医院", "役所", "役場", "御中", "(株)", "(有)", "（株）", "（有）", "㈱", "㈲",
    "Inc", "Ltd", "LLC", "Co.", "Corp",
)
HONORIFICS = ("御中", "様", "殿")
FILE_NAME_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@dataclass
class Line:
    cells: dict[str, str]
    amount: int | None
    rate: str
    reduced: bool


@dataclass
class TaxGroup:
    rate: str
    label: str
    base: int
    tax: int
    reduced: bool


@dataclass
class DocumentContent:
    title: str
    file_name: str
    addressee: list[str] = field(default_factory=list)  # lines, the name line first
    addressee_address: list[str] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)
    subject: tuple[str, str] | None = None
    lines: list[Line] = field(default_factory=list)
    groups: list[TaxGroup] = field(default_factory=list)
    subtotal: int = 0
    tax: int = 0
    total: int = 0
    has_reduced: bool = False
    remarks: tuple[str, str] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ---- value helpers --------------------------------------------------------------------------------------


def to_decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).replace(",", "").replace("¥", "").replace("￥", "").strip()
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def yen(amount) -> str:
    """¥1,234,567 (negative: -¥1,000; fractions kept as typed, e.g. ¥12.5)."""
    if amount is None:
        return ""
    amount = Decimal(amount)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    whole = int(amount)
    fraction = amount - whole
    text = f"{whole:,}"
    if fraction:
        text += str(fraction.normalize())[1:]
    return f"{sign}¥{text}"


def number_text(value: Decimal | None) -> str:
    if value is None:
        return ""
    whole = int(value)
    if value == whole:
        return f"{whole:,}"
    return f"{whole:,}" + str(abs(value - whole).normalize())[1:]


def japanese_date(value) -> str:
    """2026-04-30 (or a 日時 value) → 2026年4月30日; anything else is printed as stored."""
    text = str(value or "")
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{day.year}年{day.month}月{day.day}日"


def rate_of(value, default) -> Decimal:
    """A tax rate from a value such as "10%", "軽減8%", 8 or 0.08; blank or unreadable → the default."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = Decimal(str(value))
    else:
        match = re.search(r"\d+(?:\.\d+)?", str(value or ""))
        if not match:
            return Decimal(str(default))
        rate = Decimal(match.group())
    if 0 < rate < 1:  # 0.08 written as a fraction
        rate *= 100
    return rate.normalize() if rate != rate.to_integral_value() else rate.quantize(Decimal(1))


def round_yen(amount: Decimal, mode: str) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUNDING_MODES[mode]))


def tax_for(base: int, rate: Decimal, mode: str) -> int:
    """The tax of one rate's total: one rounding per rate per document."""
    return round_yen(Decimal(base) * rate / 100, mode)


def safe_file_name(name: str) -> str:
    return FILE_NAME_UNSAFE.sub("_", name).strip().strip(".")[:120]


# ---- building ------------------------------------------------------------------------------------------


class _Values:
    """Record values looked up by field name (header or 明細 row)."""

    def __init__(self, fields_by_name: dict, values: dict):
        self.fields_by_name = fields_by_name
        self.values = values

    def raw(self, names) -> tuple[object, object]:
        """(field, value) of the first listed field that exists and holds a value."""
        for name in names or ():
            target = self.fields_by_name.get(name)
            if target is None:
                continue
            value = self.values.get(target.key)
            if value not in (None, "", [], False):
                return target, value
        return None, None

    def text(self, names, fmt: str = "text") -> str:
        target, value = self.raw(names)
        if target is None:
            return ""
        if fmt == "date":
            return japanese_date(value)
        if fmt == "yen":
            return yen(to_decimal(value)) if to_decimal(value) is not None else target.kind.display(value)
        if target.kind.is_file:
            return ""
        return target.kind.display(value)


def _is_organisation(name: str) -> bool:
    return any(marker in name for marker in ORGANISATION_MARKERS)


def _addressee(template: DocumentTemplate, header: _Values) -> tuple[list[str], list[str]]:
    spec = template.addressee
    company_honorific = spec.get("company_honorific", "御中")
    person_honorific = spec.get("person_honorific", "様")
    company = header.text(spec.get("company"))
    department = header.text(spec.get("department"))
    person = header.text(spec.get("person"))
    lines: list[str] = []
    if person:
        # 御中 and 様 are never combined: a named person gets 様 and the company is printed plain.
        lines = [company] if company else []
        person_line = " ".join(p for p in (department, person) if p)
        lines.append(person_line if person_line.endswith(HONORIFICS) else f"{person_line} {person_honorific}")
    elif company:
        if company.endswith(HONORIFICS):
            lines = [company]
        elif department:
            lines = [company, f"{department} {company_honorific}"]
        else:
            honorific = company_honorific if _is_organisation(company) else person_honorific
            lines = [f"{company} {honorific}"]
    address = []
    postal = header.text(spec.get("postal_code"))
    if postal:
        address.append(postal if postal.startswith("〒") else f"〒{postal}")
    address += [a for a in (header.text(spec.get("address")), header.text(spec.get("address2"))) if a]
    return lines, address


def build_content(template: DocumentTemplate, header_fields, detail_fields, data: dict, details: list[dict],
                  record_id: int | None) -> DocumentContent:
    """The document of one record. Never raises for missing fields or odd values: they print blank."""
    header = _Values({f.name: f for f in header_fields}, data or {})
    detail_by_name = {f.name: f for f in detail_fields}
    spec = template.details
    default_rate = spec.get("default_tax_rate", 10)
    reduced_rates = {Decimal(str(r)) for r in spec.get("reduced_rates", (8,))}
    reduced_mark = spec.get("reduced_mark", "※")
    rounding = template.totals.get("rounding", "down")

    addressee, address = _addressee(template, header)
    content = DocumentContent(title=template.title, file_name="", addressee=addressee, addressee_address=address)
    content.info = [(line.label, header.text(line.fields, line.format)) for line in template.info]
    if template.subject:
        content.subject = (template.subject.label, header.text(template.subject.fields, template.subject.format))
    if template.remarks:
        content.remarks = (template.remarks.label, header.text(template.remarks.fields, template.remarks.format))

    groups: dict[Decimal, int] = {}
    for row in details or []:
        values = _Values(detail_by_name, row or {})
        item = values.text(spec.get("item"))
        quantity = to_decimal(values.raw(spec.get("quantity"))[1])
        unit_price = to_decimal(values.raw(spec.get("unit_price"))[1])
        amount_value = to_decimal(values.raw(spec.get("amount"))[1])
        unit = values.text(spec.get("unit"))
        if not item and quantity is None and unit_price is None and amount_value is None and not unit:
            continue
        if amount_value is None and quantity is not None and unit_price is not None:
            amount_value = quantity * unit_price
        amount = round_yen(amount_value, rounding) if amount_value is not None else None
        rate = rate_of(values.raw(spec.get("tax_rate"))[1], default_rate)
        reduced = rate in reduced_rates
        content.has_reduced |= reduced and amount is not None
        cells = {
            "no": str(len(content.lines) + 1),
            "item": item,
            "quantity": number_text(quantity),
            "unit": unit,
            "unit_price": yen(unit_price) if unit_price is not None else "",
            "amount": yen(amount) if amount is not None else "",
            "tax_rate": (f"{rate}%" + (reduced_mark if reduced else "")) if amount is not None else "",
        }
        content.lines.append(Line(cells=cells, amount=amount, rate=str(rate), reduced=reduced))
        if amount is not None:
            groups[rate] = groups.get(rate, 0) + amount

    exempt_label = template.totals.get("exempt_label", "非課税")
    for rate in sorted(groups, reverse=True):
        base = groups[rate]
        reduced = rate in reduced_rates
        label = exempt_label if rate == 0 else f"{rate}%対象" + (reduced_mark if reduced else "")
        content.groups.append(TaxGroup(rate=str(rate), label=label, base=base, tax=tax_for(base, rate, rounding),
                                       reduced=reduced))
    content.subtotal = sum(g.base for g in content.groups)
    content.tax = sum(g.tax for g in content.groups)
    content.total = content.subtotal + content.tax

    content.file_name = _file_name(template, header, record_id)
    return content


def _file_name(template: DocumentTemplate, header: _Values, record_id: int | None) -> str:
    filled = []

    def field_value(match: re.Match) -> str:
        # {納品番号|請求番号}: the first of these fields that has a value.
        value = header.text(tuple(name.strip() for name in match.group(1).split("|")))
        filled.append(bool(value))
        return value

    stem = safe_file_name(re.sub(r"\{([^{}]+)\}", field_value, template.file_name).removesuffix(".pdf"))
    if not stem or (filled and not any(filled)):
        stem = safe_file_name(f"{template.title}_{record_id}" if record_id else template.title)
    return f"{stem}.pdf"
