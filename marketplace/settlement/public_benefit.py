"""The public benefit ledger: what each village's forest earned and where the money went, read from the
money journal to the fen.

Per village: tonnes sold (lines of paid orders not refunded), money received (its cooperative's net
proceeds from those lines: after the platform fee, less refunds), paid out (payouts the bank made),
distributed to households, and the number of households that received something. A cooperative's
payouts and distributions count for the village of its first project (a cooperative is a village's).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.orders.models import Order, OrderLine
from marketplace.registry.models import REGION_ANCESTORS, CreditBatch, Project, Region
from marketplace.settlement.models import DistributionLine, Household, MoneyEntry, Payout

SOLD_STATUSES = ("paid", "retiring", "completed")


@dataclass
class VillageBenefit:
    village: Region
    sold_units: int = 0
    received_fen: int = 0
    paid_out_fen: int = 0
    distributed_fen: int = 0
    households: int = 0

    @property
    def township(self) -> Region | None:
        return self.village.parent

    @property
    def county(self) -> Region | None:
        return self.village.parent.parent if self.village.parent else None

    @property
    def average_fen(self) -> int:
        """What a benefiting household received on average, rounded down to the fen."""
        return self.distributed_fen // self.households if self.households else 0

    def add(self, other: VillageBenefit) -> None:
        self.sold_units += other.sold_units
        self.received_fen += other.received_fen
        self.paid_out_fen += other.paid_out_fen
        self.distributed_fen += other.distributed_fen
        self.households += other.households


def village_benefits(session: so.Session, *, county_id: int | None = None) -> list[VillageBenefit]:
    """Every village with a verified project (those of one county if given), by county, township, name."""
    project_village = dict(session.execute(sa.select(Project.id, Project.village_id)).all())
    first_project = session.execute(
        sa.select(Project.seller_organisation_id, sa.func.min(Project.id)).group_by(Project.seller_organisation_id)).all()
    org_village = {org: project_village[project] for org, project in first_project}
    villages = {v.id: v for v in session.scalars(
        sa.select(Region).where(Region.id.in_(sa.select(Project.village_id).where(Project.status == "verified")))
        .options(REGION_ANCESTORS))}
    rows = {vid: VillageBenefit(v) for vid, v in villages.items()}

    line_village = sa.select(OrderLine.id.label("line_id"), Project.village_id).join(
        CreditBatch, CreditBatch.id == OrderLine.batch_id).join(Project, Project.id == CreditBatch.project_id).subquery()
    for village_id, units in session.execute(
            sa.select(line_village.c.village_id, sa.func.sum(OrderLine.units))
            .join(line_village, line_village.c.line_id == OrderLine.id).join(Order, Order.id == OrderLine.order_id)
            .where(Order.status.in_(SOLD_STATUSES)).group_by(line_village.c.village_id)):
        if village_id in rows:
            rows[village_id].sold_units += int(units)
    signed = sa.case((MoneyEntry.kind == "proceeds", MoneyEntry.amount_fen), else_=-MoneyEntry.amount_fen)
    for village_id, amount in session.execute(
            sa.select(line_village.c.village_id, sa.func.sum(signed))
            .join(line_village, line_village.c.line_id == MoneyEntry.order_line_id)
            .where(sa.or_(MoneyEntry.kind == "proceeds",
                          sa.and_(MoneyEntry.kind == "refund", MoneyEntry.debit_account.startswith("seller:"))))
            .group_by(line_village.c.village_id)):
        if village_id in rows:
            rows[village_id].received_fen += int(amount)
    for org, amount in session.execute(sa.select(Payout.seller_organisation_id, sa.func.sum(Payout.amount_fen))
                                       .where(Payout.status == "paid").group_by(Payout.seller_organisation_id)):
        if org_village.get(org) in rows:
            rows[org_village[org]].paid_out_fen += int(amount)
    per_household: dict[int, int] = defaultdict(int)
    household_org = dict(session.execute(sa.select(Household.id, Household.organisation_id)).all())
    for household_id, amount in session.execute(
            sa.select(DistributionLine.household_id, sa.func.sum(DistributionLine.amount_fen))
            .group_by(DistributionLine.household_id)):
        per_household[household_id] += int(amount)
    for household_id, amount in per_household.items():
        village_id = org_village.get(household_org[household_id])
        if village_id in rows and amount > 0:
            rows[village_id].distributed_fen += amount
            rows[village_id].households += 1
    result = list(rows.values())
    if county_id is not None:
        result = [r for r in result if r.county is not None and r.county.id == county_id]
    return sorted(result, key=lambda r: (r.county.name if r.county else "", r.township.name if r.township else "",
                                         r.village.name, r.village.id))


def by_county(rows: list[VillageBenefit]) -> list[tuple[Region | None, VillageBenefit, list[VillageBenefit]]]:
    """(county, its totals, its villages) in the order of the rows. A county's households are the sum of
    its villages' (a household belongs to one cooperative, so one village)."""
    groups: dict[int | None, tuple] = {}
    for row in rows:
        key = row.county.id if row.county else None
        if key not in groups:
            groups[key] = (row.county, VillageBenefit(row.county or row.village), [])
        groups[key][1].add(row)
        groups[key][2].append(row)
    return list(groups.values())


def household_distributions_fen(session: so.Session) -> int:
    """All that distributions gave households, from the journal (for checks and tests)."""
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MoneyEntry.amount_fen), 0)).where(
        MoneyEntry.kind == "distribution", MoneyEntry.credit_account.startswith("household:"))))


@dataclass
class HouseholdBenefit:
    masked_name: str
    shares: int
    received_fen: int


def village_households(session: so.Session, village_id: int) -> tuple[VillageBenefit | None, list[HouseholdBenefit]]:
    """One village's figures and what each of its member households received, names masked (王**)."""
    row = next((r for r in village_benefits(session) if r.village.id == village_id), None)
    if row is None:
        return None, []
    first_project = session.execute(
        sa.select(Project.seller_organisation_id, sa.func.min(Project.id)).group_by(Project.seller_organisation_id)).all()
    project_village = dict(session.execute(sa.select(Project.id, Project.village_id)).all())
    organisations = [org for org, project in first_project if project_village[project] == village_id]
    received = dict(session.execute(
        sa.select(DistributionLine.household_id, sa.func.sum(DistributionLine.amount_fen))
        .join(Household, Household.id == DistributionLine.household_id)
        .where(Household.organisation_id.in_(organisations)).group_by(DistributionLine.household_id)).all())
    households = session.scalars(sa.select(Household).where(Household.organisation_id.in_(organisations),
                                                            Household.id.in_(received)).order_by(Household.id)).all()
    return row, [HouseholdBenefit(h.masked_name, h.shares, int(received[h.id])) for h in households]
