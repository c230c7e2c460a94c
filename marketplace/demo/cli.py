"""`marketplace seed-demo`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.demo import service as demo
from marketplace.extensions import db


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the Lishui zero-carbon summit story (idempotent) and print the demo logins."""
    demo.seed_demo(db.session, say=lambda m: click.echo(f"  · {m}"))
    click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
    for kind, email, name in demo.demo_logins():
        click.echo(f"  {kind:<7} {email:<28} {name}")


def register_cli(app: Flask) -> None:
    for command in (seed_demo_command,):
        app.cli.add_command(command)
