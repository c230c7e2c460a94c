"""Accounts: organisations, users, sign-in, API tokens."""

from __future__ import annotations

from flask import Flask

from marketplace.accounts import (
    api,
    cli,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    views,
    views_auth,
    views_bureau,
)
from marketplace.core.api import register_api_blueprint


def init_app(app: Flask) -> None:
    views_auth.init_login(app)
    for module in (views_auth, views, views_bureau):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
    cli.register_cli(app)
