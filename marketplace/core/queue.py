"""Celery bound to the Flask application (the Flask documentation's celery_init_app pattern)."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask, current_app, has_app_context

from marketplace.extensions import db

#: No task runs longer than this; the broker's visibility timeout must exceed it or Redis would
#: hand an unacknowledged (acks_late) task to a second worker while the first still runs it.
LONGEST_TASK_SECONDS = 600
VISIBILITY_TIMEOUT_SECONDS = 3600


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        #: the Flask application, for hooks Celery calls outside ``__call__`` (on_failure …)
        flask_app = app

        def __call__(self, *args, **kwargs):
            # In a worker there is no application yet: the one this Celery app was made for. Called inside an
            # application (eagerly, or `.apply()` in a test), a fresh context of that one: the Celery app set as
            # default is the last one created, which in a process holding several is not always the caller's.
            target = current_app._get_current_object() if has_app_context() else app
            with target.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    queue = app.config["CELERY_QUEUE"]
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        # Acknowledge after the task finished, and hand it back if the worker process died, so a
        # killed worker loses nothing. Tasks are idempotent, which makes the redelivery safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: a long task never sits on a queue of prefetched ones.
        worker_prefetch_multiplier=1,
        task_time_limit=LONGEST_TASK_SECONDS,
        task_soft_time_limit=LONGEST_TASK_SECONDS - 30,
        broker_connection_retry_on_startup=True,
        task_always_eager=app.config["CELERY_TASK_ALWAYS_EAGER"],
        beat_schedule_filename=str(app.config.get("CELERY_BEAT_SCHEDULE_FILE")
                                   or f"{app.instance_path}/celerybeat-schedule"),
        timezone="UTC",
    )
    if celery_app.conf.broker_url.startswith(("redis://", "rediss://")):
        celery_app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
