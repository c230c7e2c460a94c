"""The money journal, fee rules, payees, payouts, household shares and distributions.

Money is integer fen everywhere. The journal (``money_entries``) is append-only and double-entry: every
entry moves ``amount_fen`` from one account to another, so the journal always sums to zero; a balance is
what an account received minus what it gave. Accounts:

- ``buyers``: where captured payments come from and refunds go back to (holds minus what was kept);
- ``clearing:order:<id>``: a captured payment before its split (zero once split);
- ``seller:<organisation>``: a cooperative's proceeds not yet paid out (negative after a refund that
  came after a payout: carried into its next statement);
- ``platform:fees``: the platform's service fees;
- ``payout:<id>``: a payout on its way (back to the seller when it fails);
- ``cooperative:<organisation>``: paid out to the cooperative's bank, not yet distributed;
- ``collective:<organisation>`` and ``household:<id>``: what a distribution gave the collective fund
  and each member household.

Every entry has a unique ``ref`` (what it records, e.g. ``proceeds:line:7``), so no fact is written twice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.extensions import db

ENTRY_KINDS = ("capture", "proceeds", "fee", "refund", "payout", "payout_paid", "payout_failed",
               "distribution")
PAYOUT_STATUSES = ("pending", "paid", "failed")
#: The periods a statement may cover (the ``STATEMENT_PERIOD`` setting): calendar months or quarters.
STATEMENT_KINDS = ("month", "quarter")
#: The roles of the money desk: the bureau, and the platform operator it delegates its settlement work to
#: (statements, payout batches, the bank's sheet, payouts paid or failed, fapiao records). The fee rule
#: stays the bureau's.
DESK_ROLES = ("bureau", "operator")


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MoneyEntry(db.Model):
    """One movement of money between two accounts. Never updated, never deleted (a PostgreSQL trigger)."""

    __tablename__ = "money_entries"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("debit_account <> credit_account", name="two_accounts"),
        sa.CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: what this entry records, unique: ``capture:order:5``, ``proceeds:line:7``, ``payout:3`` …
    ref: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(20))
    #: the account the money leaves …
    debit_account: so.Mapped[str] = so.mapped_column(sa.String(60), index=True)
    #: … and the one it reaches
    credit_account: so.Mapped[str] = so.mapped_column(sa.String(60), index=True)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    order_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("orders.id"), index=True)
    order_line_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("order_lines.id"))
    #: the cooperative whose balance the entry concerns, if any
    seller_organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisations.id"),
                                                                      index=True)
    payout_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("payouts.id"))
    distribution_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("distributions.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)


class FeeRule(db.Model):
    """The platform's service fee from now on: a percent of each order, at least ``floor_fen`` and at most
    ``ceiling_fen`` (never more than the order). The newest rule applies; older ones stay as history."""

    __tablename__ = "fee_rules"
    __table_args__ = (
        sa.CheckConstraint("percent >= 0 AND percent <= 100", name="percent_range"),
        sa.CheckConstraint("floor_fen >= 0", name="floor_not_negative"),
        sa.CheckConstraint("ceiling_fen IS NULL OR ceiling_fen >= floor_fen", name="ceiling_over_floor"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(5, 2))
    floor_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    #: None: no ceiling
    ceiling_fen: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class StatementRecord(db.Model):
    """A cooperative's closed statement: the period it covered (kind, first day, the day after its last) and its
    figures as they were when it closed. Written once, when the period has ended; the next one starts on
    ``ends_on``. ``money check`` proves the figures still equal the journal and that they chain."""

    __tablename__ = "statements"
    __table_args__ = (
        sa.CheckConstraint(_in("period_kind", STATEMENT_KINDS), name="period_kind"),
        sa.CheckConstraint("ends_on > starts_on", name="period_not_empty"),
        sa.CheckConstraint("closing_fen = opening_fen + sales_fen - fees_fen - refunds_fen - payouts_fen",
                           name="closing_adds_up"),
        sa.UniqueConstraint("organisation_id", "starts_on", name="uq_statements_organisation_start"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    period_kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    starts_on: so.Mapped[date] = so.mapped_column(sa.Date)
    #: the day after the period's last day (platform zone)
    ends_on: so.Mapped[date] = so.mapped_column(sa.Date)
    opening_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    sales_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    fees_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    refunds_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    payouts_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    closing_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    closed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id


class PayeeAccount(db.Model):
    """The bank account a cooperative is paid into (printed on the bank's batch-payment sheet)."""

    __tablename__ = "payee_accounts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), unique=True)
    account_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    bank_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    account_number: so.Mapped[str] = so.mapped_column(sa.String(40))
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id


class PayoutBatch(db.Model):
    """Payouts the bureau sends to the bank together (one batch-payment spreadsheet)."""

    __tablename__ = "payout_batches"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    payouts: so.Mapped[list[Payout]] = so.relationship(back_populates="batch", order_by="Payout.id")

    @property
    def reference(self) -> str:
        return f"PB{self.id:06d}"


class Payout(db.Model):
    """Money on its way from the platform to one cooperative's bank account."""

    __tablename__ = "payouts"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint(_in("status", PAYOUT_STATUSES), name="status"),
        sa.CheckConstraint("status <> 'paid' OR bank_reference IS NOT NULL", name="paid_has_reference"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payout_batches.id"), index=True)
    seller_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="pending")
    #: the payee as it was when the payout was made (the sheet the bank got)
    account_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    bank_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    account_number: so.Mapped[str] = so.mapped_column(sa.String(40))
    #: the bank's reference of the transfer once made: one transfer pays one payout
    bank_reference: so.Mapped[str | None] = so.mapped_column(sa.String(100), unique=True)
    failure_reason: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    decided_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    batch: so.Mapped[PayoutBatch] = so.relationship(back_populates="payouts")
    seller: so.Mapped[Organisation] = so.relationship()  # noqa: F821

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.seller_organisation_id == organisation_id

    @property
    def reference(self) -> str:
        """What the bank transfer quotes, so the cooperative can match it."""
        return f"THP{self.id:08d}"


class DistributionRule(db.Model):
    """How a cooperative splits what it is paid: a collective fund share and a households share (by
    share counts), together exactly 100 %. The newest rule applies."""

    __tablename__ = "distribution_rules"
    __table_args__ = (
        sa.CheckConstraint("collective_percent >= 0 AND households_percent >= 0", name="not_negative"),
        sa.CheckConstraint("collective_percent + households_percent = 100", name="sums_to_100"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    collective_percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(5, 2))
    households_percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(5, 2))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id


class Household(db.Model):
    """A member household of a cooperative and its share count (股份). Names are masked in public."""

    __tablename__ = "households"
    __table_args__ = (
        sa.CheckConstraint("shares > 0", name="shares_positive"),
        sa.UniqueConstraint("organisation_id", "name", name="uq_households_organisation_name"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    shares: so.Mapped[int] = so.mapped_column(sa.Integer)
    #: a household that left keeps its past distributions but takes no part in new ones
    active: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)


def mask_name(name: str) -> str:
    """The first character and a star for each of the others: 王建国 → 王**."""
    return name[:1] + "*" * max(len(name) - 1, 1)


class Distribution(db.Model):
    """One paid-out payout shared out by the cooperative's rule (at most one per payout)."""

    __tablename__ = "distributions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    payout_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payouts.id"), unique=True)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    collective_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: the rule as applied
    collective_percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(5, 2))
    households_percent: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(5, 2))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    lines: so.Mapped[list[DistributionLine]] = so.relationship(back_populates="distribution",
                                                               order_by="DistributionLine.id")
    payout: so.Mapped[Payout] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.organisation_id == organisation_id


