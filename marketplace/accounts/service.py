"""Organisations, users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from marketplace.accounts.credit_code import is_valid_credit_code, normalise_credit_code
from marketplace.accounts.models import ORGANISATION_KINDS, ApiToken, Organisation, User
from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict, Forbidden, ValidationFailed

#: argon2id with the library's defaults (RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4).
#: The test suite alone asks for a cheaper argon2id (TANHUI_PASSWORD_HASH_PROFILE=test) to stay fast.
_hasher = (PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
           if os.environ.get("TANHUI_PASSWORD_HASH_PROFILE") == "test" else PasswordHasher())
#: A hash to verify against when the e-mail is unknown, so timing does not reveal which e-mails exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10
#: Argon2 hashes any length; this only keeps a pasted novel out of the hasher.
MAX_PASSWORD_LENGTH = 200
TOKEN_PREFIX = "th_"  # noqa: S105 — a prefix, not a secret


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(raw: str) -> str:
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationFailed(_l("Enter a valid e-mail address."), "email") from None


def require_bureau(actor: User) -> None:
    if actor is None or actor.role != "bureau":
        raise Forbidden(_l("Only bureau staff may do this."))


def create_organisation(session: so.Session, *, kind: str, name: str, credit_code: str,
                        name_en: str | None = None, contact_email: str | None = None) -> Organisation:
    """A new organisation; the credit code's check digit must be right."""
    name = (name or "").strip()
    if kind not in ORGANISATION_KINDS:
        raise ValidationFailed(_l("Choose seller, buyer or bureau."), "kind")
    if not name:
        raise ValidationFailed(_l("Enter the organisation's name."), "name")
    code = normalise_credit_code(credit_code)
    if not is_valid_credit_code(code):
        raise ValidationFailed(
            _l("This is not a valid unified social credit code (18 characters, check digit)."), "credit_code")
    if session.scalar(sa.select(Organisation.id).where(Organisation.name == name)):
        raise Conflict(_l("An organisation with this name already exists."), "name")
    if session.scalar(sa.select(Organisation.id).where(Organisation.credit_code == code)):
        raise Conflict(_l("An organisation with this credit code already exists."), "credit_code")
    org = Organisation(kind=kind, name=name, name_en=(name_en or None), credit_code=code,
                       contact_email=contact_email or None)
    session.add(org)
    session.flush()
    return org


def create_user(session: so.Session, *, organisation_id: int, email: str, password: str,
                display_name: str = "", locale: str = "zh_CN") -> User:
    email = normalise_email(email)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(_l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
                               "password")
    if session.scalar(sa.select(User.id).where(User.email == email)):
        raise Conflict(_l("A user with this e-mail already exists."), "email")
    if session.get(Organisation, organisation_id) is None:
        raise ValidationFailed(_l("Choose an organisation."), "organisation_id")
    user = User(organisation_id=organisation_id, email=email, password_hash=hash_password(password),
                display_name=(display_name or "").strip(), locale=locale if locale in ("zh_CN", "en") else "zh_CN")
    session.add(user)
    session.flush()
    return user


def authenticate(session: so.Session, email: str, password: str) -> User | None:
    """The active user with these credentials, or None. Re-hashes when parameters have changed."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        check_password(_DUMMY_HASH, password or "")
        return None
    user = session.scalar(sa.select(User).where(User.email == email).options(so.joinedload(User.organisation)))
    if user is None or not user.active:
        check_password(_DUMMY_HASH, password or "")
        return None
    if not check_password(user.password_hash, password or ""):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: so.Session, user_id: int, name: str = "") -> str:
    """A new bearer token for the user; only its hash is stored, so this is the one time it is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, token_hash=_token_digest(token), name=name))
    session.flush()
    return token


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls the API: the token's user, the organisation they act for, and its kind (the role).

    The services take an actor for three facts only (who, for which organisation, in which role), so the
    API answers a token with these and does not load the user and organisation as ORM objects on every
    request. A view that needs the whole user asks for it (:func:`marketplace.api.auth.api_user_record`)."""

    id: int
    organisation_id: int
    role: str


_USERS, _ORGANISATIONS, _TOKENS = User.__table__, Organisation.__table__, ApiToken.__table__
#: The token's actor in one indexed lookup (the token row itself is not loaded), built once.
_ACTOR_FOR_TOKEN = (
    sa.select(_USERS.c.id, _USERS.c.organisation_id, _ORGANISATIONS.c.kind)
    .select_from(_TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
                 .join(_ORGANISATIONS, _ORGANISATIONS.c.id == _USERS.c.organisation_id))
    .where(_TOKENS.c.token_hash == sa.bindparam("token_digest"), _TOKENS.c.revoked_at.is_(None),
           _USERS.c.active.is_(True)))


def actor_for_token(session: so.Session, token: str) -> Actor | None:
    """The actor a bearer token stands for, or None (unknown, revoked, or its user disabled)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.connection().execute(_ACTOR_FOR_TOKEN, {"token_digest": _token_digest(token)}).first()
    return None if row is None else Actor(*row)


def set_locale(session: so.Session, user_id: int, locale: str) -> None:
    if locale not in ("zh_CN", "en"):
        raise ValidationFailed(_l("Unknown language."), "locale")
    session.get(User, user_id).locale = locale
    session.flush()
