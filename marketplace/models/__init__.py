"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from marketplace.models.certificate import Certificate, CertificateCounter, SigningKey
from marketplace.models.organisation import ORGANISATION_KINDS, ApiToken, Organisation, User
from marketplace.models.outbox import OutboxMessage
from marketplace.models.probe import QueueProbe

__all__ = ["ORGANISATION_KINDS", "ApiToken", "Certificate", "CertificateCounter", "Organisation", "OutboxMessage",
           "QueueProbe", "SigningKey", "User"]
from marketplace.models.registry import (  # noqa: E402
    BufferLoss,
    CreditBatch,
    LedgerBalance,
    LedgerEntry,
    Listing,
    Project,
    ProjectDocument,
    ProjectTransition,
    Region,
    SerialRange,
)

__all__ += ["BufferLoss", "CreditBatch", "LedgerBalance", "LedgerEntry", "Listing", "Project", "ProjectDocument",
            "ProjectTransition", "Region", "SerialRange"]
from marketplace.models.order import Order, OrderLine, OrderTransition  # noqa: E402

__all__ += ["Order", "OrderLine", "OrderTransition"]
