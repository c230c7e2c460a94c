"""`marketplace certificates verify|rotate-key`."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.certificates.pdf import verify_pdf
from marketplace.certificates.signing import public_keys, rotate_signing_key
from marketplace.core.cli import fail
from marketplace.core.errors import DomainError
from marketplace.extensions import db


@click.group("certificates", help="Carbon-neutrality certificates: offline verification, signing keys.")
def certificates_group():
    pass


def _keys_from_file(path: str) -> dict[str, str]:
    """key_id → PEM from a keys file: the JSON of GET /api/v1/public/keys ({"keys": [...]}), a list of
    such objects, or a plain {key_id: pem} object."""
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
    if keys_file:
        try:
            keys = _keys_from_file(keys_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"error: cannot read the keys file: {exc}", 2)
    else:
        keys = public_keys(db.session)
    ok, reason = verify_pdf(pdf, keys)
    click.echo(f"{'VALID' if ok else 'INVALID'}: {reason}")
    sys.exit(0 if ok else 1)


@certificates_group.command("rotate-key")
@with_appcontext
def certificates_rotate_key():
    """Start signing with a new key; the old one is kept (retired) so its certificates still verify."""
    try:
        old, new = rotate_signing_key(db.session)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        fail(f"error: {exc.message}", 2)
    click.echo(f"retired key {old.key_id}; now signing with {new.key_id}")


def register_cli(app: Flask) -> None:
    for command in (certificates_group,):
        app.cli.add_command(command)
