"""Statistics: aggregates, summary, report tables, dashboards, exports, and each role's home."""

from __future__ import annotations

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.orders.signals import order_completed
from marketplace.stats import (
    aggregates,
    api,
    cli,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    views,
    views_home,
)


def init_app(app: Flask) -> None:
    order_completed.connect(aggregates.on_order_completed)
    for module in (views_home, views):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
    cli.register_cli(app)
