"""Event neutralisation as the MEE guideline asks: plans, reductions, coverage, declarations, evaluations,
public disclosure."""

from __future__ import annotations

from flask import Flask

from marketplace.certificates.service import register_signed_format
from marketplace.core.api import register_api_blueprint
from marketplace.footprint.signals import event_boundary
from marketplace.neutrality import (
    api_public,
    declarations,
    models,  # noqa: F401  (its tables, on the metadata Alembic compares)
    service,
    views,
)


def init_app(app: Flask) -> None:
    event_boundary.connect(service.boundary_of_event)
    register_signed_format(declarations.FORMAT, declarations.PRINTED_FACTS, declarations.ONLINE_PATH,
                           declarations.render_pages)
    app.register_blueprint(views.bp)
    register_api_blueprint(api_public.blp)
