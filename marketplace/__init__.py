"""Tanhui 碳汇 — the regional forestry carbon-sink marketplace and registry."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from marketplace.config import DEFAULT_INSTANCE, PROJECT_ROOT, load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the application: configuration, extensions, Celery, blueprints, errors, commands."""
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

    register_extensions(app)
    register_queue(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_request_hooks(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from marketplace import models  # noqa: F401  (registers every model on the metadata)
    from marketplace.extensions import babel, csrf, db, limiter, login_manager, migrate
    from marketplace.i18n import select_locale, select_timezone
    from marketplace.services.outbox import install_outbox_relay

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


def register_queue(app: Flask) -> None:
    from marketplace.queue import celery_init_app

    celery_init_app(app)


def register_blueprints(app: Flask) -> None:
    from marketplace.api import register_api
    from marketplace.services.ids import IdConverter
    from marketplace.web import register_web

    app.url_map.converters["int"] = IdConverter  # before any route is added: ids beyond 2**31-1 are a 404
    register_web(app)
    register_api(app)


def register_errorhandlers(app: Flask) -> None:
    from marketplace.errors import register_error_handlers

    register_error_handlers(app)


def register_request_hooks(app: Flask) -> None:
    from marketplace.security import register_security

    register_security(app)


def register_commands(app: Flask) -> None:
    from marketplace.cli import register_cli

    register_cli(app)