class DistributionLine(db.Model):
    """One household's part of a distribution."""

    __tablename__ = "distribution_lines"
    __table_args__ = (
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        sa.UniqueConstraint("distribution_id", "household_id", name="uq_distribution_lines_household"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    distribution_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("distributions.id"), index=True)
    household_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("households.id"), index=True)
    shares: so.Mapped[int] = so.mapped_column(sa.Integer)
    amount_fen: so.Mapped[int] = so.mapped_column(sa.BigInteger)

    distribution: so.Mapped[Distribution] = so.relationship(back_populates="lines")
    household: so.Mapped[Household] = so.relationship()


FAPIAO_KINDS = ("ordinary", "special")
FAPIAO_STATUSES = ("requested", "issued")


class FapiaoRequest(db.Model):
    """A buyer's request for a fapiao (发票) for a paid order, and the fapiao once issued (recorded with its
    number, date and PDF by the selling cooperative when the order's credits are all its own, else by the
    platform: the bureau or its operator; no tax-system integration)."""

    __tablename__ = "fapiao_requests"
    __table_args__ = (sa.CheckConstraint(_in("kind", FAPIAO_KINDS), name="kind"),
                      sa.CheckConstraint(_in("status", FAPIAO_STATUSES), name="status"),
                      sa.CheckConstraint("status <> 'issued' OR fapiao_number IS NOT NULL", name="issued_has_number"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: one fapiao per order
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("orders.id"), unique=True)
    buyer_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    #: 发票抬头, 纳税人识别号 (the unified social credit code), 普票 ``ordinary`` / 专票 ``special``
    title: so.Mapped[str] = so.mapped_column(sa.String(200))
    tax_id: so.Mapped[str] = so.mapped_column(sa.String(18))
    kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    address: so.Mapped[str] = so.mapped_column(sa.String(300))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="requested")
    fapiao_number: so.Mapped[str | None] = so.mapped_column(sa.String(40), unique=True)
    issued_on: so.Mapped[date | None] = so.mapped_column(sa.Date)
    #: the issued fapiao's PDF, stored under the instance folder by a generated name
    pdf_name: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    requested_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    #: who issued it: the selling cooperative, the bureau or the operator
    issuer_organisation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("organisations.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    issued_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    issuer: so.Mapped[Organisation | None] = so.relationship(foreign_keys=[issuer_organisation_id])  # noqa: F821

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.buyer_organisation_id == organisation_id


#: The journal is append-only on PostgreSQL (the trigger function is the registry's, created before this).
MONEY_APPEND_ONLY = ("CREATE TRIGGER money_entries_append_only BEFORE UPDATE OR DELETE ON money_entries "
                     "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()")
sa.event.listen(db.metadata, "after_create", sa.DDL(MONEY_APPEND_ONLY).execute_if(dialect="postgresql"))
