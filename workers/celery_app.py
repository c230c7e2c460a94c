"""Entry point: `celery -A workers.celery_app worker` and `celery -A workers.celery_app beat`.

The worker builds the Flask application with the same factory and environment as the web process.
"""

from __future__ import annotations

from celery.signals import worker_process_init

from marketplace import create_app
from marketplace.extensions import db
from workers.schedule import BEAT_SCHEDULE

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
celery_app.conf.beat_schedule = BEAT_SCHEDULE
celery_app.conf.include = ["workers.tasks"]

import workers.tasks  # noqa: E402,F401  (registers the tasks on celery_app)


@worker_process_init.connect
def _fresh_connections(**_kwargs):
    """A forked pool process must not share the parent's database connections."""
    with flask_app.app_context():
        db.engine.dispose(close=False)


app = celery_app
