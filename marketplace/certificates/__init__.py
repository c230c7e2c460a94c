"""Certificates: retirement, signing, the certificate PDF, verification, public retirements."""

from __future__ import annotations

from flask import Flask

from marketplace.certificates import (
    api,
    api_public,
    cli,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    retirement,
    views,
)
from marketplace.core.api import register_api_blueprint
from marketplace.orders.signals import certificate_number_wanted


def init_app(app: Flask) -> None:
    certificate_number_wanted.connect(retirement.certificate_number_for)
    app.register_blueprint(views.bp)
    register_api_blueprint(api.blp)
    register_api_blueprint(api_public.blp)
    cli.register_cli(app)
