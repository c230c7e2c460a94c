"""Stripe webhooks: verify the ``Stripe-Signature`` header, record each event once, dispatch it.

Stripe signs ``f"{t}.{raw body}"`` with HMAC-SHA256 under the endpoint's secret and sends
``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…]``. Several ``v1`` appear while a secret is
being rolled; several secrets may be configured here (STRIPE_WEBHOOK_SECRET, comma-separated) for
the same reason. Any ``v1`` matching any secret passes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import sqlalchemy.orm as so

from marketplace.core.db import insert
from marketplace.orders.payment_models import StripeEvent

log = logging.getLogger(__name__)

#: Seconds a signed timestamp may differ from our clock, either way: Stripe's own default. Older
#: deliveries are refused so a captured request cannot be replayed later.
DEFAULT_TOLERANCE = 300

EventHandler = Callable[[so.Session, dict], None]
_handlers: dict[str, list[EventHandler]] = {}


class SignatureError(Exception):
    """The request is not a genuine, fresh Stripe delivery. ``reason`` says which check failed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def webhook_secrets(configured: str | None) -> list[str]:
    """STRIPE_WEBHOOK_SECRET may list several secrets (comma-separated) while one is rolled over."""
    return [s.strip() for s in (configured or "").split(",") if s.strip()]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The v1 signature Stripe computes: hex HMAC-SHA256 of ``"{t}.{payload}"``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secrets: list[str], timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` value with one ``v1`` per secret (tests and local tools)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={timestamp}", *(f"v1={sign(payload, s, timestamp)}" for s in secrets)])


def _parse_header(header: str) -> tuple[str, list[str]]:
    timestamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed_header")
        if key == "t":
            if timestamp is not None:
                raise SignatureError("malformed_header")
            timestamp = value
        elif key == "v1":
            signatures.append(value)
        # v0 and unknown schemes are ignored, as Stripe's own libraries do
    if timestamp is None or not timestamp.isdigit():
        raise SignatureError("malformed_header")
    if not signatures:
        raise SignatureError("no_v1_signature")
    return timestamp, signatures


def verify_signature(payload: bytes, header: str | None, secrets: list[str], tolerance: int = DEFAULT_TOLERANCE,
                     now: int | None = None) -> dict:
    """Check a delivery and return the event it carries, or raise ``SignatureError(reason)``.

    Reasons: ``no_secret_configured``, ``missing_header``, ``malformed_header``, ``no_v1_signature``,
    ``timestamp_out_of_tolerance``, ``no_matching_signature``, ``invalid_payload``.
    """
    if not secrets:
        raise SignatureError("no_secret_configured")
    if not header:
        raise SignatureError("missing_header")
    timestamp, signatures = _parse_header(header)
    now = int(time.time()) if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError("timestamp_out_of_tolerance")
    signed = timestamp.encode() + b"." + payload
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        for candidate in signatures:
            # Compare every pair, in constant time, without stopping early.
            matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    if not matched:
        raise SignatureError("no_matching_signature")
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError("invalid_payload") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise SignatureError("invalid_payload")
    return event


def record_event_once(session: so.Session, event: dict) -> bool:
    """Insert the event's id; True the first time, False if it was recorded before.

    ``INSERT … ON CONFLICT DO NOTHING`` on the unique event id: when the same event arrives twice
    at once, PostgreSQL makes the second insert wait for the first transaction and then do nothing
    (or insert, if the first rolled back). Record the event in the same transaction as the
    handler's change, so a failed handler leaves the event unrecorded for Stripe's redelivery.
    """
    values = {"event_id": event["id"], "type": event["type"][:100], "payload": event}
    stmt = insert(session, StripeEvent).values(**values).on_conflict_do_nothing(index_elements=["event_id"])
    inserted = session.execute(stmt.returning(StripeEvent.id)).scalar_one_or_none()
    return inserted is not None


# -- handler registry ----------------------------------------------------------------------------

def register_handler(event_type: str, fn: EventHandler | None = None):
    """Call ``fn(session, event)`` for every new event of this type (usable as a decorator).

    Handlers run inside the webhook's transaction and must only move things forward: an event may
    arrive late, out of order, or after a periodic re-read already applied it.
    """

    def add(handler: EventHandler) -> EventHandler:
        if handler not in _handlers.setdefault(event_type, []):
            _handlers[event_type].append(handler)
        return handler

    return add(fn) if fn is not None else add


def unregister_handler(event_type: str, fn: EventHandler) -> None:
    if fn in _handlers.get(event_type, []):
        _handlers[event_type].remove(fn)


def handlers_for(event_type: str) -> list[EventHandler]:
    return list(_handlers.get(event_type, ()))


def dispatch(session: so.Session, event: dict) -> int:
    """Run the handlers of a newly recorded event. Returns how many ran."""
    handlers = handlers_for(event["type"])
    for handler in handlers:
        handler(session, event)
    if not handlers:
        log.debug("stripe event %s (%s): no handler", event["id"], event["type"])
    return len(handlers)
