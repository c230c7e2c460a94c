"""Tanhui 碳汇 — the regional forestry carbon-sink marketplace and registry.

One package per capability. Features depend on those before them only (an import-linter contract holds
it): core → accounts → registry → footprint → orders → certificates → neutrality → settlement → stats → demo.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from marketplace import (
    accounts,
    certificates,
    core,
    demo,
    footprint,
    neutrality,
    orders,
    registry,
    settlement,
    stats,
)
from marketplace.config import DEFAULT_INSTANCE, PROJECT_ROOT, load_config, refuse_insecure_production
from marketplace.core.i18n import select_locale, select_timezone
from marketplace.core.outbox import install_outbox_relay
from marketplace.extensions import babel, csrf, db, limiter, login_manager, migrate

#: In dependency order; each registers its blueprints, API, commands and signal handlers.
FEATURES = (core, accounts, registry, footprint, orders, certificates, neutrality, settlement, stats, demo)


def create_app(config: dict | None = None) -> Flask:
    """Build the application: configuration, extensions, then each feature in order."""
    instance_path = Path((config or {}).get("INSTANCE_PATH") or os.environ.get("TANHUI_INSTANCE_PATH")
                         or DEFAULT_INSTANCE)
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config(instance_path))
    if config:
        app.config.update(config)
    refuse_insecure_production(app.config)  # production never runs on a default, empty or test setting
    for feature in FEATURES:  # every feature's own settings, before anything is registered with shared extensions
        if hasattr(feature, "check_config"):
            feature.check_config(app.config)

    register_extensions(app)
    for feature in FEATURES:
        feature.init_app(app)
    return app


def register_extensions(app: Flask) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("pool_size", app.config.get("DATABASE_POOL_SIZE", 16))
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True,
                     render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    limiter.init_app(app)
    login_manager.init_app(app)
    install_outbox_relay(app)
