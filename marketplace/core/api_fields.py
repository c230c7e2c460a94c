"""Schema fields the API shares: bounded integers, so that no number reaches the database that it cannot
hold (an id beyond 2**31-1 is a 422 naming the field, not a database error)."""

from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from marketplace.core.ids import MAX_ID


def Id(**kwargs) -> ma.fields.Integer:  # noqa: N802 — used like the field classes it stands for
    """A row id in a body or a query string: a whole number from 1 to 2**31-1."""
    return ma.fields.Integer(validate=ma.validate.Range(
        min=1, max=MAX_ID, error=_l("Not a valid id (a whole number from 1 to 2147483647).")), **kwargs)


def Year(**kwargs) -> ma.fields.Integer:  # noqa: N802
    """A calendar year, such as a vintage."""
    return ma.fields.Integer(validate=ma.validate.Range(min=1, max=9999, error=_l("Give a year, such as 2023.")),
                             **kwargs)
