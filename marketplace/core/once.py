"""A form that creates or moves something acts once, however often it is sent.

A double click, a resend after a slow answer, or the browser's "resubmit" after going back would
otherwise register two projects, list the same units twice or cancel buffer units twice. Each guarded
form carries a random ``submission_key`` drawn with the page (``{{ submission_key() }}``); the view,
wrapped in :func:`once`, writes that key in the same transaction as its change (unique per user), so

- the same form sent again after the first finished is answered with the page the first one led to,
  and nothing is done again;
- the same form sent twice at once: the second insert waits on the unique index until the first commits,
  fails, and is answered the same way;
- a submission that was refused (a form error; the transaction rolled back) leaves no key behind, and the
  corrected form, drawn again with a new key, goes through.

The flow is :func:`marketplace.core.idempotency.act_once`, shared with the API's create calls and orders.

A request without a well-formed key (an old page, a script) is not guarded and acts as before.
"""

from __future__ import annotations

import re
import uuid
from functools import wraps

import sqlalchemy as sa
from flask import flash, make_response, redirect, request
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from marketplace.core import idempotency
from marketplace.core.models import IdempotencyKey
from marketplace.core.navigation import home_for
from marketplace.extensions import db

KEY_FIELD = "submission_key"
_KEY = re.compile(r"[0-9a-f]{32}")
_REDIRECTS = (301, 302, 303)


def submission_key() -> Markup:
    """The hidden field of a guarded form: a new random key each time the page is drawn."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (KEY_FIELD, uuid.uuid4().hex)


def _answer_again(earlier: IdempotencyKey):
    flash(_("This form had already been sent; it was not done a second time."), "info")
    return redirect(earlier.location or home_for(current_user), 303)


def once(view):
    """Guard a POST view that commits a change and redirects (see the module's description)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.form.get(KEY_FIELD, "")
        if request.method != "POST" or not _KEY.fullmatch(key) or not current_user.is_authenticated:
            return view(*args, **kwargs)
        outcome = idempotency.act_once(
            db.session, earlier=lambda: idempotency.find_key(db.session, current_user.id, key),
            claim=lambda: idempotency.claim_key(db.session, user_id=current_user.id, key=key,
                                                endpoint=request.endpoint or ""))
        if outcome.repeated:
            return _answer_again(outcome.earlier)
        response = make_response(view(*args, **kwargs))
        if response.status_code in _REDIRECTS and response.location:
            # The change committed with the key; remember where it led, for a repeat of the same form.
            db.session.execute(sa.update(IdempotencyKey)
                               .where(IdempotencyKey.user_id == current_user.id, IdempotencyKey.key == key)
                               .values(location=response.location[:500]))
            db.session.commit()
        return response

    return wrapped

