"""Payouts: the money desk (the bureau, or the platform operator it delegates to) pays cooperatives' balances
out in batches, and records what the bank did; each step is on the actor's account audit log.

A payout moves the amount from ``seller:<organisation>`` to ``payout:<id>`` when it is made (so it can
never be more than the balance: the organisation's row is locked while the balance is read); once the
bank has transferred it, ``payout:<id> → cooperative:<organisation>`` with the bank's reference (one
reference pays one payout); if the bank refused it, the money goes back to the seller's balance.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.accounts.audit import record_event
from marketplace.accounts.models import Organisation
from marketplace.core.access import Actor
from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import Forbidden, InvalidTransition, ValidationFailed
from marketplace.settlement import journal
from marketplace.settlement.models import DESK_ROLES, PayeeAccount, Payout, PayoutBatch


def _clean(text, column, field: str, message) -> str:
    text = " ".join(str(text or "").split())
    if not text:
        raise ValidationFailed(message, field)
    if len(text) > max_length(column):
        raise ValidationFailed(_l("At most %(n)s characters.", n=max_length(column)), field)
    return text


def set_payee_account(session: so.Session, *, actor: Actor, account_name: str, bank_name: str,
                      account_number: str) -> PayeeAccount:
    """The cooperative says where it is paid."""
    if actor.role != "seller":
        raise Forbidden(_l("Only a cooperative records its bank account."))
    values = {
        "account_name": _clean(account_name, PayeeAccount.account_name, "account_name",
                               _l("Enter the account name.")),
        "bank_name": _clean(bank_name, PayeeAccount.bank_name, "bank_name", _l("Enter the bank.")),
        "account_number": _clean(account_number, PayeeAccount.account_number, "account_number",
                                 _l("Enter the account number.")).replace(" ", ""),
    }
    if not values["account_number"].isdigit():
        raise ValidationFailed(_l("An account number has digits only."), "account_number")
    account = session.scalar(sa.select(PayeeAccount).where(PayeeAccount.organisation_id == actor.organisation_id))
    if account is None:
        account = PayeeAccount(organisation_id=actor.organisation_id, **values)
        session.add(account)
    else:
        for key, value in values.items():
            setattr(account, key, value)
        account.updated_at = utcnow()
    session.flush()
    return account


def due_balances(session: so.Session) -> list[tuple[Organisation, int, PayeeAccount | None]]:
    """Cooperatives with a positive balance: (organisation, balance in fen, payee account or None)."""
    owed = {int(account.split(":", 1)[1]): amount
            for account, amount in journal.balances(session, "seller:").items() if amount > 0}
    if not owed:
        return []
    organisations = session.scalars(sa.select(Organisation).where(Organisation.id.in_(owed))
                                    .order_by(Organisation.id)).all()
    payees = {p.organisation_id: p for p in session.scalars(
        sa.select(PayeeAccount).where(PayeeAccount.organisation_id.in_(owed)))}
    return [(org, owed[org.id], payees.get(org.id)) for org in organisations]


def create_batch(session: so.Session, *, actor: Actor, amounts: dict[int, int]) -> PayoutBatch:
    """A payout batch paying each organisation the amount (fen) given. Refuses, having written nothing, an
    amount that is not positive or larger than the organisation's balance, or a cooperative without a
    bank account."""
    if actor.role not in DESK_ROLES:
        raise Forbidden(_l("Only the bureau or its platform operator makes payouts."))
    if not amounts:
        raise ValidationFailed(_l("Choose at least one cooperative to pay."), "amounts")
    # One lock order (organisation id): two bureau users making batches at once never deadlock, and a
    # balance read under the lock cannot be paid out twice.
    organisation_ids = sorted(amounts)
    locked = session.scalars(sa.select(Organisation).where(Organisation.id.in_(organisation_ids))
                             .order_by(Organisation.id).with_for_update()).all()
    if len(locked) != len(organisation_ids):
        raise ValidationFailed(_l("Unknown cooperative."), "amounts")
    payees = {p.organisation_id: p for p in session.scalars(
        sa.select(PayeeAccount).where(PayeeAccount.organisation_id.in_(organisation_ids)))}
    for org in locked:
        amount = amounts[org.id]
        if amount <= 0:
            raise ValidationFailed(_l("A payout must be more than zero."), f"amount_{org.id}")
        available = journal.balance(session, journal.seller(org.id))
        if amount > available:
            raise ValidationFailed(_l("%(name)s has a balance of ¥%(balance)s: a payout of ¥%(amount)s is larger.",
                                      name=org.name, balance=f"{available / 100:,.2f}", amount=f"{amount / 100:,.2f}"),
                                   f"amount_{org.id}")
        if org.id not in payees:
            raise ValidationFailed(_l("%(name)s has not recorded a bank account.", name=org.name),
                                   f"amount_{org.id}")
    batch = PayoutBatch(created_by_id=actor.id)
    session.add(batch)
    session.flush()
    made = []
    for org in locked:
        payee = payees[org.id]
        payout = Payout(batch_id=batch.id, seller_organisation_id=org.id, amount_fen=amounts[org.id],
                        status="pending", account_name=payee.account_name, bank_name=payee.bank_name,
                        account_number=payee.account_number)
        session.add(payout)
        session.flush()
        made.append(payout)
        journal.post(session, ref=f"payout:{payout.id}", kind="payout", debit=journal.seller(org.id),
                     credit=journal.in_transit(payout.id), amount_fen=payout.amount_fen,
                     seller_organisation_id=org.id, payout_id=payout.id)
    session.flush()
    record_event(session, actor.id, "payout_batch_created", actor_id=actor.id,
                 detail=f"{batch.reference}: " + ", ".join(f"{p.reference} ¥{p.amount_fen / 100:,.2f}"
                                                           for p in made))
    return batch


def _lock(session: so.Session, payout: Payout) -> Payout:
    return session.scalar(sa.select(Payout).where(Payout.id == payout.id).with_for_update()
                          .execution_options(populate_existing=True))


def mark_paid(session: so.Session, payout: Payout, *, actor: Actor, reference: str) -> Payout:
    """The bank transferred it, under ``reference``. The same reference again changes nothing; a reference
    already used for another payout is refused."""
    if actor.role not in DESK_ROLES:
        raise Forbidden(_l("Only the bureau or its platform operator records payouts."))
    reference = _clean(reference, Payout.bank_reference, "reference", _l("Enter the bank's reference."))
    payout = _lock(session, payout)
    if payout.status == "paid" and payout.bank_reference == reference:
        return payout
    if payout.status != "pending":
        raise InvalidTransition(_l("This payout is already %(status)s.", status=status_label(payout.status)))
    if session.scalar(sa.select(Payout.id).where(Payout.bank_reference == reference, Payout.id != payout.id)):
        raise ValidationFailed(_l("This bank reference is already recorded for another payout."), "reference")
    payout.status, payout.bank_reference = "paid", reference
    payout.decided_by_id, payout.decided_at = actor.id, utcnow()
    journal.post(session, ref=f"payout-paid:{payout.id}", kind="payout_paid", debit=journal.in_transit(payout.id),
                 credit=journal.cooperative(payout.seller_organisation_id), amount_fen=payout.amount_fen,
                 seller_organisation_id=payout.seller_organisation_id, payout_id=payout.id)
    session.flush()
    record_event(session, actor.id, "payout_paid", actor_id=actor.id, detail=f"{payout.reference} {reference}")
    return payout


def mark_failed(session: so.Session, payout: Payout, *, actor: Actor, reason: str) -> Payout:
    """The bank refused it: the amount returns to the cooperative's balance. Repeating it changes nothing."""
    if actor.role not in DESK_ROLES:
        raise Forbidden(_l("Only the bureau or its platform operator records payouts."))
    reason = _clean(reason, Payout.failure_reason, "reason", _l("Say why the payout failed."))
    payout = _lock(session, payout)
    if payout.status == "failed":
        return payout
    if payout.status != "pending":
        raise InvalidTransition(_l("This payout is already %(status)s.", status=status_label(payout.status)))
    payout.status, payout.failure_reason = "failed", reason
    payout.decided_by_id, payout.decided_at = actor.id, utcnow()
    journal.post(session, ref=f"payout-failed:{payout.id}", kind="payout_failed",
                 debit=journal.in_transit(payout.id), credit=journal.seller(payout.seller_organisation_id),
                 amount_fen=payout.amount_fen, seller_organisation_id=payout.seller_organisation_id,
                 payout_id=payout.id)
    session.flush()
    record_event(session, actor.id, "payout_failed", actor_id=actor.id, detail=f"{payout.reference} {reason}")
    return payout


def status_label(status: str) -> str:
    return str({"pending": _l("pending"), "paid": _l("paid"), "failed": _l("failed")}.get(status, status))
