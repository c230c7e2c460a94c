"""Household shares: a cooperative's distribution rule, its member households and each distribution.

A distribution shares out one paid payout, whole: first between the collective fund and the households
by the rule's percentages, then the households' part by share counts, each split by largest remainder
so the parts add up to the whole to the fen. It moves money from ``cooperative:<organisation>`` (what
the bank paid the cooperative), so nothing can be distributed that was not paid out.
"""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.accounts.models import Organisation
from marketplace.core.access import Actor
from marketplace.core.db import max_length
from marketplace.core.errors import Forbidden, InvalidTransition, ValidationFailed
from marketplace.core.quantities import DecimalInput, parse_decimal
from marketplace.settlement import journal
from marketplace.settlement.models import Distribution, DistributionLine, DistributionRule, Household, Payout

PERCENT = DecimalInput(
    places=2, integer_digits=3, maximum=Decimal(100), allow_zero=True,
    malformed=_l("Enter a percentage with at most 2 decimal places, e.g. 20 or 12.5."),
    missing=_l("Enter a percentage."), negative=_l("A percentage cannot be negative."),
    too_precise=_l("At most 2 decimal places."), too_large=_l("A percentage is at most 100."))
#: The most member households one cooperative records (a large administrative village has ~1,500).
MAX_HOUSEHOLDS = 5000


def _seller(actor: Actor) -> None:
    if actor.role != "seller":
        raise Forbidden(_l("Only a cooperative records its households and distributions."))


def current_rule(session: so.Session, organisation_id: int) -> DistributionRule | None:
    return session.scalar(sa.select(DistributionRule).where(DistributionRule.organisation_id == organisation_id)
                          .order_by(DistributionRule.id.desc()).limit(1))


def set_rule(session: so.Session, *, actor: Actor, collective_percent, households_percent) -> DistributionRule:
    """The cooperative's rule from now on. The two shares must add up to exactly 100 %."""
    _seller(actor)
    collective = parse_decimal(collective_percent, PERCENT, "collective_percent")
    households = parse_decimal(households_percent, PERCENT, "households_percent")
    if collective + households > 100:
        raise ValidationFailed(_l("The shares add up to %(sum)s %%: more than 100 %%.", sum=collective + households),
                               "households_percent")
    if collective + households < 100:
        raise ValidationFailed(_l("The shares add up to %(sum)s %%: they must add up to 100 %%.",
                                  sum=collective + households), "households_percent")
    rule = DistributionRule(organisation_id=actor.organisation_id, collective_percent=collective,
                            households_percent=households, created_by_id=actor.id)
    session.add(rule)
    session.flush()
    return rule


_LINE = re.compile(r"^(?P<name>.+?)[\s,，\t]+(?P<shares>[0-9]{1,6})$")


