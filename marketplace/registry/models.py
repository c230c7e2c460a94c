"""The credit registry: regions, projects and their documents, credit batches, the ledger and listings.

Quantities are integer units (1 unit = 0.0001 tCO2e). Serial numbers are global integers: each batch
owns the block ``[serial_start, serial_end)``; the first ``quantity - buffer`` serials are tradable,
the rest form the batch's share of the buffer pool. A retirement or cancellation owns a range
``[start, end)`` of one batch, and ranges never overlap (on PostgreSQL an exclusion constraint makes
it impossible; ``marketplace ledger check`` proves it everywhere).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.core.db import UTCDateTime, utcnow
from marketplace.core.quantities import format_serial_range
from marketplace.extensions import db

REGION_LEVELS = ("province", "city", "county", "township", "village")
PROJECT_STATUSES = ("draft", "submitted", "verified", "rejected")
DOCUMENT_KINDS = ("verification_statement", "monitoring_report", "other")
LISTING_STATUSES = ("active", "paused", "withdrawn")
#: Ledger accounts of a batch. ``issuance`` is the contra account every batch's units come from (it
#: holds minus the quantity issued); listings have their own ``listed:<id>`` and ``reserved:<id>``.
BATCH_ACCOUNTS = ("issuance", "available", "buffer", "retired", "cancelled")
LOSS_KINDS = ("fire", "pests", "logging", "other")
#: Credit schemes a batch is issued under (a label the bureau sets at issuance): 浙林碳汇, 丽水碳普惠, CCER.
CREDIT_SCHEMES = ("zhejiang_forestry", "lishui_inclusive", "ccer", "other")


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Region(db.Model):
    __tablename__ = "regions"
    __table_args__ = (sa.CheckConstraint(_in("level", REGION_LEVELS), name="level"),
                      sa.UniqueConstraint("parent_id", "name", name="uq_regions_parent_name"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    parent_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("regions.id"), index=True)
    level: so.Mapped[str] = so.mapped_column(sa.String(16))
    #: administrative division code (行政区划代码) where known
    code: so.Mapped[str | None] = so.mapped_column(sa.String(12), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    name_en: so.Mapped[str | None] = so.mapped_column(sa.String(100))

    parent: so.Mapped[Region | None] = so.relationship(remote_side=[id])

    def path(self) -> list[Region]:
        """Province first, this region last."""
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    def ancestor(self, level: str) -> Region | None:
        return next((r for r in self.path() if r.level == level), None)

    def __repr__(self) -> str:
        return f"<Region {self.level} {self.name}>"


class Project(db.Model):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint(_in("status", PROJECT_STATUSES), name="status"),
        sa.CheckConstraint("area_hectares > 0", name="area_positive"),
        sa.CheckConstraint("crediting_end > crediting_start", name="crediting_period"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    seller_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    village_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("regions.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    name_en: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    area_hectares: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    forest_type: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: e.g. CCER-14-001-V01 (造林碳汇)
    methodology: so.Mapped[str] = so.mapped_column(sa.String(100))
    crediting_start: so.Mapped[date]
    crediting_end: so.Mapped[date]
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="", info={"max_length": 5000})
    #: free-text location (small-class numbers, coordinates)
    location: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="draft", index=True)
    #: the bureau's note on its last decision
    review_note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    verified_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    village: so.Mapped[Region] = so.relationship()
    seller: so.Mapped[Organisation] = so.relationship()  # noqa: F821

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.seller_organisation_id == organisation_id

    @staticmethod
    def code_for(project_id: int) -> str:
        """Readable project code used in serial numbers."""
        return f"P{project_id:05d}"

    @property
    def code(self) -> str:
        return self.code_for(self.id)

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.status} {self.name}>"


class ProjectDocument(db.Model):
    __tablename__ = "project_documents"
    __table_args__ = (sa.CheckConstraint(_in("kind", DOCUMENT_KINDS), name="kind"),
                      sa.CheckConstraint("size_bytes > 0", name="size_positive"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    project_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("projects.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    #: the uploader's file name, for display only (never used as a path)
    original_name: so.Mapped[str] = so.mapped_column(sa.String(255))
    #: generated name under UPLOAD_FOLDER
    stored_name: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    size_bytes: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    uploaded_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    project: so.Mapped[Project] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.project_id.in_(sa.select(Project.id).where(Project.seller_organisation_id == organisation_id))


class ProjectTransition(db.Model):
    """Every status change of a project, with who made it and why."""

    __tablename__ = "project_transitions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    project_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("projects.id"), index=True)
    from_status: so.Mapped[str] = so.mapped_column(sa.String(16))
    to_status: so.Mapped[str] = so.mapped_column(sa.String(16))
    actor_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="", info={"max_length": 2000})
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    actor: so.Mapped[User] = so.relationship()  # noqa: F821


class CreditBatch(db.Model):
    """An issuance: verified reductions of one project for one monitoring period (vintage)."""

    __tablename__ = "credit_batches"
    __table_args__ = (
        sa.CheckConstraint("quantity_units > 0", name="quantity_positive"),
        sa.CheckConstraint("buffer_units >= 0 AND buffer_units < quantity_units", name="buffer_share"),
        sa.CheckConstraint("serial_end - serial_start = quantity_units", name="serial_block"),
        sa.CheckConstraint("next_serial >= serial_start AND next_serial <= serial_end - buffer_units",
                           name="next_serial_in_tradable"),
        sa.CheckConstraint("next_buffer_serial >= serial_end - buffer_units AND next_buffer_serial <= serial_end",
                           name="next_buffer_serial_in_buffer"),
        sa.CheckConstraint("vintage_end >= vintage_start", name="vintage"),
        sa.CheckConstraint(_in("scheme", CREDIT_SCHEMES), name="scheme"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    project_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("projects.id"), index=True)
    vintage_start: so.Mapped[date]
    vintage_end: so.Mapped[date]
    quantity_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    buffer_units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    serial_start: so.Mapped[int] = so.mapped_column(sa.BigInteger, unique=True)
    serial_end: so.Mapped[int] = so.mapped_column(sa.BigInteger, unique=True)
    #: the next tradable serial to hand to a retirement (advances only)
    next_serial: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: the next buffer serial to hand to a cancellation (advances only)
    next_buffer_serial: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    verification_body: so.Mapped[str] = so.mapped_column(sa.String(200))
    report_reference: so.Mapped[str] = so.mapped_column(sa.String(200))
    issued_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # Labels, set by the bureau at issuance (the monitoring period is vintage_start … vintage_end).
    #: the scheme the credits are issued under: zhejiang_forestry | lishui_inclusive | ccer | other
    scheme: so.Mapped[str] = so.mapped_column(sa.String(32), default="other", server_default="other", index=True)
    #: the methodology's code, e.g. CCER-14-001 (造林碳汇), and its version, e.g. V01
    methodology_code: so.Mapped[str] = so.mapped_column(sa.String(64), default="", server_default="")
    methodology_version: so.Mapped[str] = so.mapped_column(sa.String(16), default="", server_default="")
    #: may count towards a large-event neutralisation claim (大型活动碳中和) under the MEE guideline
    event_eligible: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False, server_default=sa.false(),
                                                       index=True)

    project: so.Mapped[Project] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.project_id.in_(sa.select(Project.id).where(Project.seller_organisation_id == organisation_id))

    @property
    def methodology(self) -> str:
        """Code and version as one label, e.g. CCER-14-001-V01."""
        return "-".join(part for part in (self.methodology_code, self.methodology_version) if part)

    @property
    def serial_prefix(self) -> str:
        return f"TH-{Project.code_for(self.project_id)}-{self.vintage_end.year}"

    def serial(self, number: int) -> str:
        return f"{self.serial_prefix}-{number:012d}"

    def serial_block(self, start: int | None = None, end: int | None = None) -> str:
        """Readable block "TH-P00001-2023-000000000001…000000050000" (both ends inclusive)."""
        start = self.serial_start if start is None else start
        end = self.serial_end if end is None else end
        return format_serial_range(self.serial_prefix, start, end - 1)

    def __repr__(self) -> str:
        return f"<CreditBatch {self.id} project={self.project_id} units={self.quantity_units}>"


class LedgerBalance(db.Model):
    """The running balance of one account of one batch, changed only together with a journal entry."""

    __tablename__ = "ledger_balances"
    __table_args__ = (sa.CheckConstraint("units >= 0 OR account = 'issuance'", name="not_negative"),)

    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), primary_key=True)
    account: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)


class LedgerEntry(db.Model):
    """One balanced movement of units between two accounts of a batch. Append-only."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint("from_account <> to_account", name="distinct_accounts"),
        sa.Index("ix_ledger_entries_ref", "ref"),
    )

    id: so.Mapped[int] = so.mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), index=True)
    from_account: so.Mapped[str] = so.mapped_column(sa.String(32))
    to_account: so.Mapped[str] = so.mapped_column(sa.String(32))
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: what moved it: issue, list, unlist, reserve, release, retire, cancel
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    #: the business reference, e.g. "order:42", "listing:7", "loss:3"
    ref: so.Mapped[str] = so.mapped_column(sa.String(64))
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class SerialRange(db.Model):
    """Serials ``[start, end)`` of one batch taken out of circulation: retired for a buyer or cancelled."""

    __tablename__ = "serial_ranges"
    __table_args__ = (
        sa.CheckConstraint("start < \"end\"", name="non_empty"),
        sa.CheckConstraint("kind IN ('retirement', 'cancellation')", name="kind"),
        # One range per batch per order (or loss): a retirement cannot happen twice.
        sa.UniqueConstraint("ref", "batch_id", name="uq_serial_ranges_ref_batch"),
        sa.UniqueConstraint("batch_id", "start", name="uq_serial_ranges_batch_start"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), index=True)
    start: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    end: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    ref: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    batch: so.Mapped[CreditBatch] = so.relationship()

    @property
    def units(self) -> int:
        return self.end - self.start


