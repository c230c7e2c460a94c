"""Commands of the shared parts (`marketplace outbox`, `marketplace tasks`), and what every feature's
commands share."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from marketplace.core import outbox
from marketplace.core.db import utcnow
from marketplace.core.outbox_models import DeadLetter
from marketplace.extensions import db


def fail(message: str, code: int = 1):
    """Say why on standard error and exit with the code (2: the command was used wrongly)."""
    click.echo(message, err=True)
    sys.exit(code)


@click.group("outbox", help="The transactional outbox.")
def outbox_group():
    pass


@outbox_group.command("sweep")
@click.option("--older-than", default=0, show_default=True, help="Seconds since the row was written.")
@with_appcontext
def outbox_sweep(older_than):
    """Publish every unpublished outbox row now."""
    click.echo(f"published {outbox.sweep(older_than)}")


@click.group("tasks", help="Background tasks that failed for good (dead letters).")
def tasks_group():
    pass


@tasks_group.command("list")
@with_appcontext
def tasks_list():
    """Dead letters not yet resolved."""
    for letter in db.session.scalars(sa.select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                                     .order_by(DeadLetter.id)):
        click.echo(f"{letter.id}\t{letter.task_name}\t{letter.kwargs}\t{letter.error[:120]}")


@tasks_group.command("retry")
@click.argument("letter_id", type=int)
@with_appcontext
def tasks_retry(letter_id):
    """Queue a dead letter's task again (through the outbox) and mark it resolved."""
    letter = db.session.get(DeadLetter, letter_id)
    if letter is None or letter.resolved_at is not None:
        fail(f"no open dead letter {letter_id}", 2)
    outbox.enqueue(db.session, letter.task_name, **letter.kwargs)
    letter.resolved_at = utcnow()
    db.session.commit()
    click.echo(f"queued {letter.task_name} {letter.kwargs} again")


def register_cli(app: Flask) -> None:
    for command in (outbox_group, tasks_group):
        app.cli.add_command(command)
