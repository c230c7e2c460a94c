"""Typed domain errors. Views and the API map them to messages and status codes in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. ``message`` is already translated (or a lazy string)."""

    status = 400
    code = "bad_request"

    def __init__(self, message, field: str | None = None, *, code: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class InsufficientCredits(Conflict):
    code = "insufficient_credits"
