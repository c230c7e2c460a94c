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
from marketplace.core import public_cache
from marketplace.core.api import register_api_blueprint
from marketplace.orders.signals import certificate_number_wanted

#: What verification and the public retirements show: certificates (issued, revoked), the signing keys
#: they are checked against, and what the retirement list filters by: completed orders, buyers' names,
#: projects and villages.
public_cache.watch("retirements", "certificates", "signing_keys", "organisations", "projects", "regions")
public_cache.watch("retirements", "orders", only_where=("status", "completed"))


def init_app(app: Flask) -> None:
    certificate_number_wanted.connect(retirement.certificate_number_for)
    app.register_blueprint(views.bp)
    register_api_blueprint(api.blp)
    register_api_blueprint(api_public.blp)
    cli.register_cli(app)
