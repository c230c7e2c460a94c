"""The one organisation-scoped lookup every view and API call uses.

A model that belongs to an organisation defines ``owned_by(organisation_id)``, a SQL condition that
is true for that organisation's rows. Another organisation's object is indistinguishable from a
missing one: both raise NotFound (404), so ids leak nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import g
from flask_babel import lazy_gettext as _l

from marketplace.core.errors import NotFound
from marketplace.core.ids import is_id

M = TypeVar("M")


class Actor(Protocol):
    """Who acts: a signed-in user, or the plain actor an API token resolves to."""

    id: int
    organisation_id: int
    role: str


#: Who sees every organisation's rows when ``bureau_sees_all``: the bureau. A feature that shares a desk with
#: another platform role (settlement with the ``operator`` the bureau delegates to) names it in ``sees_all``.
SEES_ALL = ("bureau",)


def scoped_select(model: type[M], actor: Actor, *, bureau_sees_all: bool = True,
                  sees_all: Sequence[str] = SEES_ALL) -> sa.Select:
    """SELECT of the model's rows the actor may see."""
    stmt = sa.select(model)
    if bureau_sees_all and actor.role in sees_all:
        return stmt
    return stmt.where(model.owned_by(actor.organisation_id))


def get_scoped(session: so.Session, model: type[M], object_id, actor: Actor, *,
               bureau_sees_all: bool = True, for_update: bool = False, options: Sequence = (),
               sees_all: Sequence[str] = SEES_ALL) -> M:
    """The object with this id if the actor may see it, else NotFound. ``options`` are loader options for
    the relationships the caller reads (selectinload, joinedload)."""
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        raise NotFound(_l("Not found.")) from None
    if not is_id(object_id):  # no row has it, and the database would refuse to compare with it
        raise NotFound(_l("Not found."))
    stmt = scoped_select(model, actor, bureau_sees_all=bureau_sees_all, sees_all=sees_all).where(model.id == object_id)
    if for_update:
        stmt = stmt.with_for_update(of=model)
    if options:
        stmt = stmt.options(*options)
    obj = session.scalars(stmt).first()
    if obj is None:
        raise NotFound(_l("Not found."))
    return obj


def set_api_actor(actor: Actor) -> None:
    """Remember who the API request acts for (the accounts feature resolves the bearer token)."""
    g.api_actor = actor


def api_actor() -> Actor:
    """The actor of the current API request (set once its token was accepted)."""
    return g.api_actor
