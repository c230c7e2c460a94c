"""Settlement: the money journal, statements, payouts, household shares and the public benefit ledger."""

from __future__ import annotations

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.core.quantities import fen_to_cny
from marketplace.orders.signals import order_paid, order_refunded
from marketplace.settlement import (
    api_public,
    cli,
    journal,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    views,
    views_bureau,
    views_sellers,
)


def init_app(app: Flask) -> None:
    order_paid.connect(journal.on_order_paid)
    order_refunded.connect(journal.on_order_refunded)
    # Amounts in the journal are integer fen: ``{{ amount_fen|fen_to_cny|cny }}`` on the pages.
    app.add_template_filter(fen_to_cny, "fen_to_cny")
    for module in (views, views_sellers, views_bureau):
        app.register_blueprint(module.bp)
    register_api_blueprint(api_public.blp)
    cli.register_cli(app)
