"""Every task module, one per feature; importing this package registers them with the Celery app."""

from workers.tasks import certificates, core, neutrality, orders, settlement  # noqa: F401
