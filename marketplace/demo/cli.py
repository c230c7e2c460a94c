"""`marketplace seed-demo`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from marketplace.config import RELAXED_ENVIRONMENTS
from marketplace.demo import service as demo
from marketplace.extensions import db


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the Lishui zero-carbon summit story (idempotent) and print the demo logins.

    Refused in production: the demo's accounts (a bureau among them) share a password printed in the README."""
    if current_app.config.get("TANHUI_ENV") not in RELAXED_ENVIRONMENTS:
        raise click.ClickException("seed-demo creates accounts with a published password and is refused with "
                                   "TANHUI_ENV=production; the demo runs with TANHUI_ENV=demo "
                                   "(docker-compose.demo.yml) or development (make run).")
    demo.seed_demo(db.session, say=lambda m: click.echo(f"  · {m}"))
    click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
    for kind, email, name in demo.demo_logins():
        click.echo(f"  {kind:<7} {email:<28} {name}")


def register_cli(app: Flask) -> None:
    for command in (seed_demo_command,):
        app.cli.add_command(command)
