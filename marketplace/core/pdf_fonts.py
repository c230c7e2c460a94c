"""The CJK font for PDFs (reports, certificates): an embedded TrueType font when one is installed,
else ReportLab's built-in STSong-Light (a CID font the reader supplies; not embedded)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

#: Where Debian and most Linux distributions put WenQuanYi Zen Hei; PDF_CJK_FONT overrides.
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)
EMBEDDED_NAME = "TanhuiCJK"
FALLBACK_NAME = "STSong-Light"


@cache
def cjk_font() -> str:
    """Register and return the name of the font to draw Chinese text with."""
    for path in filter(None, (os.environ.get("PDF_CJK_FONT"), *CANDIDATES)):
        if Path(path).is_file():
            kwargs = {"subfontIndex": 0} if path.endswith(".ttc") else {}
            pdfmetrics.registerFont(TTFont(EMBEDDED_NAME, path, **kwargs))
            return EMBEDDED_NAME
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_NAME))
    return FALLBACK_NAME
