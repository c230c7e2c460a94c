"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_babel import gettext as _
from werkzeug.exceptions import Forbidden, Unauthorized

from marketplace.extensions import db
from marketplace.services.accounts import user_for_token

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
            user = user_for_token(db.session, _bearer_token() or "")
            if user is None:
                exc = Unauthorized()
                exc.tanhui_message = _("Send a valid API token: Authorization: Bearer <token>.")
                raise exc
            if roles and user.role not in roles:
                exc = Forbidden()
                exc.tanhui_message = _("This call is for %(roles)s accounts.", roles=", ".join(roles))
                raise exc
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator


def api_user():
    return g.api_user
