"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

import sqlalchemy.orm as so
from flask import request
from flask_babel import gettext as _

from marketplace.accounts.models import User
from marketplace.accounts.service import Actor, actor_for_token
from marketplace.core.access import api_actor, set_api_actor
from marketplace.core.http_errors import ExplainedForbidden, ExplainedUnauthorized
from marketplace.extensions import db

#: OpenAPI security requirement for documented endpoints.
BEARER = [{"bearerAuth": []}]


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
            actor = actor_for_token(db.session, _bearer_token() or "")
            if actor is None:
                raise ExplainedUnauthorized(_("Send a valid API token: Authorization: Bearer <token>."))
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
