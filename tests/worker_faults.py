"""A fault for the crash tests, loaded into one test's Celery worker only (``celery worker --include
tests.worker_faults``, see ``worker_factory`` in conftest.py), never into the application.

The worker pauses at one point of the retirement, so that a test can kill it exactly there. The point is
chosen by the worker's environment, ``TANHUI_TEST_FAULT_POINT``:

- ``before_pdf`` (the default): the certificate task, after the certificate is issued and committed and
  before its PDF is drawn;
- ``in_retirement``: the retirement task, after the ledger has moved the units (reserved → retired) and
  before that transaction commits — a kill there leaves an open transaction for the database to roll back.

When ``TANHUI_TEST_FAULT_MARK`` names a file, the worker creates it on reaching the point, so the test
knows when to kill.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from marketplace.certificates import pdf
from marketplace.registry import ledger

#: Long enough for the test to see the issued certificate and kill the worker.
PAUSE_SECONDS = 30
POINT = os.environ.get("TANHUI_TEST_FAULT_POINT", "before_pdf")


def _pause() -> None:
    mark = os.environ.get("TANHUI_TEST_FAULT_MARK")
    if mark:
        Path(mark).touch()
    time.sleep(PAUSE_SECONDS)


def _pausing_after(function):
    def paused(*args, **kwargs):
        result = function(*args, **kwargs)
        _pause()
        return result

    return paused


def _pausing_before(function):
    def paused(*args, **kwargs):
        _pause()
        return function(*args, **kwargs)

    return paused


if POINT == "before_pdf":
    pdf.certificate_pdf_file = _pausing_before(pdf.certificate_pdf_file)
elif POINT == "in_retirement":
    ledger.retire = _pausing_after(ledger.retire)
else:  # pragma: no cover — a typo in a test
    raise RuntimeError(f"unknown TANHUI_TEST_FAULT_POINT {POINT!r}")
