"""Drawing a DocumentContent on A4 with reportlab: one standard Japanese business-document layout.

The template decides the words and which parts appear; this module decides where they go. Long 明細 tables
continue on further pages with the table header repeated; the totals, 振込先 and 備考 follow the last line.
Output is deterministic (`invariant`): the same content always gives the same bytes.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from .content import DocumentContent, yen
from .document_templates import DocumentTemplate
from .fonts import register_font

# Bump when the layout changes: stored PDFs carry it in their fingerprint and are regenerated.
RENDERER_VERSION = 1

PAGE_W, PAGE_H = A4
LEFT, RIGHT = 15 * mm, PAGE_W - 15 * mm
TOP, BOTTOM = PAGE_H - 14 * mm, 16 * mm
WIDTH = RIGHT - LEFT
ROW_H = 6.6 * mm
HEAD_H = 7 * mm
MIN_ROWS = 8
GRID = 0.55
HEAD_FILL = 0.88
STRIPE_FILL = 0.965

# reportlab's TTFont keeps per-document subset state; one document at a time per process is plenty fast.
_render_lock = threading.Lock()


@dataclass
class _Pen:
    canvas: Canvas
    font: str

    def text(self, x, y, text, size=9.0, align="left", bold=False, gray=0.0, max_width=None, min_size=6.0):
        if not text:
            return
        c = self.canvas
        width = stringWidth(text, self.font, size)
        if max_width and width > max_width:
            text, size = fit(text, self.font, size, max_width, min_size)
            width = stringWidth(text, self.font, size)
        if align == "right":
            x -= width
        elif align == "center":
            x -= width / 2
        t = c.beginText(x, y)
        t.setFont(self.font, size)
        if gray:
            t.setFillGray(gray)
        if bold:
            # IPAex has no bold face: fill + a thin stroke of the outline reads as bold on screen and paper.
            t.setTextRenderMode(2)
            c.setLineWidth(size / 30)
        t.textOut(text)
        c.drawText(t)
        if bold:
            c.setLineWidth(GRID)
        if gray:
            c.setFillGray(0)


def fit(text: str, font: str, size: float, width: float, min_size: float = 6.0) -> tuple[str, float]:
    """Shrink the text down to min_size to fit `width`; still too long → cut with an ellipsis."""
    measured = stringWidth(text, font, size)
    if measured <= width:
        return text, size
    shrunk = max(min_size, size * width / measured)
    if stringWidth(text, font, shrunk) <= width:
        return text, shrunk
    while text and stringWidth(text + "…", font, shrunk) > width:
        text = text[:-1]
    return text + "…", shrunk


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines of `width` (Japanese has no spaces to break at: any character will do)."""
    lines = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for char in paragraph:
            if line and stringWidth(line + char, font, size) > width:
                lines.append(line)
                line = char
            else:
                line += char
        lines.append(line)
    return lines


def render_pdf(template: DocumentTemplate, content: DocumentContent, author: str = "") -> bytes:
    font = register_font(template.font)
    buffer = io.BytesIO()
    with _render_lock:
        # The initial font is ours too: no unembedded Helvetica is referenced at all.
        canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1, initialFontName=font)
        canvas.setTitle(f"{content.title} {content.file_name.removesuffix('.pdf')}")
        canvas.setAuthor(author or template.issuer.get("company", ""))
        canvas.setCreator("楽楽明細連携 自動生成ファイル")
        canvas.setLineWidth(GRID)
        _Document(canvas, _Pen(canvas, font), template, content).draw()
        canvas.save()
    return buffer.getvalue()


