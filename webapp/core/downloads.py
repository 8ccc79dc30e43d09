"""Sending stored files (the exact files each run sent, uploads, generated PDFs): byte for byte, never cached.

Werkzeug appends "; charset=utf-8" to every text/* type, so a run's CSV went out as
"text/csv; charset=Windows-31J; charset=utf-8". Here each file gets one Content-Type with at most one charset:
the one it was stored with, or — for an upload of text without one — the encoding its bytes actually decode as.
"""

from __future__ import annotations

from pathlib import Path

from flask import send_file
from werkzeug.http import dump_options_header, parse_options_header

# Uploads of text without a declared charset: UTF-8 when the bytes are UTF-8, else Windows-31J (Shift_JIS as
# Japanese Windows and Excel write it); bytes that are neither are not text.
TEXT_CHARSETS = {"utf-8": "utf-8", "cp932": "Windows-31J"}  # Python codec -> IANA name
SNIFF_BYTES = 64 * 1024


def content_type_for(path: Path, declared: str | None) -> str:
    """One Content-Type for a stored file: its declared type, with exactly one charset when it is text."""
    mimetype, options = parse_options_header(declared or "application/octet-stream")
    mimetype = mimetype.lower() or "application/octet-stream"
    charset = next((v for k, v in options.items() if k.lower() == "charset"), None)
    if mimetype.startswith("text/") and not charset:
        charset = _detect_charset(path)
        if charset is None:
            return "application/octet-stream"
    return dump_options_header(mimetype, {"charset": charset} if charset else {})


def _detect_charset(path: Path) -> str | None:
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    for codec, charset in TEXT_CHARSETS.items():
        try:
            sample.decode(codec)
            return charset
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the end of the sample is no reason to refuse the encoding.
            if len(sample) == SNIFF_BYTES and exc.start >= len(sample) - 3:
                return charset
    return None


def send_stored_file(path: Path, content_type: str | None, download_name: str, *, inline: bool = False):
    """The file as stored (no transformation), with one charset and `Cache-Control: no-store`: these files hold
    invoices and personal data, which must not stay in a browser's or a proxy's cache."""
    response = send_file(path, as_attachment=not inline, download_name=download_name, conditional=False,
                         etag=False, max_age=None)
    response.headers["Content-Type"] = content_type_for(path, content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
