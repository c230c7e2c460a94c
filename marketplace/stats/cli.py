"""`marketplace stats rebuild`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.extensions import db
from marketplace.stats import aggregates


@click.group("stats", help="The dashboards' aggregates.")
def stats_group():
    pass


@stats_group.command("rebuild")
@with_appcontext
def stats_rebuild():
    """Recompute the dashboards' aggregates from the completed orders and the ledger (one transaction)."""
    with click.progressbar(length=1, label="counting completed orders", file=sys.stderr) as bar:
        def progress(done, total):
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        counted = aggregates.rebuild(db.session, progress=progress)
    db.session.commit()
    click.echo(f"rebuilt the aggregates from {counted} completed orders")


def register_cli(app: Flask) -> None:
    for command in (stats_group,):
        app.cli.add_command(command)
