"""Settlement: the money journal, statements, payouts, household shares and the public benefit ledger."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Flask

from marketplace.core.api import register_api_blueprint
from marketplace.core.quantities import fen_to_cny
from marketplace.orders.signals import order_paid, order_refunded
from marketplace.settlement import (
    api_public,
    cli,
    journal,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    statements,
    views,
    views_bureau,
    views_buyers,
    views_sellers,
)


def check_fee_settings(config) -> None:
    """Refuse to start with a default fee rule that does not add up, naming the setting."""
    try:
        percent = Decimal(str(config.get("PLATFORM_FEE_PERCENT", "0")))
        floor = int(config.get("PLATFORM_FEE_FLOOR_FEN", 0))
        ceiling = config.get("PLATFORM_FEE_CEILING_FEN")
        ceiling = None if ceiling in (None, "") else int(ceiling)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"PLATFORM_FEE_* settings must be numbers: {exc}") from None
    if not (0 <= percent <= 100) or percent != percent.quantize(Decimal("0.01")):
        raise ValueError("PLATFORM_FEE_PERCENT must be between 0 and 100 with at most 2 decimal places")
    if floor < 0:
        raise ValueError("PLATFORM_FEE_FLOOR_FEN must not be negative")
    if ceiling is not None and ceiling < floor:
        raise ValueError("PLATFORM_FEE_CEILING_FEN is below PLATFORM_FEE_FLOOR_FEN")


def check_config(config) -> None:
    """Refuse settings this feature cannot work with (create_app calls it before any feature is set up)."""
    check_fee_settings(config)
    statements.check_statement_settings(config)


def init_app(app: Flask) -> None:
    order_paid.connect(journal.on_order_paid)
    order_refunded.connect(journal.on_order_refunded)
    # Amounts in the journal are integer fen: ``{{ amount_fen|fen_to_cny|cny }}`` on the pages.
    app.add_template_filter(fen_to_cny, "fen_to_cny")
    for module in (views, views_sellers, views_bureau, views_buyers):
        app.register_blueprint(module.bp)
    register_api_blueprint(api_public.blp)
    cli.register_cli(app)