class BufferLoss(db.Model):
    """A reported loss (fire, pests, logging) for which buffer units were cancelled."""

    __tablename__ = "buffer_losses"
    __table_args__ = (sa.CheckConstraint(_in("kind", LOSS_KINDS), name="kind"),
                      sa.CheckConstraint("units > 0", name="units_positive"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    reason: so.Mapped[str] = so.mapped_column(sa.Text, info={"max_length": 2000})
    actor_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    batch: so.Mapped[CreditBatch] = so.relationship()


PLEDGE_STATUSES = ("active", "released")


class Pledge(db.Model):
    """Units of a batch frozen for a green loan: the ledger's ``pledged`` account of the batch holds them
    (moved from ``available``), so they cannot be listed or sold until the pledge is released."""

    __tablename__ = "pledges"
    __table_args__ = (sa.CheckConstraint("units > 0", name="units_positive"),
                      sa.CheckConstraint("loan_amount_cny > 0", name="amount_positive"),
                      sa.CheckConstraint("term_end >= term_start", name="term_order"),
                      sa.CheckConstraint(_in("status", PLEDGE_STATUSES), name="status"),
                      sa.UniqueConstraint("bank_name", "contract_reference", name="uq_pledges_bank_contract"))

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), index=True)
    units: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    #: the lending bank and its loan contract (one pledge per contract)
    bank_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    contract_reference: so.Mapped[str] = so.mapped_column(sa.String(100))
    loan_amount_cny: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(14, 2))
    term_start: so.Mapped[date] = so.mapped_column(sa.Date)
    term_end: so.Mapped[date] = so.mapped_column(sa.Date)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="active")
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    released_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    released_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    batch: so.Mapped[CreditBatch] = so.relationship()

    @property
    def ref(self) -> str:
        return f"pledge:{self.id}"


