"""Test data built through the real services.

Each call runs in its own application context and returns a plain snapshot (ids and names), so a
test never holds an application context open while it drives the HTTP client: Flask would reuse
that context (its ``g`` and session) for every request, which no real browser ever sees.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from marketplace.accounts import service as accounts
from marketplace.accounts.credit_code import complete_credit_code
from marketplace.extensions import db

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

    # --- registry ---------------------------------------------------------------------------------

    def village(self, name: str | None = None):
        from marketplace.registry.service import ensure_region

        n = next(_seq)
        with self.app.app_context():
            province = ensure_region(db.session, level="province", name="浙江省", code="330000")
            city = ensure_region(db.session, level="city", name="丽水市", parent=province, code="331100")
            county = ensure_region(db.session, level="county", name="龙泉市", parent=city, code="331181")
            township = ensure_region(db.session, level="township", name="兰巨乡", parent=county)
            village = ensure_region(db.session, level="village", name=name or f"测试村{n}", parent=township)
            db.session.commit()
            return snapshot(village, "id", "name")

    def project(self, seller=None, *, verified: bool = True, bureau=None):
        """A project of a seller (a new one by default), verified by the bureau unless told otherwise."""
        from datetime import date

        from marketplace.accounts.models import User
        from marketplace.registry import service as registry
        from marketplace.registry.models import Project

        seller = seller or self.user("seller")
        bureau = bureau or self.user("bureau")
        village = self.village()
        with self.app.app_context():
            actor = db.session.get(User, seller.id)
            project = registry.create_project(
                db.session, actor=actor, village_id=village.id, name=f"{village.name}森林经营碳汇项目",
                area_hectares="1200.5", forest_type="杉木林", methodology="CCER-14-001-V01",
                crediting_start=date(2020, 1, 1), crediting_end=date(2040, 12, 31))
            if verified:
                registry.add_document(db.session, project, actor=actor, kind="verification_statement",
                                      filename="statement.pdf", data=MINIMAL_PDF)
                registry.transition_project(db.session, project, "submitted", actor=actor)
                bureau_user = db.session.get(User, bureau.id)
                registry.transition_project(db.session, project, "verified", actor=bureau_user, note="ok")
            db.session.commit()
            project = db.session.get(Project, project.id)
            result = snapshot(project, "id", "name", "status", "seller_organisation_id")
        result.seller = seller
        return result

    def batch(self, project=None, *, tonnes: str = "1000", bureau=None, vintage_year: int = 2023,
              scheme: str = "other", event_eligible: bool = False):
        from datetime import date

        from marketplace.accounts.models import User
        from marketplace.core.quantities import parse_tonnes
        from marketplace.registry import service as registry
        from marketplace.registry.models import Project

        project = project or self.project()
        bureau = bureau or self.user("bureau")
        with self.app.app_context():
            batch = registry.issue_batch(
                db.session, db.session.get(Project, project.id), actor=db.session.get(User, bureau.id),
                quantity_units=parse_tonnes(tonnes), vintage_start=date(vintage_year, 1, 1),
                vintage_end=date(vintage_year, 12, 31), verification_body="中环联合认证中心",
                report_reference=f"CEC-{vintage_year}-{next(_seq)}", scheme=scheme, event_eligible=event_eligible,
                methodology_code="CCER-14-001", methodology_version="V01")
            db.session.commit()
            result = snapshot(batch, "id", "quantity_units", "buffer_units", "serial_start", "serial_end", "scheme",
                              "event_eligible")
        result.project = project
        return result

    def listing(self, batch=None, *, tonnes: str = "500", price: str = "30.00", min_order: str = "0.0001"):
        from marketplace.accounts.models import User
        from marketplace.core.quantities import parse_cny, parse_tonnes
        from marketplace.registry import service as registry
        from marketplace.registry.models import CreditBatch

        batch = batch or self.batch()
        with self.app.app_context():
            listing = registry.create_listing(
                db.session, db.session.get(CreditBatch, batch.id), actor=db.session.get(User, batch.project.seller.id),
                units=parse_tonnes(tonnes), price_cny_per_tonne=parse_cny(price), min_order_units=parse_tonnes(min_order))
            db.session.commit()
            result = snapshot(listing, "id", "batch_id", "price_cny_per_tonne", "seller_organisation_id")
        result.batch = batch
        return result


#: The smallest file that passes the upload check (a PDF header and trailer).
def _minimal_pdf() -> bytes:
    """A real one-page PDF (uploads are checked from their structure, not only their first and last bytes)."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


MINIMAL_PDF = _minimal_pdf()


def orders_with_ids(app, ids) -> None:
    """Bare order rows with these ids, for tests of what hangs off an order (payments, certificates)
    that do not need a real purchase. Real purchases go through ``Factory.order``."""
    import sqlalchemy as sa

    from marketplace.orders.models import Order

    factory = Factory(app)
    buyer = factory.user("buyer")
    with app.app_context():
        for order_id in ids:
            db.session.execute(sa.insert(Order).values(
                id=order_id, buyer_organisation_id=buyer.organisation_id, created_by_id=buyer.id, quantity_units=1,
                amount_cny=1, beneficiary="测试", retirement_reason="测试", payment_method="card",
                status="pending_payment", refund_status="none"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))"))
        db.session.commit()
