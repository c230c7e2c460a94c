"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from marketplace.models.footprint import CATEGORIES, ActivityLine, EmissionFactor, Event, ReductionMeasure
from marketplace.models.organisation import ORGANISATION_KINDS, ApiToken, Organisation, User
from marketplace.models.outbox import OutboxMessage
from marketplace.models.probe import QueueProbe

__all__ = ["ORGANISATION_KINDS", "ApiToken", "Organisation", "OutboxMessage", "QueueProbe", "User"]
__all__ += ["CATEGORIES", "ActivityLine", "EmissionFactor", "Event", "ReductionMeasure"]