def parse_households(text: str) -> list[tuple[str, int]]:
    """One household a line: its name, then its share count ("王建国 3" or "王建国,3"). Refuses an empty
    list, a line it cannot read, a share count of zero and the same name twice."""
    rows, seen = [], {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            raise ValidationFailed(_l("Line %(n)s: write the household's name, then its number of shares.",
                                      n=number), "households")
        name, shares = " ".join(match["name"].split()), int(match["shares"])
        if len(name) > max_length(Household.name):
            raise ValidationFailed(_l("Line %(n)s: the name is too long.", n=number), "households")
        if shares == 0:
            raise ValidationFailed(_l("Line %(n)s: a household has at least one share.", n=number), "households")
        if name in seen:
            raise ValidationFailed(_l("Line %(n)s: %(name)s is already on line %(first)s.", n=number, name=name,
                                      first=seen[name]), "households")
        seen[name] = number
        rows.append((name, shares))
    if not rows:
        raise ValidationFailed(_l("Enter at least one household."), "households")
    if len(rows) > MAX_HOUSEHOLDS:
        raise ValidationFailed(_l("At most %(n)s households.", n=MAX_HOUSEHOLDS), "households")
    return rows


def replace_households(session: so.Session, *, actor: Actor, text: str) -> list[Household]:
    """The cooperative's member households are now those listed: new ones added, share counts updated,
    households no longer listed kept (for past distributions) but inactive."""
    _seller(actor)
    rows = parse_households(text)
    existing = {h.name: h for h in session.scalars(sa.select(Household).where(
        Household.organisation_id == actor.organisation_id))}
    listed = set()
    for name, shares in rows:
        household = existing.get(name)
        if household is None:
            household = Household(organisation_id=actor.organisation_id, name=name, shares=shares, active=True)
            session.add(household)
        else:
            household.shares, household.active = shares, True
        listed.add(name)
    for name, household in existing.items():
        if name not in listed:
            household.active = False
    session.flush()
    return active_households(session, actor.organisation_id)


def active_households(session: so.Session, organisation_id: int) -> list[Household]:
    return list(session.scalars(sa.select(Household).where(Household.organisation_id == organisation_id,
                                                           Household.active.is_(True)).order_by(Household.id)))


def distribute(session: so.Session, payout: Payout, *, actor: Actor) -> Distribution:
    """Share out a paid payout by the cooperative's current rule. Distributing it again returns the first
    distribution."""
    _seller(actor)
    if payout.seller_organisation_id != actor.organisation_id:
        raise Forbidden(_l("Not your payout."))
    session.execute(sa.select(Organisation.id).where(Organisation.id == actor.organisation_id).with_for_update())
    done = session.scalar(sa.select(Distribution).where(Distribution.payout_id == payout.id))
    if done is not None:
        return done
    if payout.status != "paid":
        raise InvalidTransition(_l("Only a payout the bank has paid can be distributed."))
    rule = current_rule(session, actor.organisation_id)
    if rule is None:
        raise ValidationFailed(_l("Record the distribution rule first."), "rule")
    households = active_households(session, actor.organisation_id)
    if rule.households_percent > 0 and not households:
        raise ValidationFailed(_l("Record the member households first."), "households")
    undistributed = journal.balance(session, journal.cooperative(actor.organisation_id))
    if payout.amount_fen > undistributed:
        raise ValidationFailed(_l("Only ¥%(amount)s paid out is left to distribute.",
                                  amount=f"{undistributed / 100:,.2f}"), "payout")
    weights = [int(rule.collective_percent * 100), int(rule.households_percent * 100)]
    collective_fen, households_fen = journal.largest_remainder(payout.amount_fen, weights)
    parts = journal.largest_remainder(households_fen, [h.shares for h in households]) if households else []
    distribution = Distribution(organisation_id=actor.organisation_id, payout_id=payout.id,
                                amount_fen=payout.amount_fen, collective_fen=collective_fen,
                                collective_percent=rule.collective_percent,
                                households_percent=rule.households_percent, created_by_id=actor.id)
    session.add(distribution)
    session.flush()
    links = {"seller_organisation_id": actor.organisation_id, "distribution_id": distribution.id,
             "payout_id": payout.id}
    source = journal.cooperative(actor.organisation_id)
    journal.post(session, ref=f"distribution:{distribution.id}:collective", kind="distribution", debit=source,
                 credit=journal.collective(actor.organisation_id), amount_fen=collective_fen, **links)
    for household, amount in zip(households, parts, strict=True):
        session.add(DistributionLine(distribution_id=distribution.id, household_id=household.id,
                                     shares=household.shares, amount_fen=amount))
        journal.post(session, ref=f"distribution:{distribution.id}:household:{household.id}", kind="distribution",
                     debit=source, credit=journal.household(household.id), amount_fen=amount, **links)
    session.flush()
    return distribution


DISTRIBUTION_SHOWN = (so.selectinload(Distribution.lines).joinedload(DistributionLine.household),
                      so.joinedload(Distribution.payout))
