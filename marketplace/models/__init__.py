"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from marketplace.models.certificate import Certificate, CertificateCounter, SigningKey
from marketplace.models.organisation import ORGANISATION_KINDS, ApiToken, Organisation, User
from marketplace.models.outbox import OutboxMessage
from marketplace.models.probe import QueueProbe

__all__ = ["ORGANISATION_KINDS", "ApiToken", "Certificate", "CertificateCounter", "Organisation", "OutboxMessage",
           "QueueProbe", "SigningKey", "User"]
