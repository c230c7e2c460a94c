"""What every feature shares: database helpers, errors, ids, quantities and money, org-scoped
access, idempotency, the outbox and the queue, the web shell, the API root, PDF fonts."""

from __future__ import annotations

from flask import Flask

from marketplace.core import api, cli, http_errors, ids, queue, security, views, web
from marketplace.core import probe_models as probe_models  # registers queue_probes (the workers' table)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = ids.IdConverter  # before any route: ids beyond 2**31-1 are a 404
    queue.celery_init_app(app)
    http_errors.register_error_handlers(app)
    security.register_security(app)
    web.init_web(app)
    app.register_blueprint(views.bp)
    api.init_api(app)
    cli.register_cli(app)
