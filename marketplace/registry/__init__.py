"""The credit registry: regions, projects, documents, batches, the ledger, listings, the public registry."""

from __future__ import annotations

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.registry import (
    api,
    cli,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    service,
    views,
    views_bureau,
    views_pledges,
    views_sellers,
)


def init_app(app: Flask) -> None:
    for module in (views, views_bureau, views_sellers, views_pledges):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
    app.add_template_global(service.scheme_label, "scheme_label")
    cli.register_cli(app)
