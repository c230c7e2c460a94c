"""``Idempotency-Key`` on the API's create calls: a request retried with its key creates nothing twice.

A client that did not get an answer (a timeout, a dropped connection) sends the same request again with
the same key. The first request wrote the key (unique per user, in ``idempotency_keys``) in the same
transaction as the object it created, with a digest of the request; a repeat finds it and answers with
that object (200) instead of creating another. The same key with a different request is refused (409
``idempotency_key_reused``). Two requests with one key at the same moment: the second waits on the
key's unique index until the first commits, then answers like a repeat. A request that was refused (a
validation error; the transaction rolled back) leaves no key behind, so the corrected request can reuse it.

The flow is :func:`marketplace.core.idempotency.act_once`, shared with the forms and orders. Orders keep
their key on the order row itself (``marketplace.orders.api``); both share the header's parsing and its
OpenAPI description here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from flask import request
from flask_babel import lazy_gettext as _l

from marketplace.core import idempotency
from marketplace.core.access import api_actor, get_scoped
from marketplace.core.db import max_length
from marketplace.core.errors import Conflict, ValidationFailed
from marketplace.core.models import IdempotencyKey
from marketplace.extensions import db

M = TypeVar("M")
HEADER = "Idempotency-Key"
#: The longest key kept (orders keep theirs in a column of the same length).
MAX_LENGTH = max_length(IdempotencyKey.key)

#: The header as the OpenAPI document describes it, for every call that honours it.
PARAMETER = {"name": HEADER, "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": MAX_LENGTH},
             "description": "repeat a request safely: the same key and body answer with what the first request "
                            "created (200) instead of creating it again; the same key with another body is "
                            "refused (409 idempotency_key_reused)"}


def request_key() -> str | None:
    """The request's Idempotency-Key, or None; too long a key is a 422."""
    key = (request.headers.get(HEADER) or "").strip() or None
    if key is not None and len(key) > MAX_LENGTH:
        raise ValidationFailed(_l("The Idempotency-Key is too long (at most 200 characters)."), HEADER)
    return key


def fingerprint(payload: dict) -> str:
    """A stable digest of a request, to tell a repeated request from a different one."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def key_reused() -> Conflict:
    return Conflict(_l("This Idempotency-Key was used for a different request."), HEADER,
                    code="idempotency_key_reused")


def create_once(model: type[M], payload: dict, create: Callable[[], M]) -> tuple[M, int]:
    """Run ``create`` (it writes and flushes) and commit, once per Idempotency-Key.

    Returns the new object and 201; a repeat of the same request with the same key returns the object the
    first one created (as it is now, looked up through the caller's scope) and 200. Without a key the
    call simply creates. ``payload`` is the request as parsed, before ``create`` touches it."""
    key = request_key()
    if key is None:
        created = create()
        db.session.commit()
        return created, 201
    actor = api_actor()
    digest = fingerprint({"endpoint": request.endpoint, "body": payload})
    outcome = idempotency.act_once(
        db.session, earlier=lambda: idempotency.find_key(db.session, actor.id, key),
        claim=lambda: idempotency.claim_key(db.session, user_id=actor.id, key=key, endpoint=request.endpoint or "",
                                            fingerprint=digest))
    if outcome.repeated:
        return _replay(model, outcome.earlier, digest), 200
    created = create()
    outcome.done.object_id = created.id
    db.session.commit()
    return created, 201


def _replay(model: type[M], earlier: IdempotencyKey, digest: str) -> M:
    if earlier.fingerprint != digest or earlier.object_id is None:
        raise key_reused()
    return get_scoped(db.session, model, earlier.object_id, api_actor())