class Listing(db.Model):
    """A seller's offer of part of a batch. Its available quantity is the ledger's ``listed:<id>``."""

    __tablename__ = "listings"
    __table_args__ = (
        sa.CheckConstraint(_in("status", LISTING_STATUSES), name="status"),
        sa.CheckConstraint("price_cny_per_tonne > 0", name="price_positive"),
        sa.CheckConstraint("min_order_units > 0", name="min_order_positive"),
        # Public listings, cheapest first: the first page reads as many as it shows, whatever the number.
        sa.Index("ix_listings_active_price", "price_cny_per_tonne", "id",
                 postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    seller_organisation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organisations.id"), index=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("credit_batches.id"), index=True)
    price_cny_per_tonne: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(12, 2))
    min_order_units: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=1)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="active", index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    batch: so.Mapped[CreditBatch] = so.relationship()

    @classmethod
    def owned_by(cls, organisation_id: int):
        return cls.seller_organisation_id == organisation_id

    @property
    def listed_account(self) -> str:
        return f"listed:{self.id}"

    @property
    def reserved_account(self) -> str:
        return f"reserved:{self.id}"


# --- loader options ------------------------------------------------------------------------------
# Relationships load lazily (SQLAlchemy's default); a query loads what its page or answer reads with
# these options, where the query is written.

#: For regions whose path() (or ancestor()) is read: every ancestor, in the same query (a village has
#: four: township, county, city, province).
REGION_ANCESTORS = (so.joinedload(Region.parent).joinedload(Region.parent).joinedload(Region.parent)
                    .joinedload(Region.parent))
#: For projects whose place is shown: the village and its ancestors.
PROJECT_VILLAGE = so.joinedload(Project.village).options(REGION_ANCESTORS)
#: For projects shown with their place and their cooperative.
PROJECT_SHOWN = (PROJECT_VILLAGE, so.joinedload(Project.seller))
#: For listings shown with their batch and project (place and cooperative).
LISTING_SHOWN = so.joinedload(Listing.batch).joinedload(CreditBatch.project).options(*PROJECT_SHOWN)


# --- PostgreSQL-only guarantees (also created by the migration) ----------------------------------

PG_LEDGER_DDL = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    # No two retirements or cancellations can ever own the same serial of a batch.
    "ALTER TABLE serial_ranges ADD CONSTRAINT ex_serial_ranges_no_overlap "
    "EXCLUDE USING gist (batch_id WITH =, int8range(start, \"end\") WITH &&)",
    # No two batches can own the same serial.
    "ALTER TABLE credit_batches ADD CONSTRAINT ex_credit_batches_no_overlap "
    "EXCLUDE USING gist (int8range(serial_start, serial_end) WITH &&)",
    # The journal and the serial ranges are append-only: no UPDATE, no DELETE (TRUNCATE by the owner stays
    # possible for tests). The refusal names the table it guards (migration 0011 replaced 0002's function).
    """CREATE OR REPLACE FUNCTION tanhui_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$""",
    "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()",
    "CREATE TRIGGER serial_ranges_append_only BEFORE UPDATE OR DELETE ON serial_ranges "
    "FOR EACH ROW EXECUTE FUNCTION tanhui_append_only()",
]


# After the whole schema exists (create_all in tests and tools; the migration runs the same DDL).
for _statement in PG_LEDGER_DDL:
    sa.event.listen(db.metadata, "after_create",
                    sa.DDL(_statement.replace("%", "%%")).execute_if(dialect="postgresql"))
