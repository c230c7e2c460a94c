"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from marketplace.models.certificate import Certificate, CertificateCounter, SigningKey
from marketplace.models.footprint import CATEGORIES, ActivityLine, EmissionFactor, Event, ReductionMeasure
from marketplace.models.idempotency import IdempotencyKey
from marketplace.models.order import Order, OrderLine, OrderTransition
from marketplace.models.organisation import ORGANISATION_KINDS, ApiToken, Organisation, User
from marketplace.models.outbox import DeadLetter, OutboxMessage
from marketplace.models.payment import PaymentAttempt, StripeEvent
from marketplace.models.probe import QueueProbe
from marketplace.models.registry import (
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
from marketplace.models.stats import RetirementRollup, RetirementStat, RetirementTotal

__all__ = [
    "CATEGORIES", "ORGANISATION_KINDS", "ActivityLine", "ApiToken", "BufferLoss", "Certificate", "CertificateCounter", "CreditBatch", "DeadLetter", "EmissionFactor", "Event", "IdempotencyKey",
    "LedgerBalance", "LedgerEntry", "Listing", "Order", "OrderLine", "OrderTransition", "Organisation",
    "OutboxMessage", "PaymentAttempt", "Project", "ProjectDocument", "ProjectTransition", "QueueProbe", "ReductionMeasure", "Region", "RetirementRollup", "RetirementStat", "RetirementTotal",
    "SerialRange", "SigningKey", "StripeEvent", "User",
]
