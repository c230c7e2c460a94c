"""`marketplace money check`, `marketplace money close-statements`, `marketplace money backfill`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.extensions import db
from marketplace.settlement import journal, money_check, statements


@click.group("money", help="The money journal.")
def money_group():
    pass


@money_group.command("check")
@with_appcontext
def money_check_command():
    """Prove the money journal's invariants on the live database; exit 1 with a report if one fails."""
    problems = money_check.check_invariants(db.session)
    if not problems:
        click.echo("money check passed: captured = proceeds + fees + refunds (per order and in total), "
                   "statements equal the journal, no payout exceeded a balance, no distribution exceeded "
                   "what was paid out")
        return
    click.echo(f"money check FAILED: {len(problems)} problem(s)", err=True)
    for problem in problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(1)


@money_group.command("close-statements")
@with_appcontext
def money_close_statements_command():
    """Close every cooperative's statements whose period (STATEMENT_PERIOD) has ended; safe to repeat (daily)."""
    written = statements.close_all_due(db.session)
    db.session.commit()
    click.echo(f"statements closed now: {written} ({statements.period_kind()})")


@money_group.command("backfill")
@with_appcontext
def money_backfill_command():
    """Settle orders paid before the money journal existed (after upgrading); safe to repeat."""
    settled = journal.settle_unsettled(db.session)
    db.session.commit()
    click.echo(f"orders settled now: {settled}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(money_group)
