"""The demo: the Lishui zero-carbon summit story (`marketplace seed-demo`)."""

from __future__ import annotations

from flask import Flask

from marketplace.demo import cli


def init_app(app: Flask) -> None:
    cli.register_cli(app)
