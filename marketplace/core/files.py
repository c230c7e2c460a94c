"""Files the application keeps (uploaded documents, certificates): readable by its own user only.

Folders 0700, files 0600 from the moment they exist (created with that mode, never chmod-ed after
writing), whatever the process's umask: on a shared host another account must not read a village's
verification statement or a buyer's certificate.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path) -> Path:
    """Create the folder (and its parents) if missing, and make it 0700."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != FOLDER_MODE:
        try:
            folder.chmod(FOLDER_MODE)
        except PermissionError:  # a mounted volume owned by someone else: its owner decides
            pass
    return folder


def write_private_file(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to a new file created 0600 (an existing file at ``path`` is replaced in place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.chmod(path, FILE_MODE)  # O_CREAT's mode applies to new files only
