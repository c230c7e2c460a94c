"""Test data built through the real services.

Each call runs in its own application context and returns a plain snapshot (ids and names), so a
test never holds an application context open while it drives the HTTP client: Flask would reuse
that context (its ``g`` and session) for every request, which no real browser ever sees.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from marketplace.extensions import db
from marketplace.services import accounts
from marketplace.services.credit_code import complete_credit_code

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def snapshot(obj, *fields):
    return SimpleNamespace(**{f: getattr(obj, f) for f in fields})


class Factory:
    def __init__(self, app):
        self.app = app

    def organisation(self, kind: str = "buyer", name: str | None = None):
        n = next(_seq)
        with self.app.app_context():
            org = accounts.create_organisation(
                db.session, kind=kind, name=name or f"测试机构{n}",
                credit_code=complete_credit_code(f"91330000{n:09d}"))
            db.session.commit()
            return snapshot(org, "id", "kind", "name", "credit_code")

    def user(self, kind: str = "buyer", organisation=None, email: str | None = None):
        organisation = organisation or self.organisation(kind)
        n = next(_seq)
        with self.app.app_context():
            user = accounts.create_user(db.session, organisation_id=organisation.id,
                                        email=email or f"user{n}@example.cn", password=PASSWORD,
                                        display_name=f"用户{n}")
            db.session.commit()
            result = snapshot(user, "id", "email", "organisation_id", "display_name")
        result.organisation = organisation
        result.role = organisation.kind
        return result

    def token(self, user) -> str:
        with self.app.app_context():
            token = accounts.create_api_token(db.session, user.id, "test")
            db.session.commit()
            return token
