"""Settlement: the money journal, statements, payouts, household shares and the public benefit ledger."""

from __future__ import annotations

from flask import Flask

from marketplace.orders.signals import order_paid, order_refunded
from marketplace.settlement import (
    cli,
    journal,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
)


def init_app(app: Flask) -> None:
    order_paid.connect(journal.on_order_paid)
    order_refunded.connect(journal.on_order_refunded)
    cli.register_cli(app)
