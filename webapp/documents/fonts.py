"""The Japanese TrueType fonts embedded (as subsets) in every generated PDF.

reportlab's built-in CID fonts (HeiseiKakuGo-W5 …) are never embedded, so a viewer without them shows blank
text; a registered TTFont is subset-embedded instead. The IPAex fonts come from Debian's fonts-ipaexfont
(scripts/ensure_system_packages.sh installs it); PDF_FONT_GOTHIC / PDF_FONT_MINCHO point at another .ttf.
Each font file is read once per process: parsing the 4-5 MB file costs far more than rendering a page.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import current_app, has_app_context
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from .errors import DocumentError

FONT_FILES = {
    "gothic": ("ipaexg.ttf", "IPAexゴシック", "PDF_FONT_GOTHIC"),
    "mincho": ("ipaexm.ttf", "IPAex明朝", "PDF_FONT_MINCHO"),
}
SEARCH_DIRS = (
    "/usr/share/fonts/opentype/ipaexfont-gothic",
    "/usr/share/fonts/opentype/ipaexfont-mincho",
    "/usr/share/fonts/truetype/ipaexfont-gothic",
    "/usr/share/fonts/truetype/ipaexfont-mincho",
    "/usr/share/fonts/truetype/ipaexfont",
    "/usr/share/fonts/opentype/ipaexfont",
    "/usr/local/share/fonts",
    str(Path.home() / ".local/share/fonts"),
    str(Path.home() / ".fonts"),
)

_lock = threading.Lock()
_registered: dict[str, str] = {}  # font file path -> reportlab font name


def _configured_path(setting: str) -> str | None:
    if has_app_context() and current_app.config.get(setting):
        return current_app.config[setting]
    return os.environ.get(setting) or None


def font_path(kind: str) -> Path:
    """The .ttf file of a font kind ("gothic" or "mincho"), or DocumentError saying how to install it."""
    if kind not in FONT_FILES:
        raise DocumentError(f"フォント「{kind}」は使えません。gothic または mincho を指定してください。")
    file_name, label, setting = FONT_FILES[kind]
    configured = _configured_path(setting)
    if configured:
        path = Path(configured)
        if path.is_file():
            return path
        raise DocumentError(f"{setting} に設定されたフォントファイルがありません: {configured}")
    for directory in SEARCH_DIRS:
        path = Path(directory) / file_name
        if path.is_file():
            return path
    raise DocumentError(
        f"PDFに埋め込む日本語フォント({label})が見つかりません。"
        f"Debian の fonts-ipaexfont をインストールするか(make system-packages)、"
        f"環境変数 {setting} に TrueType フォント(.ttf)のパスを設定してください。"
    )


def register_font(kind: str) -> str:
    """Register the font once per process and return its reportlab name."""
    path = str(font_path(kind))
    name = _registered.get(path)
    if name:
        return name
    with _lock:
        if path not in _registered:
            font_name = f"JP-{kind}-{len(_registered)}"
            try:
                pdfmetrics.registerFont(TTFont(font_name, path))
            except (TTFError, OSError) as exc:
                raise DocumentError(f"フォントファイルを読み込めません({path}): {exc}") from exc
            _registered[path] = font_name
        return _registered[path]
