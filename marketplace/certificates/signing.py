"""Ed25519 signatures over a canonical JSON of a certificate's facts, and the keys that make them.

Canonical JSON (what is signed, byte for byte):

- ``json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
  encoded as UTF-8: keys sorted by code point at every level, no whitespace outside strings,
  non-ASCII characters (Chinese names) written as themselves, not as ``\\uXXXX`` escapes;
- values are strings, integers, booleans, null, lists and objects only. Floats are refused:
  quantities travel as decimal strings with exactly 4 places (``"175.4020"``), timestamps as
  ISO 8601 strings with an offset; integers appear only as serial numbers (all below 2**53, so any
  JSON reader holds them exactly).

Anyone can re-create those bytes from the facts with the same ``json.dumps`` call (or any JSON
library that sorts keys and writes no whitespace) and check the signature with the public key
published at ``/api/v1/public/keys``.

Keys: the private key comes from ``CERT_SIGNING_KEY`` (a PKCS#8 PEM in the environment) or, when
that is empty, from the file ``CERT_SIGNING_KEY_FILE`` (``instance/signing_key.pem``, created with
mode 0600 on first use). A key's id is the first 16 hex digits of the SHA-256 of its raw 32-byte
public key. The public half is registered in ``signing_keys`` the first time it signs; rotation
writes a new key file and marks the old row retired, which keeps it for verification forever.

Each key has a validity window: from when it was registered (``created_at``, to the second) until it was
retired (``retired_at``, open while it signs). A certificate whose signed ``issued_at`` falls outside its
key's window fails verification, so a retired (or leaked and retired) key cannot sign a certificate
dated later, nor one dated before the key existed. A retired key refuses to sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app
from flask_babel import lazy_gettext as _l

from marketplace.certificates.models import SigningKey
from marketplace.core.db import insert, utcnow
from marketplace.core.errors import Conflict

ALGORITHM = "Ed25519"


# --- canonical JSON --------------------------------------------------------------------------------

def _refuse_floats(value, path: str = "facts") -> None:
    if isinstance(value, float):
        raise TypeError(f"{path} is a float; send quantities as decimal strings")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a non-string key {key!r}")
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")


def canonical_json(facts: dict) -> str:
    """The one serialisation that is signed (see the module docstring). Encode as UTF-8 to sign."""
    _refuse_floats(facts)
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- keys ------------------------------------------------------------------------------------------

def key_id_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def _parse_private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"the certificate signing key in {where} is not a readable PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"the certificate signing key in {where} is not an Ed25519 key")
    return key


def _write_key_file(path: Path, key: Ed25519PrivateKey, *, replace: bool) -> None:
    """Write the key to a 0600 temporary file, then put it in place in one step: a reader never sees
    half a key. Without ``replace``, a key already there (another process won the race) is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_key_pem(key))
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
    finally:
        temporary.unlink(missing_ok=True)


def _configured_private_key() -> Ed25519PrivateKey:
    config = current_app.config
    # Container environments often carry a PEM on one line with literal "\n"s.
    pem = (config.get("CERT_SIGNING_KEY") or "").strip().replace("\\n", "\n")
    if pem:
        return _parse_private_key(pem.encode("ascii", "replace"), "CERT_SIGNING_KEY")
    path = Path(config["CERT_SIGNING_KEY_FILE"])
    if not path.exists():
        _write_key_file(path, Ed25519PrivateKey.generate(), replace=False)
    return _parse_private_key(path.read_bytes(), str(path))


def register_public_key(session: so.Session, public_key: Ed25519PublicKey) -> SigningKey:
    """The key's row in signing_keys, inserted if new (safe when two processes race to insert it)."""
    key_id = key_id_for(public_key)
    row = session.scalar(sa.select(SigningKey).where(SigningKey.key_id == key_id))
    if row is not None:
        return row
    session.execute(insert(session, SigningKey).values(
        key_id=key_id, algorithm=ALGORITHM, public_key_pem=public_key_pem(public_key), created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["key_id"]))
    return session.scalar(sa.select(SigningKey).where(SigningKey.key_id == key_id))


@dataclass(frozen=True)
class ActiveKey:
    """The key that signs new certificates now."""

    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, payload: bytes) -> str:
        """Ed25519 signature of the bytes, standard base64."""
        return base64.b64encode(self.private_key.sign(payload)).decode("ascii")


class RetiredKeyConfigured(RuntimeError):
    """The configured private key was retired: it must sign nothing (configure the new key)."""


