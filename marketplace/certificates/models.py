"""Carbon-neutrality certificates, the Ed25519 keys that sign them, and the per-year number counter."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db


class SigningKey(db.Model):
    """The public half of every key that ever signed a certificate. Rows are never deleted, so a
    certificate signed before a rotation still verifies after it."""

    __tablename__ = "signing_keys"
    __table_args__ = (sa.CheckConstraint("algorithm = 'Ed25519'", name="algorithm"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: first 16 hex digits of the SHA-256 of the raw 32-byte public key; printed on certificates
    key_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    algorithm: so.Mapped[str] = so.mapped_column(sa.String(16), default="Ed25519")
    #: SubjectPublicKeyInfo PEM, as published at /api/v1/public/keys
    public_key_pem: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    #: set when the key was rotated out: it signs nothing new but still verifies what it signed
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<SigningKey {self.key_id}{' retired' if self.retired_at else ''}>"


class CertificateCounter(db.Model):
    """The last certificate number handed out in a year (see services.certificates.next_certificate_number)."""

    __tablename__ = "certificate_counters"
    __table_args__ = (sa.CheckConstraint("last_number >= 1", name="last_number_positive"),)

    #: calendar year in the platform's time zone (Asia/Shanghai)
    year: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    last_number: so.Mapped[int] = so.mapped_column(sa.Integer)


class Certificate(db.Model):
    __tablename__ = "certificates"
    __table_args__ = (
        sa.CheckConstraint("quantity_units > 0", name="quantity_positive"),
        # A revocation always says why and who.
        sa.CheckConstraint(
            "(revoked_at IS NULL AND revocation_reason IS NULL AND revoked_by_id IS NULL) OR "
            "(revoked_at IS NOT NULL AND revocation_reason IS NOT NULL AND revoked_by_id IS NOT NULL)",
            name="revocation_complete"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: public number, e.g. TH-2026-000123 (a counter per year, gapless)
    number: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    #: the order whose retirement this certifies; one certificate per order
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("orders.id"), unique=True)
    #: the buyer organisation that may download the PDF
    buyer_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    #: the name the credits were retired for (may differ from the buyer)
    beneficiary: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: retired quantity in units (1 unit = 0.0001 tCO2e)
    quantity_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: the signed facts, exactly as signed: services.signing.canonical_json(facts)
    facts_json: so.Mapped[str] = so.mapped_column(sa.Text)
    #: Ed25519 signature over facts_json's UTF-8 bytes, standard base64
    signature: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: the signing key (also inside the signed facts, so it cannot be swapped)
    key_id: so.Mapped[str] = so.mapped_column(sa.ForeignKey("signing_keys.key_id"), index=True)
    #: the PDF's path relative to the instance folder; regenerated from the facts if lost
    pdf_path: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    #: the bureau user who revoked it
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    revocation_reason: so.Mapped[str | None] = so.mapped_column(sa.Text, info={"max_length": 500})

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.buyer_organisation_id == organisation_id

    def __repr__(self) -> str:
        return f"<Certificate {self.number} order={self.order_id}>"
