"""Two-step sign-in: TOTP (RFC 6238, pyotp) with single-use recovery codes.

The secret is stored encrypted (Fernet) under a key derived from SECRET_KEY, so a copy of the database alone
does not yield the codes; rotating SECRET_KEY therefore means enrolling again. Recovery codes are stored as
SHA-256 hashes (they are random, so a slow hash adds nothing)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

import pyotp
import segno
import sqlalchemy as sa
import sqlalchemy.orm as so
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask_babel import lazy_gettext as _l

from marketplace.accounts.audit import record_event
from marketplace.accounts.models import RecoveryCode, User
from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict, ValidationFailed

#: The issuer an authenticator app shows beside the account.
ISSUER = "Tanhui 碳汇"
RECOVERY_CODE_COUNT = 10
#: Codes of the step before and after the current one are accepted too (clock drift of a phone).
VALID_WINDOW = 1
STEP_SECONDS = 30


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tanhui two-step secret").derive(
        secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _encrypt(secret_key: str, totp_secret: str) -> str:
    return _fernet(secret_key).encrypt(totp_secret.encode()).decode()


def _decrypt(secret_key: str, stored: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def requires_two_step(user: User, required_roles: frozenset[str]) -> bool:
    return user.role in required_roles


def has_two_step(user: User) -> bool:
    return user.two_step_enabled_at is not None


def start_enrolment(session: so.Session, user_id: int, *, secret_key: str) -> str:
    """A new secret for a user who has no second step yet (kept encrypted until confirmed). Returns it."""
    user = session.get(User, user_id)
    if has_two_step(user):
        raise Conflict(_l("Two-step sign-in is already on."))
    totp_secret = pyotp.random_base32()
    user.totp_secret_encrypted = _encrypt(secret_key, totp_secret)
    session.flush()
    return totp_secret


def pending_secret(user: User, *, secret_key: str) -> str | None:
    """The secret being enrolled (shown again if the page is reloaded)."""
    if has_two_step(user) or not user.totp_secret_encrypted:
        return None
    return _decrypt(secret_key, user.totp_secret_encrypted)


def provisioning_uri(user: User, totp_secret: str) -> str:
    return pyotp.TOTP(totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG image in a data: URI (the CSP allows data: images, no script)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _matching_step(totp_secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step whose code this is, if it is within the window and newer than the last one used."""
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(totp_secret)
    now = time.time() if now is None else now
    current = int(now // STEP_SECONDS)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            if last_step is not None and step <= last_step:
                return None  # replayed
            return step
    return None


def confirm_enrolment(session: so.Session, user_id: int, code: str, *, secret_key: str,
                      address: str | None = None) -> list[str]:
    """Turn two-step sign-in on once the user shows a code from the new secret. Returns the recovery codes
    (shown once)."""
    user = session.get(User, user_id)
    totp_secret = pending_secret(user, secret_key=secret_key)
    if totp_secret is None:
        raise Conflict(_l("Start the set-up again."))
    step = _matching_step(totp_secret, code, None)
    if step is None:
        raise ValidationFailed(_l("This code is not right. Enter the 6 digits your app shows now."), "code")
    user.two_step_enabled_at = utcnow()
    user.totp_last_step = step
    record_event(session, user.id, "two_step_enabled", address=address)
    codes = _new_recovery_codes(session, user.id)
    session.flush()
    return codes


def _recovery_digest(code: str) -> str:
    return hashlib.sha256("".join(code.split()).replace("-", "").lower().encode()).hexdigest()


def _new_recovery_codes(session: so.Session, user_id: int) -> list[str]:
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)  # 40 bits each, ten of them, single use
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user_id, code_hash=_recovery_digest(raw)))
    return codes


def renew_recovery_codes(session: so.Session, user_id: int, *, address: str | None = None) -> list[str]:
    codes = _new_recovery_codes(session, user_id)
    record_event(session, user_id, "recovery_codes_renewed", address=address)
    session.flush()
    return codes


def verify_second_step(session: so.Session, user_id: int, code: str, *, secret_key: str,
                       address: str | None = None) -> str | None:
    """Check a TOTP code (each accepted once) or a recovery code (used up). Returns "totp", "recovery" or None
    (a failure is written to the audit log)."""
    user = session.scalar(sa.select(User).where(User.id == user_id).with_for_update())
    totp_secret = _decrypt(secret_key, user.totp_secret_encrypted or "") if has_two_step(user) else None
    if totp_secret is not None:
        step = _matching_step(totp_secret, code, user.totp_last_step)
        if step is not None:
            user.totp_last_step = step
            session.flush()
            return "totp"
    cleaned = "".join((code or "").split()).replace("-", "").lower()
    if len(cleaned) == 10:
        used = session.execute(
            sa.update(RecoveryCode).where(RecoveryCode.user_id == user_id,
                                          RecoveryCode.code_hash == _recovery_digest(cleaned),
                                          RecoveryCode.used_at.is_(None)).values(used_at=utcnow()),
            execution_options={"synchronize_session": False})
        if used.rowcount == 1:
            record_event(session, user_id, "recovery_code_used", address=address)
            session.flush()
            return "recovery"
    record_event(session, user_id, "two_step_failed", address=address)
    session.flush()
    return None


def disable_two_step(session: so.Session, user_id: int, *, actor_id: int | None = None,
                     address: str | None = None) -> None:
    """Two-step sign-in off, the secret and recovery codes gone (by the user, the bureau or the CLI)."""
    user = session.get(User, user_id)
    user.totp_secret_encrypted = None
    user.two_step_enabled_at = None
    user.totp_last_step = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    record_event(session, user_id, "two_step_disabled", actor_id=actor_id, address=address)
    session.flush()


def unused_recovery_codes(session: so.Session, user_id: int) -> int:
    return session.scalar(sa.select(sa.func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))
