"""A git merge driver for gettext catalogues: the union of both sides' messages, sorted.

Branches that each add strings to the same catalogue conflict line by line although their messages do
not; this merges message by message instead. A message changed on one side only takes that side's text;
changed differently on both, ours wins and the msgid is printed (exit 1, so git reports a conflict to
look at). Installed by ``git config merge.gettext.driver "python3 tools/merge_po.py %O %A %B"``
(see .gitattributes).
"""

from __future__ import annotations

import sys

from babel.messages.pofile import read_po, write_po


def _read(path: str):
    with open(path, "rb") as fh:
        return read_po(fh)


def _key(message):
    return (message.id, message.context)


def _text(message):
    return None if message is None else (message.string, tuple(sorted(message.flags)))


def merge(base_path: str, ours_path: str, theirs_path: str) -> int:
    base, ours, theirs = _read(base_path), _read(ours_path), _read(theirs_path)
    base_by = {_key(m): m for m in base if m.id}
    ours_by = {_key(m): m for m in ours if m.id}
    theirs_by = {_key(m): m for m in theirs if m.id}
    clashes = []
    for key in list(ours_by) + [k for k in theirs_by if k not in ours_by]:
        mine, other, old = ours_by.get(key), theirs_by.get(key), base_by.get(key)
        if _text(mine) == _text(other):
            continue
        if mine is None:  # added by them, or deleted by us
            if old is None or _text(old) != _text(other):
                ours[other.id] = other
            continue
        if other is None:  # added by us, or deleted by them
            if old is not None and _text(old) == _text(mine):
                ours.delete(mine.id, context=mine.context)
            continue
        if _text(mine) == _text(old):
            mine.string, mine.flags = other.string, set(other.flags)
        elif _text(other) != _text(old):
            clashes.append(mine.id)
    with open(ours_path, "wb") as fh:
        write_po(fh, ours, width=100, sort_output=True, omit_header=False, include_lineno=False)
    for msgid in clashes:
        print(f"merge_po: both sides changed {msgid!r}; kept ours", file=sys.stderr)
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(merge(*sys.argv[1:4]))
