"""Pledges: the bureau freezes units of a batch for a green loan, and releases them.

Pledging moves units ``available → pledged`` in the ledger (a conditional debit, like every other), so
pledged units cannot be listed, reserved or sold; listed units must be unlisted first. Releasing moves
them back. Both are one journal entry with the pledge's reference and are safe to repeat.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.core.access import Actor
from marketplace.core.db import insert, max_length, utcnow
from marketplace.core.errors import Forbidden, InsufficientCredits, ValidationFailed
from marketplace.core.quantities import display_tonnes, parse_cny, parse_tonnes
from marketplace.registry import ledger
from marketplace.registry.models import CreditBatch, LedgerBalance, Pledge

PLEDGED = "pledged"


def _text(raw, column, field: str, missing) -> str:
    text = " ".join(str(raw or "").split())
    if not text:
        raise ValidationFailed(missing, field)
    if len(text) > max_length(column):
        raise ValidationFailed(_l("At most %(n)s characters.", n=max_length(column)), field)
    return text


def pledge_units(session: so.Session, batch: CreditBatch, *, actor: Actor, tonnes, bank_name: str,
                 contract_reference: str, loan_amount, term_start: date | None, term_end: date | None) -> Pledge:
    """Freeze units of the batch for a loan contract. Refuses (nothing written) more units than the batch
    has available, a contract already pledged, or a term that ends before it starts."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau records pledges."))
    units = parse_tonnes(tonnes, "tonnes")
    bank_name = _text(bank_name, Pledge.bank_name, "bank_name", _l("Enter the lending bank."))
    contract_reference = _text(contract_reference, Pledge.contract_reference, "contract_reference",
                               _l("Enter the loan contract's reference."))
    amount = parse_cny(loan_amount, "loan_amount")
    if term_start is None or term_end is None:
        raise ValidationFailed(_l("Enter the loan's term."), "term_end")
    if term_end < term_start:
        raise ValidationFailed(_l("The term ends before it starts."), "term_end")
    if session.scalar(sa.select(Pledge.id).where(Pledge.bank_name == bank_name,
                                                 Pledge.contract_reference == contract_reference)):
        raise ValidationFailed(_l("This loan contract is already pledged."), "contract_reference")
    pledge = Pledge(batch_id=batch.id, units=units, bank_name=bank_name, contract_reference=contract_reference,
                    loan_amount_cny=amount, term_start=term_start, term_end=term_end, status="active",
                    created_by_id=actor.id)
    session.add(pledge)
    session.flush()
    # The account opens with the batch's first pledge (batches issued before pledges existed have none).
    session.execute(insert(session, LedgerBalance.__table__).values(batch_id=batch.id, account=PLEDGED, units=0)
                    .on_conflict_do_nothing(index_elements=["batch_id", "account"]))
    available = ledger.balance(session, batch.id, "available")
    try:
        ledger.move(session, batch_id=batch.id, from_account="available", to_account=PLEDGED, units=units,
                    kind="pledge", ref=pledge.ref, actor_id=actor.id,
                    message=_l("Only %(t)s t of this batch are available (not listed): unlist units first.",
                               t=display_tonnes(available)))
    except InsufficientCredits as exc:
        exc.field = "tonnes"
        raise
    return pledge


def release(session: so.Session, pledge: Pledge, *, actor: Actor) -> Pledge:
    """The loan is repaid: the units go back to the batch's available account. Repeating it does nothing."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau records pledges."))
    result = session.execute(sa.update(Pledge).where(Pledge.id == pledge.id, Pledge.status == "active")
                             .values(status="released", released_by_id=actor.id, released_at=utcnow()),
                             execution_options={"synchronize_session": False})
    if result.rowcount == 1:
        ledger.move(session, batch_id=pledge.batch_id, from_account=PLEDGED, to_account="available",
                    units=pledge.units, kind="unpledge", ref=pledge.ref, actor_id=actor.id)
    session.refresh(pledge)
    return pledge
