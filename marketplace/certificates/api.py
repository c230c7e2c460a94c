"""Certificates in the API: the public record and signing keys for anyone, the full record for its owner."""

from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_babel import gettext as _

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.certificates import public_retirements
from marketplace.certificates.models import Certificate, SigningKey
from marketplace.certificates.pdf import verify_url_for
from marketplace.certificates.service import find_certificate, verify_certificate_record
from marketplace.core.access import get_scoped
from marketplace.core.api import Blueprint
from marketplace.core.errors import NotFound
from marketplace.extensions import db

blp = Blueprint("api_certificates", __name__, url_prefix="/api/v1", description="Certificates and signing keys")


class SigningKeySchema(ma.Schema):
    key_id = ma.fields.String(metadata={"description": "first 16 hex digits of SHA-256 of the raw public key"})
    algorithm = ma.fields.String(metadata={"example": "Ed25519"})
    public_key_pem = ma.fields.String(metadata={"description": "SubjectPublicKeyInfo PEM"})
    created_at = ma.fields.DateTime()
    retired_at = ma.fields.DateTime(allow_none=True, metadata={"description": "no longer signs; still verifies"})


class SigningKeysSchema(ma.Schema):
    keys = ma.fields.List(ma.fields.Nested(SigningKeySchema))


class PublicCertificateSchema(ma.Schema):
    number = ma.fields.String()
    valid = ma.fields.Boolean(metadata={"description": "authentic and not revoked"})
    signature_valid = ma.fields.Boolean()
    revoked = ma.fields.Boolean()
    revoked_at = ma.fields.String(allow_none=True)
    revocation_reason = ma.fields.String(allow_none=True)
    reason = ma.fields.String(metadata={"description": "the verdict in one sentence"})
    facts = ma.fields.Dict(metadata={"description": "the signed facts (format tanhui.certificate/1)"})
    signature = ma.fields.String(metadata={"description": "Ed25519 over the canonical JSON of facts, base64"})
    key_id = ma.fields.String()
    algorithm = ma.fields.String()
    verify_url = ma.fields.String()
    # The retirement's attribution, as the public registry shows it: the signed facts, or for a certificate
    # signed before its facts carried one of them, the order's value.
    purpose = ma.fields.String(allow_none=True, metadata={"description": "what the retirement is for"})
    event = ma.fields.String(allow_none=True, metadata={"description": "the neutralised event's name, if any"})
    event_id = ma.fields.Integer(allow_none=True, metadata={"description": "the event's id, if any"})
    period_start = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-10-30", "description": "first day of the period the retirement covers"})
    period_end = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-11-01", "description": "last day of the period covered (inclusive)"})


class OwnerCertificateSchema(PublicCertificateSchema):
    order_id = ma.fields.Integer()
    pdf_url = ma.fields.String(metadata={
        "description": "the certificate's PDF: GET it with the same Authorization: Bearer header (or a web sign-in)"})


def _public(number: str) -> dict:
    result = verify_certificate_record(db.session, number)
    if not result["found"]:
        raise NotFound(_("No certificate has this number."))
    certificate = find_certificate(db.session, result["number"])
    return {**result, "reason": str(result["reason"]), "verify_url": verify_url_for(result["number"]),
            **public_retirements.certificate_attribution(db.session, certificate)}


@blp.route("/public/keys")
@blp.response(200, SigningKeysSchema)
def public_keys():
    """Every key that ever signed a certificate, retired ones too, oldest first."""
    keys = db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at, SigningKey.id)).all()
    return {"keys": keys}


@blp.route("/public/certificates/<number>")
@blp.response(200, PublicCertificateSchema)
def public_certificate(number: str):
    """The public record of a certificate: signed facts, signature, validity and revocation."""
    return _public(number)


@blp.route("/certificates/<number>")
@blp.doc(security=BEARER)
@blp.response(200, OwnerCertificateSchema)
@token_required()
def certificate(number: str):
    """A certificate of the caller's organisation (the bureau sees all), with its PDF's address."""
    found = find_certificate(db.session, number)
    if found is None:
        raise NotFound(_("No certificate has this number."))
    mine = get_scoped(db.session, Certificate, found.id, api_user())
    return {**_public(mine.number), "order_id": mine.order_id,
            "pdf_url": url_for("certificates.download_pdf", number=mine.number, _external=True)}
