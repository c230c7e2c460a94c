"""Organisations (sellers, buyers, the bureau), their users and API tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db

#: ``evaluator``: an accredited third-party body the bureau registers to evaluate events' neutrality.
#: ``operator``: the platform operator the bureau delegates its settlement work to (statements, payout
#: batches, the bank's sheet, payouts paid or failed, fapiao records); never registry or user administration.
ORGANISATION_KINDS = ("seller", "buyer", "bureau", "evaluator", "operator")


class Organisation(db.Model):
    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('seller', 'buyer', 'bureau', 'evaluator', 'operator')", name="kind"),
        sa.CheckConstraint("length(credit_code) = 18", name="credit_code_length"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: seller (village cooperative), buyer (agency, city, company) or bureau (operator/regulator)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    #: legal name in Chinese, as it appears on certificates
    name: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    #: optional English name
    name_en: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    #: unified social credit code (统一社会信用代码), 18 characters with a GB 32100 check digit
    credit_code: so.Mapped[str] = so.mapped_column(sa.String(18), unique=True)
    #: contact e-mail for notifications
    contact_email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    users: so.WriteOnlyMapped[User] = so.relationship(back_populates="organisation")

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.id == organisation_id

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name}>"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("locale IN ('zh_CN', 'en')", name="locale"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: the one organisation this person acts for
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    #: login name, stored lower-case
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    display_name: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    #: argon2id hash (PHC string)
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    #: preferred interface language
    locale: so.Mapped[str] = so.mapped_column(sa.String(8), default="zh_CN")
    #: disabled users cannot log in or use tokens
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: raised to end every session of the user (sign-out, password change, disabling, "sign out everywhere"):
    #: a session carries the version it was signed in at and is refused once it differs
    session_version: so.Mapped[int] = so.mapped_column(default=1, server_default="1")
    password_changed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: set by the bureau ("force a reset"): the password no longer signs in until reset by the e-mailed link
    must_reset_password: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    #: the TOTP secret, encrypted with a key derived from SECRET_KEY (never stored or logged in clear);
    #: set while enrolling, in force once two_step_enabled_at is set
    totp_secret_encrypted: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    two_step_enabled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: the last TOTP time step accepted, so one code cannot sign in twice
    totp_last_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)

    organisation: so.Mapped[Organisation] = so.relationship(back_populates="users")

    @property
    def role(self) -> str:
        """A user's role is the kind of organisation they act for."""
        return self.organisation.kind

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


TOKEN_SCOPES = ("read", "read_write")


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    __table_args__ = (sa.CheckConstraint("scope IN ('read', 'read_write')", name="scope"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    #: when it last authenticated a request (written at most once a minute)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: after this the token is refused; every token has one
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    #: "read" (GET, HEAD, OPTIONS only; writes are 403) or "read_write"
    scope: so.Mapped[str] = so.mapped_column(sa.String(16), default="read_write", server_default="read_write")

    user: so.Mapped[User] = so.relationship()


class RecoveryCode(db.Model):
    """Single-use codes that stand in for the TOTP code when the phone is lost."""

    __tablename__ = "recovery_codes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    #: SHA-256 of the code (the codes are random, 50 bits each: a fast hash suffices)
    code_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class PasswordReset(db.Model):
    """An e-mailed reset link: single use, expiring; only the token's hash is kept."""

    __tablename__ = "password_resets"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    #: SHA-256 of the token in the link
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    #: set when the link is used, or when a later reset or a password change makes it void
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


#: What the account audit log records.
ACCOUNT_EVENT_KINDS = (
    "sign_in", "sign_in_failed", "sign_out", "sign_out_everywhere", "password_changed",
    "password_reset_requested", "password_reset", "password_reset_forced", "disabled", "enabled",
    "token_created", "token_revoked", "token_refused_read_only", "two_step_enabled", "two_step_disabled",
    "two_step_failed", "recovery_code_used", "recovery_codes_renewed",
    # the platform operator role the bureau delegates (a user of an ``operator`` organisation) …
    "operator_granted", "operator_revoked",
    # … and the settlement work done by the bureau or an operator, on the actor's own log
    "statements_closed", "payout_batch_created", "payout_paid", "payout_failed", "fapiao_recorded",
)


class AccountEvent(db.Model):
    """The account audit log: append-only, shown to the user and to the bureau."""

    __tablename__ = "account_events"
    __table_args__ = (sa.Index("ix_account_events_user_id_created_at", "user_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: whose account
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    #: who did it when not the user (bureau staff disabling, forcing a reset)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    #: one of ACCOUNT_EVENT_KINDS
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    #: the client address as the trusted proxies report it
    address: so.Mapped[str | None] = so.mapped_column(sa.String(45))
    #: a short fact (the token's name); never a secret
    detail: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
