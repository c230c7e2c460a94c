"""`marketplace users` and `marketplace tokens`."""

from __future__ import annotations

import secrets

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from marketplace.accounts import service as accounts
from marketplace.accounts import two_step
from marketplace.accounts.credit_code import complete_credit_code
from marketplace.accounts.models import Organisation, User
from marketplace.core.cli import fail
from marketplace.core.errors import DomainError
from marketplace.extensions import db

#: ``operator``: the platform operator the bureau delegates its settlement work to (README "Money to villages").
ROLE_KINDS = {"seller": "seller", "buyer": "buyer", "bureau": "bureau", "evaluator": "evaluator",
              "operator": "operator"}


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
    try:
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == org_name.strip()))
        if org is None:
            if not credit_code:
                body = "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
                credit_code = complete_credit_code("91330000" + body)
            org = accounts.create_organisation(db.session, kind=ROLE_KINDS[role], name=org_name,
                                               credit_code=credit_code)
            click.echo(f"created organisation {org.name} ({org.kind}, {org.credit_code})")
        elif org.kind != ROLE_KINDS[role]:
            fail(f"organisation {org.name} is a {org.kind}, not a {role}", 2)
        user = accounts.create_user(db.session, organisation_id=org.id, email=email, password=password,
                                    display_name=display_name)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        fail(f"error: {exc.message}", 2)
    click.echo(f"created user {user.email} in {org.name}")


@click.group("tokens", help="Manage API tokens.")
def tokens_group():
    pass


def _user_by_email(email: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        fail(f"no user with e-mail {email}", 2)
    return user


@users_group.command("reset-two-step")
@click.option("--email", required=True)
@with_appcontext
def users_reset_two_step(email):
    """Turn a user's two-step sign-in off (lost phone and recovery codes) and end their sessions; if their role
    requires it, they set it up again at their next sign-in."""
    user = _user_by_email(email)
    two_step.disable_two_step(db.session, user.id)
    accounts.end_all_sessions(db.session, user.id)
    db.session.commit()
    click.echo(f"two-step sign-in of {user.email} is off; their sessions have ended")


@tokens_group.command("create")
@click.option("--email", required=True)
@click.option("--name", default="cli")
@click.option("--scope", type=click.Choice(["read", "read_write"]), default="read_write", show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=accounts.DEFAULT_TOKEN_DAYS, show_default=True)
@with_appcontext
def tokens_create(email, name, scope, days):
    """Create an API token for a user and print the token alone."""
    user = _user_by_email(email)
    token = accounts.create_api_token(db.session, user.id, name, scope=scope, days=days)
    db.session.commit()
    click.echo(token)


def register_cli(app: Flask) -> None:
    for command in (users_group, tokens_group,):
        app.cli.add_command(command)
