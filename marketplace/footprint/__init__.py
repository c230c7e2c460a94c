"""Event footprints: emission factors, events, activity lines, spreadsheets, the report."""

from __future__ import annotations

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.footprint import (
    api,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    views,
    views_bureau,
)


def init_app(app: Flask) -> None:
    for module in (views, views_bureau):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