class _Document:
    def __init__(self, canvas: Canvas, pen: _Pen, template: DocumentTemplate, content: DocumentContent):
        self.c = canvas
        self.pen = pen
        self.font = pen.font
        self.t = template
        self.content = content
        total = sum(col.width for col in template.columns) or 1
        self.columns = [(col, col.width / total * WIDTH) for col in template.columns]

    # ---- the whole document ----

    def draw(self) -> None:
        table_top = self.header()
        lines = self.content.lines
        tail = self.tail_height()
        pages: list[tuple[int, int]] = []  # (first line, line count) per page
        top, start = table_top, 0
        while True:
            capacity = max(1, int((top - BOTTOM - HEAD_H) // ROW_H))
            count = min(capacity, len(lines) - start)
            pages.append((start, count))
            start += count
            if start >= len(lines):
                break
            top = self.continuation_top()
        # The totals need room below the last rows; otherwise they start a page of their own.
        last_top = table_top if len(pages) == 1 else self.continuation_top()
        last_rows = max(pages[-1][1], MIN_ROWS if len(pages) == 1 else 0)
        room = last_top - HEAD_H - last_rows * ROW_H - BOTTOM
        tail_on_new_page = room < tail and tail < self.continuation_top() - BOTTOM
        page_count = len(pages) + (1 if tail_on_new_page else 0)

        y = table_top
        for index, (first, count) in enumerate(pages):
            if index:
                self.new_page(index + 1, page_count)
                y = self.continuation_top()
            rows = lines[first:first + count]
            padding = max(0, MIN_ROWS - count) if page_count == 1 else 0
            y = self.table(y, rows, padding)
        if tail_on_new_page:
            self.new_page(page_count, page_count)
            y = self.continuation_top()
        self.tail(y - 5 * mm)
        self.footer(page_count, page_count)
        self.c.showPage()

    def new_page(self, number: int, count: int) -> None:
        self.footer(number - 1, count)
        self.c.showPage()
        self.c.setLineWidth(GRID)
        self.pen.text(LEFT, TOP - 4 * mm, f"{self.content.title}(続き)", size=12, bold=True)
        number_text = next((value for label, value in self.content.info if value), "")
        self.pen.text(RIGHT, TOP - 4 * mm, number_text, size=9, align="right")

    def continuation_top(self) -> float:
        return TOP - 12 * mm

    def footer(self, number: int, count: int) -> None:
        if count > 1:
            self.pen.text(PAGE_W / 2, 9 * mm, f"{number} / {count}", size=8, align="center", gray=0.35)

    # ---- first page header ----

    def header(self) -> float:
        pen, content, t = self.pen, self.content, self.t
        title = content.title
        spaced = " ".join(title) if len(title) <= 5 else title  # 請 求 書, as printed forms space it
        pen.text(PAGE_W / 2, TOP - 6 * mm, spaced, size=22, align="center", bold=True)
        title_w = stringWidth(spaced, self.font, 22)
        self.c.line(PAGE_W / 2 - title_w / 2 - 6 * mm, TOP - 8.5 * mm, PAGE_W / 2 + title_w / 2 + 6 * mm, TOP - 8.5 * mm)

        # Right: document number, dates … then the issuer.
        right_x = 122 * mm
        y = TOP - 18 * mm
        for label, value in content.info:
            pen.text(right_x, y, label, size=9, gray=0.25)
            pen.text(RIGHT, y, value, size=9.5, align="right", max_width=RIGHT - right_x - 24 * mm)
            self.c.setStrokeGray(0.7)
            self.c.line(right_x, y - 1.6 * mm, RIGHT, y - 1.6 * mm)
            self.c.setStrokeGray(0)
            y -= 6 * mm
        y -= 3 * mm
        y = self.issuer(right_x, y)
        right_bottom = self.stamps(y - 2 * mm)

        # Left: the addressee, subject, lead text and the amount.
        left_w = 100 * mm
        y = TOP - 18 * mm
        for line in content.addressee_address:
            pen.text(LEFT, y, line, size=8.5, max_width=left_w)
            y -= 4.4 * mm
        if content.addressee_address:
            y -= 2 * mm
        for index, line in enumerate(content.addressee or [""]):
            last = index == len(content.addressee or [""]) - 1
            pen.text(LEFT + 2 * mm, y - 1.5 * mm, line, size=14 if last or len(content.addressee) == 1 else 12,
                     max_width=left_w - 4 * mm, min_size=8)
            y -= 8 * mm
        self.c.setLineWidth(1)
        self.c.line(LEFT, y + 5 * mm, LEFT + left_w, y + 5 * mm)
        self.c.setLineWidth(GRID)
        y -= 2 * mm
        if content.subject and (content.subject[0] or content.subject[1]):
            label, value = content.subject
            pen.text(LEFT, y, f"{label}:" if label else "", size=9, gray=0.25)
            pen.text(LEFT + (stringWidth(label + ":", self.font, 9) + 2 * mm if label else 0), y, value, size=10,
                     max_width=left_w - 20 * mm)
            y -= 6.5 * mm
        for line in wrap(t.lead, self.font, 9.5, left_w)[:3] if t.lead else []:
            pen.text(LEFT, y, line, size=9.5)
            y -= 5 * mm
        if t.amount.get("show", True) and t.totals.get("show", True):
            y -= 2 * mm
            box_h = 12 * mm
            self.c.setFillGray(0.94)
            self.c.rect(LEFT, y - box_h, left_w, box_h, stroke=1, fill=1)
            self.c.setFillGray(0)
            self.c.line(LEFT + 32 * mm, y - box_h, LEFT + 32 * mm, y)
            pen.text(LEFT + 16 * mm, y - box_h / 2 - 1.4 * mm, t.amount.get("label") or "合計金額", size=10,
                     align="center", bold=True, max_width=30 * mm)
            note = t.amount.get("note", "")
            note_w = stringWidth(note, self.font, 8.5) + (2 * mm if note else 0)
            pen.text(LEFT + left_w - 3 * mm - note_w, y - box_h / 2 - 2.2 * mm, yen(content.total), size=17,
                     align="right", bold=True, max_width=left_w - 40 * mm - note_w)
            if note:
                pen.text(LEFT + left_w - 3 * mm, y - box_h / 2 - 2 * mm, note, size=8.5, align="right")
            y -= box_h
        left_bottom = y
        return min(left_bottom, right_bottom) - 7 * mm

    def issuer(self, x: float, y: float) -> float:
        pen, issuer = self.pen, self.t.issuer
        width = RIGHT - x
        if issuer.get("company"):
            pen.text(x, y, issuer["company"], size=11.5, bold=True, max_width=width - (16 * mm if issuer.get("seal") else 0))
            if issuer.get("seal"):
                # Where the company seal (角印) is stamped on paper.
                self.c.setStrokeGray(0.6)
                self.c.setDash(1.5, 1.5)
                self.c.rect(RIGHT - 15 * mm, y - 11 * mm, 15 * mm, 15 * mm)
                self.c.setDash()
                self.c.setStrokeGray(0)
                pen.text(RIGHT - 7.5 * mm, y - 5 * mm, "印", size=9, align="center", gray=0.6)
            y -= 5.5 * mm
        if issuer.get("seal"):
            width -= 17 * mm  # keep clear of the seal box
        postal = issuer.get("postal_code", "")
        for line in (f"〒{postal}" if postal and not postal.startswith("〒") else postal, issuer.get("address", ""),
                     " ".join(p for p in (issuer.get("tel", ""), issuer.get("fax", "")) if p),
                     issuer.get("email", ""), issuer.get("person", "")):
            if line:
                pen.text(x, y, line, size=8.5, max_width=width)
                y -= 4.3 * mm
        if issuer.get("registration_number"):
            label = issuer.get("registration_label") or "登録番号"
            pen.text(x, y, f"{label}: {issuer['registration_number']}", size=8.5, max_width=width)
            y -= 4.3 * mm
        return y

    def stamps(self, y: float) -> float:
        if not self.t.stamps:
            return y
        size = 19 * mm
        x = RIGHT - size * len(self.t.stamps)
        for label in self.t.stamps:
            self.c.rect(x, y - size, size, size)
            self.c.line(x, y - 5 * mm, x + size, y - 5 * mm)
            self.pen.text(x + size / 2, y - 3.7 * mm, label, size=7.5, align="center", max_width=size - 2 * mm)
            x += size
        return y - size

    # ---- the 明細 table ----

    def table(self, y: float, lines, padding: int) -> float:
        c, pen = self.c, self.pen
        c.setFillGray(HEAD_FILL)
        c.rect(LEFT, y - HEAD_H, WIDTH, HEAD_H, stroke=1, fill=1)
        c.setFillGray(0)
        x = LEFT
        for column, width in self.columns:
            pen.text(x + width / 2, y - HEAD_H + 2.3 * mm, column.label, size=8.5, align="center", max_width=width - 2 * mm)
            x += width
        top = y
        y -= HEAD_H
        for index in range(len(lines) + padding):
            line = lines[index] if index < len(lines) else None
            if index % 2:
                c.setFillGray(STRIPE_FILL)
                c.rect(LEFT, y - ROW_H, WIDTH, ROW_H, stroke=0, fill=1)
                c.setFillGray(0)
            if line is not None:
                x = LEFT
                for column, width in self.columns:
                    text = line.cells.get(column.value, "")
                    pad = 1.6 * mm
                    anchor = {"left": x + pad, "center": x + width / 2, "right": x + width - pad}[column.align]
                    pen.text(anchor, y - ROW_H + 2.1 * mm, text, size=9, align=column.align, max_width=width - 2 * pad)
                    x += width
            y -= ROW_H
            c.setStrokeGray(0.75)
            c.line(LEFT, y, RIGHT, y)
            c.setStrokeGray(0)
        # Outer frame and column rules.
        c.rect(LEFT, y, WIDTH, top - y)
        x = LEFT
        for _, width in self.columns[:-1]:
            x += width
            c.line(x, y, x, top)
        return y

    # ---- totals, 振込先, 備考 ----

    def tail_height(self) -> float:
        groups = len(self.content.groups)
        height = 5 * mm
        if self.t.totals.get("show", True):
            height += max((groups + 2) * ROW_H, (groups + 1) * ROW_H + 6 * mm)
        if self.t.payment.get("show", True) and self.t.payment.get("lines"):
            height += 8 * mm + len(self.t.payment["lines"]) * 4.6 * mm + (4.6 * mm if self.t.payment.get("note") else 0)
        if self.content.remarks and self.content.remarks[1]:
            height += 10 * mm + min(8, len(wrap(self.content.remarks[1], self.font, 8.5, WIDTH - 6 * mm))) * 4.3 * mm
        return height

    def tail(self, y: float) -> None:
        c, pen, content, totals = self.c, self.pen, self.content, self.t.totals
        if totals.get("show", True):
            # Left: 税率別内訳 (what the インボイス制度 asks for); right: 小計 / 消費税 / 合計.
            breakdown_w = 98 * mm
            cols = [38 * mm, 30 * mm, 30 * mm]
            c.setFillGray(HEAD_FILL)
            c.rect(LEFT, y - ROW_H, breakdown_w, ROW_H, stroke=1, fill=1)
            c.setFillGray(0)
            heads = [totals.get("breakdown_title") or "税率区分", totals.get("breakdown_base_label") or "対象金額(税抜)",
                     totals.get("breakdown_tax_label") or "消費税額"]
            x = LEFT
            for head, width in zip(heads, cols, strict=True):
                pen.text(x + width / 2, y - ROW_H + 2.1 * mm, head, size=8.5, align="center", max_width=width - 2 * mm)
                x += width
            row_y = y - ROW_H
            for group in content.groups:
                values = [group.label, yen(group.base), yen(group.tax)]
                x = LEFT
                for index, (value, width) in enumerate(zip(values, cols, strict=True)):
                    if index == 0:
                        pen.text(x + 2 * mm, row_y - ROW_H + 2.1 * mm, value, size=9, max_width=width - 4 * mm)
                    else:
                        pen.text(x + width - 2 * mm, row_y - ROW_H + 2.1 * mm, value, size=9, align="right",
                                 max_width=width - 4 * mm)
                    x += width
                row_y -= ROW_H
                c.line(LEFT, row_y, LEFT + breakdown_w, row_y)
            c.rect(LEFT, row_y, breakdown_w, y - row_y)
            x = LEFT
            for width in cols[:-1]:
                x += width
                c.line(x, row_y, x, y)
            if content.has_reduced and totals.get("reduced_note"):
                pen.text(LEFT, row_y - 4.2 * mm, totals["reduced_note"], size=8, gray=0.25)

            summary_x = RIGHT - 72 * mm
            label_w = 32 * mm
            rows = [(totals.get("subtotal_label") or "小計", content.subtotal, False)]
            tax_label = totals.get("tax_label") or "消費税"
            rows += [(f"{tax_label}({g.rate}%)", g.tax, False) for g in content.groups if g.rate != "0"]
            rows.append((totals.get("total_label") or "合計", content.total, True))
            row_y = y
            for label, amount, emphasis in rows:
                c.setFillGray(HEAD_FILL if emphasis else 0.95)
                c.rect(summary_x, row_y - ROW_H, label_w, ROW_H, stroke=1, fill=1)
                c.setFillGray(0)
                c.rect(summary_x + label_w, row_y - ROW_H, RIGHT - summary_x - label_w, ROW_H)
                pen.text(summary_x + 2 * mm, row_y - ROW_H + 2.1 * mm, label, size=9, bold=emphasis, max_width=label_w - 4 * mm)
                pen.text(RIGHT - 2 * mm, row_y - ROW_H + 2.1 * mm, yen(amount), size=10.5 if emphasis else 9.5,
                         align="right", bold=emphasis, max_width=RIGHT - summary_x - label_w - 4 * mm)
                row_y -= ROW_H
            y = min(row_y, y - (len(content.groups) + 1) * ROW_H - 6 * mm) - 5 * mm

        payment = self.t.payment
        if payment.get("show", True) and payment.get("lines"):
            lines = list(payment["lines"])
            box_h = 4 * mm + len(lines) * 4.6 * mm
            label = payment.get("label") or "お振込先"
            c.setFillGray(HEAD_FILL)
            c.rect(LEFT, y - box_h, 24 * mm, box_h, stroke=1, fill=1)
            c.setFillGray(0)
            c.rect(LEFT + 24 * mm, y - box_h, WIDTH - 24 * mm, box_h)
            pen.text(LEFT + 12 * mm, y - box_h / 2 - 1.3 * mm, label, size=9, align="center", max_width=22 * mm)
            line_y = y - 5 * mm
            for line in lines:
                pen.text(LEFT + 27 * mm, line_y, line, size=9, max_width=WIDTH - 30 * mm)
                line_y -= 4.6 * mm
            y -= box_h
            if payment.get("note"):
                pen.text(LEFT, y - 4 * mm, payment["note"], size=8, gray=0.25, max_width=WIDTH)
                y -= 4.6 * mm
            y -= 4 * mm

        if content.remarks and content.remarks[1]:
            label, text = content.remarks
            lines = wrap(text, self.font, 8.5, WIDTH - 6 * mm)[:8]
            box_h = 7 * mm + len(lines) * 4.3 * mm
            c.rect(LEFT, y - box_h, WIDTH, box_h)
            pen.text(LEFT + 2 * mm, y - 4.5 * mm, label or "備考", size=8.5, gray=0.25)
            line_y = y - 9 * mm
            for line in lines:
                pen.text(LEFT + 3 * mm, line_y, line, size=8.5)
                line_y -= 4.3 * mm
