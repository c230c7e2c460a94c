"""Pledges: the bureau freezes units of a batch for a green loan in the ledger's ``pledged`` account; they
cannot be listed or sold; release moves them back; `ledger check` includes them; the registry shows them."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.errors import Forbidden, InsufficientCredits, ValidationFailed
from marketplace.registry import ledger, pledges
from marketplace.registry import service as registry
from marketplace.registry.models import CreditBatch, LedgerBalance, Pledge
from tests.conftest import CsrfClient
from tests.factories import PASSWORD

TERM = {"term_start": date(2026, 12, 1), "term_end": date(2029, 11, 30)}


def _pledge(session, batch_id, bureau_id, tonnes, contract="LQ-GL-2026-001"):
    return pledges.pledge_units(session, session.get(CreditBatch, batch_id), actor=session.get(User, bureau_id),
                                tonnes=tonnes, bank_name="浙江龙泉农村商业银行", contract_reference=contract,
                                loan_amount="500000.00", **TERM)


@pytest.fixture
def batch(factory):
    bureau = factory.user("bureau")
    return factory.batch(tonnes="1000", bureau=bureau), bureau  # 900 t available, 100 t buffer


def test_pledged_units_cannot_be_listed_and_come_back_on_release(session, batch):
    row, bureau = batch
    pledge = _pledge(session, row.id, bureau.id, "850")
    session.commit()
    assert ledger.balance(session, row.id, "pledged") == 8_500_000
    assert ledger.balance(session, row.id, "available") == 500_000
    seller = session.get(User, row.project.seller.id)
    with pytest.raises(InsufficientCredits):
        registry.create_listing(session, session.get(CreditBatch, row.id), actor=seller, units=600_000,
                                price_cny_per_tonne=30, min_order_units=1)
    session.rollback()
    assert ledger.check_invariants(session).ok
    pledges.release(session, session.get(Pledge, pledge.id), actor=session.get(User, bureau.id))
    pledges.release(session, session.get(Pledge, pledge.id), actor=session.get(User, bureau.id))  # again: nothing
    session.commit()
    assert ledger.balance(session, row.id, "pledged") == 0
    assert ledger.balance(session, row.id, "available") == 9_000_000
    registry.create_listing(session, session.get(CreditBatch, row.id), actor=seller, units=6_000_000,
                            price_cny_per_tonne=30, min_order_units=1)
    session.commit()
    assert ledger.check_invariants(session).ok


def test_bad_pledges_change_nothing(session, batch):
    row, bureau = batch
    _pledge(session, row.id, bureau.id, "100")
    session.commit()
    with pytest.raises(ValidationFailed) as reused:
        _pledge(session, row.id, bureau.id, "1")
    assert reused.value.field == "contract_reference"
    session.rollback()
    with pytest.raises(InsufficientCredits) as too_many:
        _pledge(session, row.id, bureau.id, "800.0001", contract="LQ-GL-2026-002")
    assert too_many.value.field == "tonnes"
    session.rollback()
    with pytest.raises(ValidationFailed):
        pledges.pledge_units(session, session.get(CreditBatch, row.id), actor=session.get(User, bureau.id),
                             tonnes="1", bank_name="银行", contract_reference="X", loan_amount="1.00",
                             term_start=date(2027, 1, 1), term_end=date(2026, 1, 1))
    session.rollback()
    with pytest.raises(Forbidden):
        _pledge(session, row.id, row.project.seller.id, "1", contract="LQ-GL-2026-003")
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Pledge)) == 1
    assert ledger.balance(session, row.id, "pledged") == 1_000_000


def test_ledger_check_catches_a_pledged_balance_without_its_pledge(session, batch):
    row, bureau = batch
    _pledge(session, row.id, bureau.id, "10")
    session.commit()
    # Units moved into "pledged" behind the pledges' back (balances are not append-only, the journal is).
    session.execute(sa.update(LedgerBalance).where(LedgerBalance.batch_id == row.id, LedgerBalance.account == "pledged")
                    .values(units=LedgerBalance.units + 5))
    session.execute(sa.update(LedgerBalance).where(LedgerBalance.batch_id == row.id, LedgerBalance.account == "available")
                    .values(units=LedgerBalance.units - 5))
    session.commit()
    problems = ledger.check_invariants(session).problems
    assert any("active pledges" in p for p in problems), problems


def test_the_bureau_pledges_on_its_page_and_the_registry_shows_it(app, factory, batch):
    row, bureau = batch
    client = app.test_client()
    form = CsrfClient(client)
    assert form.post_form("/login", {"email": bureau.email, "password": PASSWORD}).status_code == 302
    refused = form.post_form("/bureau/pledges/", {"batch_id": row.id, "tonnes": "901", "bank_name": "龙泉农商银行",
                                                  "contract_reference": "GL-1", "loan_amount": "300000",
                                                  "term_start": "2026-12-01", "term_end": "2029-11-30"})
    assert refused.status_code == 422
    done = form.post_form("/bureau/pledges/", {"batch_id": row.id, "tonnes": "123.4567", "bank_name": "龙泉农商银行",
                                               "contract_reference": "GL-1", "loan_amount": "300000",
                                               "term_start": "2026-12-01", "term_end": "2029-11-30"})
    assert done.status_code == 302
    page = app.test_client().get(f"/registry/projects/{row.project.id}").get_data(as_text=True)
    assert "123.4567" in page
