"""Organisations (sellers, buyers, the bureau), their users and API tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db

#: ``evaluator``: an accredited third-party body the bureau registers to evaluate events' neutrality.
ORGANISATION_KINDS = ("seller", "buyer", "bureau", "evaluator")


class Organisation(db.Model):
    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('seller', 'buyer', 'bureau', 'evaluator')", name="kind"),
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


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    #: SHA-256 of the token; the token itself is shown once and never stored
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    user: so.Mapped[User] = so.relationship()
