"""Celery workers: the Celery app bound to the Flask factory, the tasks and the beat schedule."""
