"""`marketplace ledger check`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.extensions import db
from marketplace.registry import ledger


@click.group("ledger", help="The credit ledger.")
def ledger_group():
    pass


@ledger_group.command("check")
@with_appcontext
def ledger_check():
    """Prove the ledger's invariants on the live database; exit 1 with a report if one fails."""
    with click.progressbar(length=1, label="checking batches", file=sys.stderr) as bar:
        def progress(done, total):
            bar.length = total
            bar.update(done - bar.pos)

        report = ledger.check_invariants(db.session, progress=progress)
    click.echo(f"batches: {report.batches}  journal entries: {report.entries}  serial ranges: {report.ranges}")
    if report.ok:
        click.echo("ledger check passed: every batch sums to its issuance, nothing is negative, "
                   "the journal replays to the balances, no unit is retired twice")
        return
    click.echo(f"ledger check FAILED: {len(report.problems)} problem(s)", err=True)
    for problem in report.problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(1)


def register_cli(app: Flask) -> None:
    for command in (ledger_group,):
        app.cli.add_command(command)
