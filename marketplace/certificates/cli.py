"""`marketplace certificates verify|rotate-key`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from marketplace.certificates.pdf import read_signed_record, signed_facts_lines, verify_pdf
from marketplace.certificates.signing import PublishedKey, published_keys, retire_key, rotate_signing_key
from marketplace.core.cli import fail
from marketplace.core.errors import DomainError
from marketplace.extensions import db


@click.group("certificates", help="Carbon-neutrality certificates: offline verification, signing keys.")
def certificates_group():
    pass


def _moment(value) -> datetime | None:
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _keys_from_file(path: str) -> dict[str, str | PublishedKey]:
    """key_id → key from a keys file: the JSON of GET /api/v1/public/keys ({"keys": [...]}, with each key's
    ``created_at`` and ``retired_at``: its validity window), a list of such objects, or a plain
    {key_id: pem} object (no window known)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        data = data["keys"]
    if isinstance(data, list):
        return {str(k["key_id"]): PublishedKey(str(k["public_key_pem"]), _moment(k.get("created_at")),
                                               _moment(k.get("retired_at"))) for k in data}
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return data
    raise ValueError("expected {\"keys\": [{\"key_id\", \"public_key_pem\"}, ...]}")


@certificates_group.command("verify")
@click.argument("pdf", type=click.Path(dir_okay=False))
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public keys as saved from /api/v1/public/keys; default: this installation's database.")
@with_appcontext
def certificates_verify(pdf, keys_file):
    """Check a certificate PDF offline: exit 0 if valid (and print the signed facts), 1 if not, and say why."""
    if keys_file:
        try:
            keys = _keys_from_file(keys_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"error: cannot read the keys file: {exc}", 2)
    else:
        keys = published_keys(db.session)
    ok, reason = verify_pdf(pdf, keys)
    click.echo(f"{'VALID' if ok else 'INVALID'}: {reason}")
    if ok:
        record, _pages, _problem = read_signed_record(Path(pdf).read_bytes())
        click.echo("Signed facts:")
        for line in signed_facts_lines(record["facts"]):
            click.echo(f"  {line}")
    sys.exit(0 if ok else 1)


@certificates_group.command("retire-key")
@click.argument("key_id")
@with_appcontext
def certificates_retire_key(key_id):
    """Record that a key signs no more from now (e.g. the old CERT_SIGNING_KEY after replacing it); what it
    signed until now still verifies, anything it would sign later does not."""
    try:
        row = retire_key(db.session, key_id.strip())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        fail(f"error: {exc.message}", 2)
    click.echo(f"retired key {row.key_id} at {row.retired_at.isoformat()}")


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