def active_signing_key(session: so.Session) -> ActiveKey:
    """The configured private key, its public half registered in signing_keys on first use.

    Raises RetiredKeyConfigured when that key was retired (a process still holding an old key, an old
    CERT_SIGNING_KEY after ``certificates retire-key``): its certificates would fail verification."""
    private_key = _configured_private_key()
    row = register_public_key(session, private_key.public_key())
    if row.retired_at is not None:
        raise RetiredKeyConfigured(f"the configured certificate signing key {row.key_id} was retired at "
                                   f"{row.retired_at.isoformat()}; configure the current key")
    return ActiveKey(key_id=row.key_id, private_key=private_key)


def sign_facts(session: so.Session, facts: dict, key: ActiveKey | None = None) -> tuple[str, str]:
    """Sign a copy of the facts with the active key (``key``, when the caller has just looked it up with
    ``active_signing_key``); the copy carries ``key_id`` (so the key cannot be swapped without breaking
    the signature). Returns (canonical JSON, base64 signature)."""
    key = key or active_signing_key(session)
    signed = {**facts, "key_id": key.key_id}
    payload = canonical_json(signed)
    return payload, key.sign(payload.encode("utf-8"))


def verify_signature(payload: str | bytes, signature_b64: str, public_key_pem_text: str) -> bool:
    """True when the signature is the Ed25519 signature of these exact bytes by this public key."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    try:
        signature = base64.b64decode(signature_b64 or "", validate=True)
        key = serialization.load_pem_public_key(public_key_pem_text.encode("ascii"))
    except (binascii.Error, ValueError, TypeError, UnicodeEncodeError):
        return False
    if not isinstance(key, Ed25519PublicKey) or len(signature) != 64:
        return False
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class PublishedKey:
    """A public key and the window in which it signed: [valid_from, valid_until] (None: open)."""

    public_key_pem: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        """Could this key have signed at ``moment``? (registration time compared to the second, as
        certificates carry whole seconds)."""
        if self.valid_from is not None and moment < self.valid_from.replace(microsecond=0):
            return False
        return self.valid_until is None or moment <= self.valid_until


def published_keys(session: so.Session) -> dict[str, PublishedKey]:
    """Every key that ever signed, with its validity window: key_id → PublishedKey."""
    rows = session.execute(sa.select(SigningKey.key_id, SigningKey.public_key_pem, SigningKey.created_at,
                                     SigningKey.retired_at).order_by(SigningKey.created_at, SigningKey.id)).all()
    return {key_id: PublishedKey(pem, created, retired) for key_id, pem, created, retired in rows}


def retire_key(session: so.Session, key_id: str) -> SigningKey:
    """Record that a key signs no more from now (its window closes); its certificates until now still
    verify. Refused for an unknown or already retired key. Flushes; the caller commits."""
    row = session.scalar(sa.select(SigningKey).where(SigningKey.key_id == key_id).with_for_update())
    if row is None:
        raise Conflict(_l("No signing key has the id %(key)s.", key=key_id))
    if row.retired_at is not None:
        raise Conflict(_l("Key %(key)s was already retired.", key=key_id))
    row.retired_at = utcnow()
    session.flush()
    return row


def public_keys(session: so.Session) -> dict[str, str]:
    """Every key that ever signed, old ones too: key_id → public key PEM."""
    return dict(session.execute(sa.select(SigningKey.key_id, SigningKey.public_key_pem)
                                .order_by(SigningKey.created_at, SigningKey.id)).all())


def rotate_signing_key(session: so.Session) -> tuple[SigningKey, SigningKey]:
    """Replace the key file with a new key; the old key's row is kept, marked retired.

    The old private key is overwritten: a retired key should sign nothing, and its public half is
    all verification needs. Returns (old row, new row). The caller commits."""
    if (current_app.config.get("CERT_SIGNING_KEY") or "").strip():
        raise Conflict(_l("The signing key comes from CERT_SIGNING_KEY: set a new key there to rotate it."))
    old_row = register_public_key(session, _configured_private_key().public_key())
    new_private = Ed25519PrivateKey.generate()
    new_row = register_public_key(session, new_private.public_key())
    if old_row.retired_at is None:  # retiring records when: the old key's window closes now
        old_row.retired_at = utcnow()
    session.flush()
    # The file switch comes last. Should the caller's commit then fail, nothing breaks: the new key
    # registers itself the first time it signs, and the old row merely misses its retired_at.
    _write_key_file(Path(current_app.config["CERT_SIGNING_KEY_FILE"]), new_private, replace=True)
    return old_row, new_row
