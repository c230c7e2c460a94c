"""The credit registry: regions, projects, documents, batches, the ledger, listings, the public registry."""

from __future__ import annotations

from flask import Flask

from marketplace.core import public_cache
from marketplace.core.api import accept_raw_body, register_api_blueprint
from marketplace.registry import (
    api,
    api_parcels,
    cli,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    parcel_models,  # noqa: F401
    service,
    views,
    views_bureau,
    views_parcels,
    views_pledges,
    views_sellers,
)

#: What the public registry and listings show: projects with their places and sellers, batches, listings,
#: the ledger's balances (every reservation changes what is available), parcels (the map).
public_cache.watch("registry", "projects", "credit_batches", "listings", "ledger_balances", "regions",
                   "organisations", "project_parcels")


def init_app(app: Flask) -> None:
    for module in (views, views_bureau, views_sellers, views_pledges, views_parcels):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
    register_api_blueprint(api_parcels.blp)
    accept_raw_body("api_parcels.upload_parcels", "application/zip", "application/x-zip-compressed")
    app.add_template_global(service.scheme_label, "scheme_label")
    cli.register_cli(app)
