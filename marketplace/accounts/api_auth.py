"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

import sqlalchemy.orm as so
from flask import request
from flask_babel import gettext as _

from marketplace.accounts.audit import record_event
from marketplace.accounts.models import User
from marketplace.accounts.service import Actor, resolve_token
from marketplace.core.access import api_actor, set_api_actor
from marketplace.core.http_errors import ExplainedForbidden, ExplainedUnauthorized
from marketplace.extensions import db

#: OpenAPI security requirement for documented endpoints.
BEARER = [{"bearerAuth": []}]
#: All a read-only token may do.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_required(*roles: str):
    """The view needs a valid token; with roles, the token's user must have one of them."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            actor, touched = resolve_token(db.session, _bearer_token() or "")
            if touched:
                db.session.commit()  # last_used_at, whatever the view does next
            if actor is None:
                raise ExplainedUnauthorized(_("Send a valid API token: Authorization: Bearer <token>."))
            if actor.scope != "read_write" and request.method not in READ_METHODS:
                record_event(db.session, actor.id, "token_refused_read_only", address=request.remote_addr,
                             detail=f"{request.method} {request.path}"[:200])
                db.session.commit()
                raise ExplainedForbidden(_("This token is read-only; changes need a read-and-write token."))
            if roles and actor.role not in roles:
                raise ExplainedForbidden(_("This call is for %(roles)s accounts.", roles=", ".join(roles)))
            set_api_actor(actor)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def api_user() -> Actor:
    """The caller: user id, organisation id and role (what the services need to decide and scope)."""
    return api_actor()


def api_user_record() -> User:
    """The caller's whole user row (with the organisation), for views that show it."""
    return db.session.get(User, api_actor().id, options=[so.joinedload(User.organisation)])
