"""Organisations, users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from marketplace.accounts.audit import record_event
from marketplace.accounts.credit_code import is_valid_credit_code, normalise_credit_code
from marketplace.accounts.models import (
    ORGANISATION_KINDS,
    TOKEN_SCOPES,
    ApiToken,
    Organisation,
    PasswordReset,
    User,
)
from marketplace.accounts.two_step import disable_two_step
from marketplace.core.db import utcnow
from marketplace.core.errors import Conflict, Forbidden, NotFound, ValidationFailed

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


class PasswordResetRequired(Forbidden):
    """The bureau asked this user to choose a new password; the old one no longer signs in."""

    code = "password_reset_required"


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
        raise ValidationFailed(_l("Choose the kind of organisation."), "kind")
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
                display_name: str = "", locale: str = "zh_CN", actor_id: int | None = None) -> User:
    """A new user of the organisation. A user of an ``operator`` organisation holds the platform operator role
    the bureau delegates: its audit log records the grant and who made it (``actor_id``; none from the
    command line)."""
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
    if user.role == "operator":
        record_event(session, user.id, "operator_granted", actor_id=actor_id,
                     detail="" if actor_id else "command line")
    return user


def authenticate(session: so.Session, email: str, password: str, *, address: str | None = None) -> User | None:
    """The active user with these credentials, or None. Re-hashes when parameters have changed.

    A wrong password for a known account is written to its audit log; a user the bureau asked to reset
    their password is refused until they have (PasswordResetRequired, raised after the audit line is added: the
    caller commits it). The caller decides whether
    the user is signed in now or after the second step (:func:`complete_sign_in`)."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        check_password(_DUMMY_HASH, password or "")
        return None
    user = session.scalar(sa.select(User).where(User.email == email).options(so.joinedload(User.organisation)))
    if user is None or not user.active:
        check_password(_DUMMY_HASH, password or "")
        if user is not None:
            record_event(session, user.id, "sign_in_failed", address=address, detail="disabled")
        return None
    if not check_password(user.password_hash, password or ""):
        record_event(session, user.id, "sign_in_failed", address=address, detail="password")
        return None
    if user.must_reset_password:
        # Said only to someone who knows the password: it reveals nothing they did not know.
        record_event(session, user.id, "sign_in_failed", address=address, detail="must_reset_password")
        raise PasswordResetRequired(_l("Your password must be changed before you sign in. Use the link we e-mailed "
                                       "you, or ask for a new one."), "password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def complete_sign_in(session: so.Session, user: User, *, address: str | None = None, detail: str = "") -> None:
    """The user is signed in (after the password, and the second step when they have one)."""
    user.last_login_at = utcnow()
    record_event(session, user.id, "sign_in", address=address, detail=detail)
    session.flush()


def end_all_sessions(session: so.Session, user_id: int, *, kind: str | None = None, actor_id: int | None = None,
                     address: str | None = None) -> int:
    """Every session of the user ends at its next request (the session version moves on). Returns the new
    version, so the caller can keep its own session alive when it means to."""
    session.execute(sa.update(User).where(User.id == user_id).values(session_version=User.session_version + 1),
                    execution_options={"synchronize_session": False})
    if kind:
        record_event(session, user_id, kind, actor_id=actor_id, address=address)
    session.flush()
    return session.scalar(sa.select(User.session_version).where(User.id == user_id))


def _check_new_password(password: str, field: str = "new_password") -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(_l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
                               field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(_l("The password may have at most %(n)d characters.", n=MAX_PASSWORD_LENGTH), field)


def _set_password(session: so.Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.must_reset_password = False
    # A link mailed before the change must not undo it.
    session.execute(sa.update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=utcnow()), execution_options={"synchronize_session": False})


def change_password(session: so.Session, user_id: int, current: str, new: str, *,
                    address: str | None = None) -> int:
    """The user's new password, the current one required. Ends every other session; returns the new session
    version for the caller's own session."""
    user = session.get(User, user_id)
    if user is None or not check_password(user.password_hash, current or ""):
        raise ValidationFailed(_l("The current password is wrong."), "current_password")
    _check_new_password(new)
    if check_password(user.password_hash, new):
        raise ValidationFailed(_l("Choose a password different from the current one."), "new_password")
    _set_password(session, user, new)
    return end_all_sessions(session, user_id, kind="password_changed", address=address)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(session: so.Session, email: str, *, minutes: int, actor_id: int | None = None,
                           address: str | None = None) -> tuple[User, str] | None:
    """A new single-use reset link for the (active) account with this e-mail, or None. The caller mails the
    token and answers the same whether or not the account exists."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        return None
    user = session.scalar(sa.select(User).where(User.email == email))
    if user is None or not user.active:
        return None
    now = utcnow()
    # One link at a time: a new request voids the older links.
    session.execute(sa.update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=now), execution_options={"synchronize_session": False})
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_token_digest(token), created_at=now,
                              expires_at=now + timedelta(minutes=minutes)))
    record_event(session, user.id, "password_reset_requested", actor_id=actor_id, address=address)
    session.flush()
    return user, token


def _live_reset(session: so.Session, token: str, *, for_update: bool = False) -> PasswordReset | None:
    if not token or len(token) > 100:
        return None
    stmt = sa.select(PasswordReset).where(PasswordReset.token_hash == _token_digest(token),
                                          PasswordReset.used_at.is_(None), PasswordReset.expires_at > utcnow())
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def reset_link_is_valid(session: so.Session, token: str) -> bool:
    return _live_reset(session, token) is not None


def reset_password(session: so.Session, token: str, new: str, *, address: str | None = None) -> User:
    """Set a new password through a mailed link: once, before it expires. Ends every session of the user."""
    reset = _live_reset(session, token, for_update=True)
    if reset is None:
        raise NotFound(_l("This reset link has expired or has already been used. Ask for a new one."))
    _check_new_password(new)
    # Claim the link first, so two submissions of one link cannot both set a password.
    claimed = session.execute(sa.update(PasswordReset).where(PasswordReset.id == reset.id,
                                                             PasswordReset.used_at.is_(None))
                              .values(used_at=utcnow()), execution_options={"synchronize_session": False})
    if claimed.rowcount != 1:
        raise NotFound(_l("This reset link has expired or has already been used. Ask for a new one."))
    user = session.get(User, reset.user_id)
    _set_password(session, user, new)
    end_all_sessions(session, user.id, kind="password_reset", address=address)
    return user


def set_user_active(session: so.Session, actor, user_id: int, active: bool, *, address: str | None = None) -> User:
    """The bureau disables or re-enables a user; disabling ends their sessions (tokens stop working too)."""
    require_bureau(actor)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_l("Not found."))
    if user.id == actor.id and not active:
        raise Conflict(_l("You cannot disable your own account."))
    if user.active == active:
        return user
    user.active = active
    session.flush()
    end_all_sessions(session, user.id, kind="enabled" if active else "disabled", actor_id=actor.id, address=address)
    if user.role == "operator":
        # The operator role is held by an active user of an operator organisation: enabling grants it again,
        # disabling revokes it.
        record_event(session, user.id, "operator_granted" if active else "operator_revoked", actor_id=actor.id,
                     address=address)
    return user


def reset_two_step(session: so.Session, actor, user_id: int, *, address: str | None = None) -> User:
    """The bureau turns a user's second step off (lost phone and recovery codes) and ends their sessions; a user
    whose role requires it enrols again at the next sign-in."""
    require_bureau(actor)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_l("Not found."))
    disable_two_step(session, user.id, actor_id=actor.id, address=address)
    end_all_sessions(session, user.id)
    return user


def force_password_reset(session: so.Session, actor, user_id: int, *, minutes: int,
                         address: str | None = None) -> tuple[User, str]:
    """The bureau makes a user choose a new password: the old one stops signing in, their sessions end, and a
    reset link is made for the caller to mail."""
    require_bureau(actor)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound(_l("Not found."))
    user.must_reset_password = True
    session.flush()
    end_all_sessions(session, user.id, kind="password_reset_forced", actor_id=actor.id, address=address)
    return request_password_reset(session, user.email, minutes=minutes, actor_id=actor.id, address=address)


#: How long a new token lives when nobody says (and the choices the account page offers).
DEFAULT_TOKEN_DAYS = 90
TOKEN_DAYS_CHOICES = (7, 30, 90, 365)


def create_api_token(session: so.Session, user_id: int, name: str = "", *, scope: str = "read_write",
                     days: int = DEFAULT_TOKEN_DAYS, address: str | None = None) -> str:
    """A new bearer token for the user; only its hash is stored, so this is the one time it is seen."""
    if scope not in TOKEN_SCOPES:
        raise ValidationFailed(_l("Choose read-only or read and write."), "scope")
    if not 1 <= days <= 366:
        raise ValidationFailed(_l("A token lives between 1 and 366 days."), "days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, token_hash=_token_digest(token), name=name, scope=scope,
                         expires_at=utcnow() + timedelta(days=days)))
    record_event(session, user_id, "token_created", address=address, detail=f"{name} ({scope}, {days} d)"[:200])
    session.flush()
    return token


def revoke_api_token(session: so.Session, user_id: int, token_id: int, *, address: str | None = None) -> None:
    """Tokens belong to one person, not to the organisation: only their owner may revoke them."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(_l("Not found."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(session, user_id, "token_revoked", address=address, detail=token.name)
        session.flush()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls the API: the token's user, the organisation they act for, and its kind (the role).

    The services take an actor for three facts only (who, for which organisation, in which role), so the
    API answers a token with these and does not load the user and organisation as ORM objects on every
    request. A view that needs the whole user asks for it (:func:`marketplace.api.auth.api_user_record`)."""

    id: int
    organisation_id: int
    role: str
    #: the token's scope: "read" or "read_write"
    scope: str = "read_write"


_USERS, _ORGANISATIONS, _TOKENS = User.__table__, Organisation.__table__, ApiToken.__table__
#: The token's actor in one indexed lookup (the token row itself is not loaded as an object), built once.
_ACTOR_FOR_TOKEN = (
    sa.select(_USERS.c.id, _USERS.c.organisation_id, _ORGANISATIONS.c.kind, _TOKENS.c.scope, _TOKENS.c.id,
              _TOKENS.c.last_used_at)
    .select_from(_TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
                 .join(_ORGANISATIONS, _ORGANISATIONS.c.id == _USERS.c.organisation_id))
    .where(_TOKENS.c.token_hash == sa.bindparam("token_digest"), _TOKENS.c.revoked_at.is_(None),
           _TOKENS.c.expires_at > sa.bindparam("now"), _USERS.c.active.is_(True)))
#: last_used_at is written at most this often, so a busy client does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def resolve_token(session: so.Session, token: str) -> tuple[Actor | None, bool]:
    """The actor a bearer token stands for, or None (unknown, revoked, expired, or its user disabled), and
    whether its last_used_at was just written (to the minute; the caller commits that)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None, False
    now = utcnow()
    connection = session.connection()
    row = connection.execute(_ACTOR_FOR_TOKEN, {"token_digest": _token_digest(token), "now": now}).first()
    if row is None:
        return None, False
    user_id, organisation_id, role, scope, token_id, last_used_at = row
    touched = last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION
    if touched:
        connection.execute(sa.update(_TOKENS).where(_TOKENS.c.id == token_id).values(last_used_at=now))
    return Actor(user_id, organisation_id, role, scope), touched


def actor_for_token(session: so.Session, token: str) -> Actor | None:
    """The actor a bearer token stands for, or None."""
    return resolve_token(session, token)[0]


def set_locale(session: so.Session, user_id: int, locale: str) -> None:
    if locale not in ("zh_CN", "en"):
        raise ValidationFailed(_l("Unknown language."), "locale")
    session.get(User, user_id).locale = locale
    session.flush()
