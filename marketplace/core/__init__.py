"""What every feature shares: database helpers, errors, ids, quantities and money, org-scoped
access, idempotency, the outbox and the queue, the web shell, the API root, PDF fonts."""

from __future__ import annotations

from flask import Flask

from marketplace.core import (  # noqa: F401  (models: its tables join the metadata when the app is built)
    api,
    cli,
    http_errors,
    ids,
    models,
    outbox_models,
    probe_models,
    proxies,
    public_fast,
    queue,
    security,
    views,
    web,
)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = ids.IdConverter  # before any route: ids beyond 2**31-1 are a 404
    queue.celery_init_app(app)
    http_errors.register_error_handlers(app)
    security.register_security(app)
    proxies.install_trusted_proxies(app)
    web.init_web(app)
    app.register_blueprint(views.bp)
    api.init_api(app)
    cli.register_cli(app)
    public_fast.install_public_fast_path(app)  # last: outermost, in front of the trusted-proxy layer
