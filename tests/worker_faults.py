"""A fault for the crash tests, loaded into one test's Celery worker only (``celery worker --include
tests.worker_faults``, see ``worker_factory`` in conftest.py), never into the application.

The certificate task pauses after the certificate is issued and committed and before its PDF is drawn,
so that a test can kill the worker at exactly that point.
"""

from __future__ import annotations

import time

from marketplace.certificates import pdf

#: Long enough for the test to see the issued certificate and kill the worker.
PAUSE_SECONDS = 30

_draw = pdf.certificate_pdf_file


def _draw_after_a_pause(*args, **kwargs):
    time.sleep(PAUSE_SECONDS)
    return _draw(*args, **kwargs)


pdf.certificate_pdf_file = _draw_after_a_pause
