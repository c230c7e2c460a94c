"""The `marketplace` command (a FlaskGroup, so `marketplace run` and `marketplace db upgrade` work too)."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from marketplace.extensions import db
from marketplace.services.errors import DomainError

ROLE_KINDS = {"seller": "seller", "buyer": "buyer", "bureau": "bureau"}


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


@click.group("users", help="Manage users.")
def users_group():
    pass


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--org", "org_name", required=True, help="Organisation name; created if it does not exist.")
@click.option("--role", type=click.Choice(sorted(ROLE_KINDS)), required=True,
              help="The kind of organisation the user acts for.")
@click.option("--credit-code", default=None, help="Credit code for a new organisation (default: generated).")
@click.option("--name", "display_name", default="")
@with_appcontext
def users_create(email, password, org_name, role, credit_code, display_name):
    """Create a user, and their organisation if it is new."""
    from marketplace.models import Organisation
    from marketplace.services import accounts
    from marketplace.services.credit_code import complete_credit_code

    try:
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == org_name.strip()))
        if org is None:
            if not credit_code:
                import secrets

                body = "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
                credit_code = complete_credit_code("91330000" + body)
            org = accounts.create_organisation(db.session, kind=ROLE_KINDS[role], name=org_name,
                                               credit_code=credit_code)
            click.echo(f"created organisation {org.name} ({org.kind}, {org.credit_code})")
        elif org.kind != ROLE_KINDS[role]:
            _fail(f"organisation {org.name} is a {org.kind}, not a {role}", 2)
        user = accounts.create_user(db.session, organisation_id=org.id, email=email, password=password,
                                    display_name=display_name)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        _fail(f"error: {exc.message}", 2)
    click.echo(f"created user {user.email} in {org.name}")


@click.group("tokens", help="Manage API tokens.")
def tokens_group():
    pass


@tokens_group.command("create")
@click.option("--email", required=True)
@click.option("--name", default="cli")
@with_appcontext
def tokens_create(email, name):
    """Create an API token for a user and print the token alone."""
    from marketplace.models import User
    from marketplace.services import accounts

    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        _fail(f"no user with e-mail {email}", 2)
    token = accounts.create_api_token(db.session, user.id, name)
    db.session.commit()
    click.echo(token)


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the Lishui zero-carbon summit story (idempotent) and print the demo logins."""
    from marketplace.services import demo

    demo.seed_demo(db.session, say=lambda m: click.echo(f"  · {m}"))
    click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
    for kind, email, name in demo.demo_logins():
        click.echo(f"  {kind:<7} {email:<28} {name}")


@click.group("outbox", help="The transactional outbox.")
def outbox_group():
    pass


@outbox_group.command("sweep")
@click.option("--older-than", default=0, show_default=True, help="Seconds since the row was written.")
@with_appcontext
def outbox_sweep(older_than):
    """Publish every unpublished outbox row now."""
    from marketplace.services import outbox

    click.echo(f"published {outbox.sweep(older_than)}")


@click.group("ledger", help="The credit ledger.")
def ledger_group():
    pass


@ledger_group.command("check")
@with_appcontext
def ledger_check():
    """Prove the ledger's invariants on the live database; exit 1 with a report if one fails."""
    from marketplace.services import ledger

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


@click.group("certificates", help="Carbon-neutrality certificates: offline verification, signing keys.")
def certificates_group():
    pass


def _keys_from_file(path: str) -> dict[str, str]:
    """key_id → PEM from a keys file: the JSON of GET /api/v1/public/keys ({"keys": [...]}), a list of
    such objects, or a plain {key_id: pem} object."""
    import json

    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        data = data["keys"]
    if isinstance(data, list):
        return {str(k["key_id"]): str(k["public_key_pem"]) for k in data}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return data
    raise ValueError("expected {\"keys\": [{\"key_id\", \"public_key_pem\"}, ...]}")


@certificates_group.command("verify")
@click.argument("pdf", type=click.Path(dir_okay=False))
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public keys as saved from /api/v1/public/keys; default: this installation's database.")
@with_appcontext
def certificates_verify(pdf, keys_file):
    """Check a certificate PDF offline: exit 0 if valid, 1 if not, and say why."""
    from marketplace.services.certificate_pdf import verify_pdf
    from marketplace.services.signing import public_keys

    if keys_file:
        try:
            keys = _keys_from_file(keys_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail(f"error: cannot read the keys file: {exc}", 2)
    else:
        keys = public_keys(db.session)
    ok, reason = verify_pdf(pdf, keys)
    click.echo(f"{'VALID' if ok else 'INVALID'}: {reason}")
    sys.exit(0 if ok else 1)


@certificates_group.command("rotate-key")
@with_appcontext
def certificates_rotate_key():
    """Start signing with a new key; the old one is kept (retired) so its certificates still verify."""
    from marketplace.services.signing import rotate_signing_key

    try:
        old, new = rotate_signing_key(db.session)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        _fail(f"error: {exc.message}", 2)
    click.echo(f"retired key {old.key_id}; now signing with {new.key_id}")


@click.group("stats", help="The dashboards' aggregates.")
def stats_group():
    pass


@stats_group.command("rebuild")
@with_appcontext
def stats_rebuild():
    """Recompute the dashboards' aggregates from the completed orders and the ledger (one transaction)."""
    from marketplace.services import stats

    with click.progressbar(length=1, label="counting completed orders", file=sys.stderr) as bar:
        def progress(done, total):
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        counted = stats.rebuild(db.session, progress=progress)
    db.session.commit()
    click.echo(f"rebuilt the aggregates from {counted} completed orders")


def register_cli(app: Flask) -> None:
    for command in (users_group, tokens_group, seed_demo_command, outbox_group, ledger_group, certificates_group,
                    tasks_group, stats_group):
        app.cli.add_command(command)


def _create_app():
    from marketplace import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, help="Tanhui 碳汇 marketplace administration.")
def main():
    pass


@click.group("tasks", help="Background tasks that failed for good (dead letters).")
def tasks_group():
    pass


@tasks_group.command("list")
@with_appcontext
def tasks_list():
    """Dead letters not yet resolved."""
    from marketplace.models import DeadLetter

    for letter in db.session.scalars(sa.select(DeadLetter).where(DeadLetter.resolved_at.is_(None))
                                     .order_by(DeadLetter.id)):
        click.echo(f"{letter.id}\t{letter.task_name}\t{letter.kwargs}\t{letter.error[:120]}")


@tasks_group.command("retry")
@click.argument("letter_id", type=int)
@with_appcontext
def tasks_retry(letter_id):
    """Queue a dead letter's task again (through the outbox) and mark it resolved."""
    from marketplace.models import DeadLetter
    from marketplace.models.base import utcnow
    from marketplace.services import outbox

    letter = db.session.get(DeadLetter, letter_id)
    if letter is None or letter.resolved_at is not None:
        _fail(f"no open dead letter {letter_id}", 2)
    outbox.enqueue(db.session, letter.task_name, **letter.kwargs)
    letter.resolved_at = utcnow()
    db.session.commit()
    click.echo(f"queued {letter.task_name} {letter.kwargs} again")
