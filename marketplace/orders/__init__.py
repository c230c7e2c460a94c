"""Orders: reservations, card payments through Stripe, bank transfers, refunds."""

from __future__ import annotations

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.footprint.signals import event_locking_orders
from marketplace.orders import (  # noqa: F401  (models: its tables join the metadata when the app is built)
    api,
    history,
    models,
    payment_models,
    service,
    views,
    views_bureau,
    views_sellers,
    views_webhooks,
)


def init_app(app: Flask) -> None:
    event_locking_orders.connect(service.locking_orders)
    for module in (views, views_bureau, views_sellers, views_webhooks):
        app.register_blueprint(module.bp)
    register_api_blueprint(api.blp)
    app.add_template_filter(history.describe_transition, "order_note")
    app.add_template_global(service.purpose_label, "purpose_label")
