"""Add zh_CN translations to the catalogue from a tab-separated file: msgid<TAB>msgstr per line.

Usage: python tools/i18n_fill.py translations.tsv   (then `make translations` to check)
Entries already translated are kept unless the file gives a new text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "marketplace/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def main(tsv_path: str) -> int:
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    added = 0
    for line in Path(tsv_path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        msgid, _tab, msgstr = line.partition("\t")
        msgid, msgstr = msgid.replace("\\n", "\n"), msgstr.replace("\\n", "\n")
        if not msgstr:
            print(f"no translation for {msgid!r}", file=sys.stderr)
            return 1
        message = catalog.get(msgid)
        if message is None:
            message = catalog.add(msgid, msgstr)
        message.string = msgstr
        message.flags.discard("fuzzy")
        added += 1
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, omit_header=False, include_lineno=False)
    print(f"{added} translations written to {PO}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
