"""The project's Celery worker with stage timestamps, for bench/certificate_latency.py only.

    celery -A bench.certificate_worker worker ...      (BENCH_STAGE_LOG=<file> in the environment)

The same app as ``workers.celery_app``; in addition every task's arrival, start and end, and the end of the
certificate's steps (units retired, certificate signed, PDF written), are appended to BENCH_STAGE_LOG as
JSON lines ``{"t": <unix time>, "stage": …, "order_id": …, "statements": <sent so far in the task>}``. The steps are timed by wrapping the functions
the task calls (the wrapper calls the real function and notes when it returned); nothing else changes.
"""

from __future__ import annotations

import json
import os
import threading
import time

import sqlalchemy as sa
from celery.signals import task_postrun, task_prerun, task_received

from marketplace.certificates import pdf as certificate_pdf
from marketplace.certificates import service as certificates
from marketplace.extensions import db
from marketplace.registry import ledger
from marketplace.stats import aggregates
from workers.celery_app import app  # noqa: F401  (the worker's app)

_LOG = os.environ.get("BENCH_STAGE_LOG")
_lock = threading.Lock()
_current = threading.local()


def note(stage: str, order_id=None, **extra) -> None:
    if not _LOG:
        return
    line = json.dumps({"t": time.time(), "stage": stage, "order_id": order_id, "pid": os.getpid(),
                       "statements": getattr(_current, "statements", None), **extra})
    with _lock, open(_LOG, "a") as log:
        log.write(line + "\n")


def _order_id(kwargs) -> int | None:
    return (kwargs or {}).get("order_id")


@task_received.connect
def _received(request=None, **_kwargs):
    note(f"received {request.name}", _order_id(request.kwargs))


@task_prerun.connect
def _prerun(task=None, kwargs=None, **_kwargs):
    _current.order_id = _order_id(kwargs)
    _current.task = task.name.rsplit(".", 1)[-1]
    _current.commits = 0
    _current.statements = 0
    note(f"start {task.name}", _current.order_id)


@task_postrun.connect
def _postrun(task=None, kwargs=None, **_kwargs):
    note(f"end {task.name}", _order_id(kwargs))
    _current.order_id = None


def _timed(module, name: str, stage: str) -> None:
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        note(stage, getattr(_current, "order_id", None))
        return result

    wrapper.__wrapped__ = real
    setattr(module, name, wrapper)


@sa.event.listens_for(db.session, "after_commit", insert=True)
def _committed(_session):
    """Every commit of a task, numbered (before the outbox relay publishes what it asked for)."""
    if getattr(_current, "order_id", None) is None:
        return
    _current.commits += 1
    note(f"{_current.task}: commit {_current.commits}", _current.order_id)


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _statement(*_args):
    """Statements sent in the current task, its relay's included (each a round trip to PostgreSQL)."""
    if getattr(_current, "order_id", None) is not None:
        _current.statements += 1


def _around(module, name: str, stage: str) -> None:
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        note(f"{stage} begins", getattr(_current, "order_id", None))
        return real(*args, **kwargs)

    wrapper.__wrapped__ = real
    setattr(module, name, wrapper)


_around(aggregates, "record_completion", "dashboard aggregates")
_timed(aggregates, "record_completion", "dashboard aggregates done")
_timed(ledger, "retire", "retired (flushed)")
_timed(certificates, "issue_certificate", "signed (flushed)")
_timed(certificate_pdf, "write_certificate_pdf", "pdf written")
