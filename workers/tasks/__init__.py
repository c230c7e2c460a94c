"""Every task module; importing this package registers them with the Celery app."""

from workers.tasks import orders, outbox, probes  # noqa: F401
