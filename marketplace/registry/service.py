"""Registry operations: regions, projects and their review, documents, issuance, buffer losses, listings.

Plain functions over a session, ids and an explicit actor. They flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import unicodedata
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import lazy_gettext as _l
from pypdf import PdfReader

from marketplace.accounts.models import User
from marketplace.core.access import scoped_select
from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from marketplace.core.files import private_folder, write_private_file
from marketplace.core.quantities import DecimalInput, parse_decimal
from marketplace.core.uploads import upload_limit_bytes, upload_limit_mb
from marketplace.registry import ledger, parcels
from marketplace.registry.models import (
    BATCH_ACCOUNTS,
    CREDIT_SCHEMES,
    DOCUMENT_KINDS,
    LOSS_KINDS,
    PROJECT_SHOWN,
    REGION_ANCESTORS,
    BufferLoss,
    CreditBatch,
    Listing,
    Project,
    ProjectDocument,
    ProjectTransition,
    Region,
)

#: project status → statuses it may move to, and who may move it
TRANSITIONS = {
    ("draft", "submitted"): "seller",
    ("rejected", "submitted"): "seller",
    ("submitted", "verified"): "bureau",
    ("submitted", "rejected"): "bureau",
}


# --- regions ------------------------------------------------------------------------------------

def ensure_region(session: so.Session, *, level: str, name: str, parent: Region | None = None,
                  code: str | None = None, name_en: str | None = None) -> Region:
    under = Region.parent_id == parent.id if parent else Region.parent_id.is_(None)
    region = session.scalar(sa.select(Region).where(under, Region.name == name))
    if region is None:
        region = Region(level=level, name=name, parent_id=parent.id if parent else None, code=code,
                        name_en=name_en)
        session.add(region)
        session.flush()
    return region


def villages(session: so.Session, *, ancestors: bool = False) -> list[Region]:
    """Every village; with ``ancestors`` their path() loaded too."""
    stmt = sa.select(Region).where(Region.level == "village").order_by(Region.code, Region.name)
    return list(session.scalars(stmt.options(REGION_ANCESTORS) if ancestors else stmt))


def counties(session: so.Session) -> list[Region]:
    return list(session.scalars(sa.select(Region).where(Region.level == "county").order_by(Region.code)))


def village_ids_under(session: so.Session, region_id: int) -> list[int]:
    """Ids of the villages in a region (the region itself if it is a village)."""
    ids, frontier = [], [region_id]
    while frontier:
        rows = session.execute(sa.select(Region.id, Region.level).where(Region.id.in_(frontier))).all()
        ids += [rid for rid, level in rows if level == "village"]
        frontier = list(session.scalars(sa.select(Region.id).where(Region.parent_id.in_(frontier))))
    return ids


# --- projects -----------------------------------------------------------------------------------

def _clean(text, column, *, required: bool = True) -> str:
    """Text for a column (its field has the column's name), stripped; at most as long as the column takes."""
    value = (text or "").strip()
    field = column.key
    if required and not value:
        raise ValidationFailed(_l("This field is required."), field)
    limit = max_length(column)
    if len(value) > limit:
        raise ValidationFailed(_l("At most %(n)s characters.", n=limit), field)
    return value


#: A project's area: 2 places (the column's scale), at most 10 million hectares.
HECTARES = DecimalInput(places=2, integer_digits=12, maximum=Decimal("10000000"),
                        malformed=_l("Enter the area in hectares, e.g. 1250.5."),
                        too_precise=_l("At most 2 decimal places."))


def parse_hectares(raw, field: str = "area_hectares") -> Decimal:
    return parse_decimal(raw, HECTARES, field)


def create_project(session: so.Session, *, actor: User, village_id: int, name: str, area_hectares,
                   forest_type: str, methodology: str, crediting_start: date, crediting_end: date,
                   description: str = "", location: str = "", name_en: str | None = None) -> Project:
    if actor.role != "seller":
        raise Forbidden(_l("Only village cooperatives register projects."))
    village = session.get(Region, village_id) if village_id else None
    if village is None or village.level != "village":
        raise ValidationFailed(_l("Choose the village of the project."), "village_id")
    if not crediting_start or not crediting_end or crediting_end <= crediting_start:
        raise ValidationFailed(_l("The crediting period must end after it starts."), "crediting_end")
    project = Project(
        seller_organisation_id=actor.organisation_id, village_id=village.id, name=_clean(name, Project.name),
        name_en=_clean(name_en, Project.name_en, required=False) or None, area_hectares=parse_hectares(area_hectares),
        forest_type=_clean(forest_type, Project.forest_type),
        methodology=_clean(methodology, Project.methodology),
        crediting_start=crediting_start, crediting_end=crediting_end,
        description=_clean(description, Project.description, required=False),
        location=_clean(location, Project.location, required=False), status="draft")
    session.add(project)
    session.flush()
    return project


#: A project the cooperative may still change: not yet with the bureau, or sent back by it.
EDITABLE_PROJECT_STATUSES = ("draft", "rejected")


def _own_editable(project: Project, actor: User) -> None:
    if actor.role != "seller" or project.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    if project.status not in EDITABLE_PROJECT_STATUSES:
        raise InvalidTransition(_l("Only a draft or rejected project can be changed; this one is %(status)s.",
                                   status=status_label(project.status)))


def update_project(session: so.Session, project: Project, *, actor: User, village_id: int, name: str,
                   area_hectares, forest_type: str, methodology: str, crediting_start: date, crediting_end: date,
                   description: str = "", location: str = "", name_en: str | None = None) -> Project:
    """Correct a draft (or rejected) project's facts, with the same checks as registering it."""
    _own_editable(project, actor)
    village = session.get(Region, village_id) if village_id else None
    if village is None or village.level != "village":
        raise ValidationFailed(_l("Choose the village of the project."), "village_id")
    if not crediting_start or not crediting_end or crediting_end <= crediting_start:
        raise ValidationFailed(_l("The crediting period must end after it starts."), "crediting_end")
    project.village_id = village.id
    project.name = _clean(name, Project.name)
    project.name_en = _clean(name_en, Project.name_en, required=False) or None
    project.area_hectares = parse_hectares(area_hectares)
    project.forest_type = _clean(forest_type, Project.forest_type)
    project.methodology = _clean(methodology, Project.methodology)
    project.crediting_start, project.crediting_end = crediting_start, crediting_end
    project.description = _clean(description, Project.description, required=False)
    project.location = _clean(location, Project.location, required=False)
    session.flush()
    return project


def delete_draft_project(session: so.Session, project: Project, *, actor: User) -> None:
    """Delete a project that never went to the bureau (a draft without history), with its documents."""
    if actor.role != "seller" or project.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    has_history = session.scalar(sa.select(sa.func.count()).select_from(ProjectTransition)
                                 .where(ProjectTransition.project_id == project.id))
    if project.status != "draft" or has_history:
        raise InvalidTransition(_l("Only a draft that was never submitted can be deleted."))
    documents = session.scalars(sa.select(ProjectDocument).where(ProjectDocument.project_id == project.id)).all()
    for document in documents:
        session.delete(document)
    session.delete(project)
    session.flush()
    for document in documents:  # the files go last: a failed flush leaves them in place
        document_path(document).unlink(missing_ok=True)


def delete_document(session: so.Session, document: ProjectDocument, *, actor: User) -> Project:
    """Remove a wrongly uploaded document of a draft or rejected project (its file too). Returns the project."""
    project = session.get(Project, document.project_id)
    _own_editable(project, actor)
    path = document_path(document)
    session.delete(document)
    session.flush()
    path.unlink(missing_ok=True)
    return project


def default_village_id(session: so.Session, actor: User, organisation_name: str) -> int | None:
    """The village a cooperative's new project most likely lies in: that of its latest project, else the
    village whose name its own name starts with (官埔垟村股份经济合作社 → 官埔垟村)."""
    latest = session.scalar(sa.select(Project.village_id).where(
        Project.seller_organisation_id == actor.organisation_id).order_by(Project.id.desc()).limit(1))
    if latest:
        return latest
    named = [v for v in villages(session) if v.name and organisation_name.startswith(v.name)]
    return max(named, key=lambda v: len(v.name)).id if named else None


def listable_batches(session: so.Session, actor: User) -> list[tuple[CreditBatch, int]]:
    """The cooperative's batches with credits left to list: (batch with its project, available units)."""
    batches = session.scalars(sa.select(CreditBatch).join(Project, CreditBatch.project_id == Project.id)
                              .where(Project.seller_organisation_id == actor.organisation_id)
                              .order_by(Project.name, CreditBatch.vintage_start)
                              .options(so.contains_eager(CreditBatch.project))).all()
    balances = ledger.batch_summaries(session, [b.id for b in batches])
    return [(b, balances[b.id]["available"]) for b in batches if balances[b.id]["available"] > 0]


def transition_project(session: so.Session, project: Project, to_status: str, *, actor: User,
                       note: str = "") -> Project:
    """Move a project along draft → submitted → verified | rejected, recording who and why."""
    who = TRANSITIONS.get((project.status, to_status))
    if who is None:
        raise InvalidTransition(_l("A %(from)s project cannot become %(to)s.", **{
            "from": status_label(project.status), "to": status_label(to_status)}))
    if actor.role != who:
        raise Forbidden(_l("You cannot make this change."))
    note = _clean(note, ProjectTransition.note, required=(to_status == "rejected"))
    if to_status == "submitted":
        count = session.scalar(sa.select(sa.func.count()).select_from(ProjectDocument)
                               .where(ProjectDocument.project_id == project.id))
        if not count:
            raise ValidationFailed(_l("Upload the verification statement or monitoring report (PDF) first."),
                                   "document")
    # The parcels must still be the project's alone (re-checked under a lock, in this transaction).
    parcels.claim_parcels(session, project, to_status)
    # Conditional update: of two reviewers deciding at once, only one wins.
    result = session.execute(sa.update(Project).where(Project.id == project.id, Project.status == project.status)
                             .values(status=to_status, review_note=note if who == "bureau" else Project.review_note,
                                     verified_at=utcnow() if to_status == "verified" else Project.verified_at),
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise InvalidTransition(_l("The project was changed by someone else; reload the page."))
    session.add(ProjectTransition(project_id=project.id, from_status=project.status, to_status=to_status,
                                  actor_id=actor.id, note=note))
    session.flush()
    session.refresh(project, ["status", "review_note", "verified_at"])  # what the UPDATE changed
    return project


def status_label(status: str) -> str:
    return str({"draft": _l("draft"), "submitted": _l("submitted"), "verified": _l("verified"),
                "rejected": _l("rejected")}.get(status, status))


# --- documents ----------------------------------------------------------------------------------

def upload_folder() -> Path:
    """The documents' folder, private to the application's user (0700; files in it are 0600)."""
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    private_folder(folder)
    return folder


def safe_display_name(filename: str | None) -> str:
    """The name a document is shown and downloaded under: the last path part, without control or format
    characters (CR/LF would break the Content-Disposition header, so the file could not be downloaded;
    bidirectional overrides disguise the extension), at most 200 characters."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in name)
    return " ".join(name.split())[:200].strip() or "document.pdf"


def is_pdf(data: bytes) -> bool:
    """Is this a PDF a reader can open: the header first, then its structure as parsed (cross-reference,
    catalogue, at least one page)? A text or HTML file with a ``%PDF-`` prefix and ``%%EOF`` is not."""
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]:
        return False
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return False
        root = reader.trailer["/Root"].get_object()
        return root.get("/Type") == "/Catalog" and len(reader.pages) >= 1
    except Exception:  # noqa: BLE001 — pypdf raises many kinds for a file that is not a PDF
        return False


def add_document(session: so.Session, project: Project, *, actor: User, kind: str, filename: str,
                 data: bytes) -> ProjectDocument:
    """Store a PDF under a generated name outside the web root. Type is checked from the content."""
    if actor.role != "seller" or project.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    if project.status not in ("draft", "rejected", "submitted"):
        raise InvalidTransition(_l("Documents of a verified project cannot be changed."))
    if kind not in DOCUMENT_KINDS:
        raise ValidationFailed(_l("Choose the kind of document."), "kind")
    if not data:
        raise ValidationFailed(_l("The file is empty."), "file")
    if len(data) > upload_limit_bytes():
        raise ValidationFailed(_l("The file is too large: at most %(mb)d MB.", mb=upload_limit_mb()), "file")
    if not is_pdf(data):
        raise ValidationFailed(_l("Only PDF documents are accepted (without a password)."), "file")
    display_name = safe_display_name(filename)
    stored = f"{secrets.token_hex(16)}.pdf"
    path = upload_folder() / stored
    tmp = path.with_suffix(".part")
    write_private_file(tmp, data)
    os.replace(tmp, path)
    document = ProjectDocument(project_id=project.id, kind=kind, original_name=display_name, stored_name=stored,
                               size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), uploaded_by_id=actor.id)
    session.add(document)
    session.flush()
    return document


def project_details(session: so.Session, project: Project) -> dict:
    """What a project's page shows: documents, history, batches and their folded balances."""
    batches = session.scalars(sa.select(CreditBatch).where(CreditBatch.project_id == project.id)
                              .order_by(CreditBatch.vintage_start)).all()
    return {
        "documents": session.scalars(sa.select(ProjectDocument).where(ProjectDocument.project_id == project.id)
                                     .order_by(ProjectDocument.id)).all(),
        "transitions": session.scalars(sa.select(ProjectTransition).where(
            ProjectTransition.project_id == project.id).order_by(ProjectTransition.id)
            .options(so.joinedload(ProjectTransition.actor))).all(),
        "batches": batches,
        "balances": ledger.batch_summaries(session, [b.id for b in batches]),
    }


def document_path(document: ProjectDocument) -> Path:
    return upload_folder() / document.stored_name


# --- issuance -----------------------------------------------------------------------------------

def buffer_share(quantity_units: int, percent: Decimal) -> int:
    """The buffer pool's share of an issuance, rounded half-up to the unit."""
    return int((Decimal(quantity_units) * Decimal(percent) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def issue_batch(session: so.Session, project: Project, *, actor: User, quantity_units: int, vintage_start: date,
                vintage_end: date, verification_body: str, report_reference: str,
                buffer_percent: Decimal | None = None, scheme: str = "other", methodology_code: str = "",
                methodology_version: str = "", event_eligible: bool = False) -> CreditBatch:
    """Issue a credit batch with its serial block and its labels; the buffer share goes to the buffer pool.

    The labels (scheme, methodology code and version, ``event_eligible``) are the bureau's to set, here
    only: they decide whether the units may count towards a large-event neutralisation claim."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau issues credits."))
    if project.status != "verified":
        raise InvalidTransition(_l("Credits can only be issued for a verified project."))
    if scheme not in CREDIT_SCHEMES:
        raise ValidationFailed(_l("Choose the scheme the credits are issued under."), "scheme")
    methodology_code = _clean(methodology_code, CreditBatch.methodology_code, required=False)
    methodology_version = _clean(methodology_version, CreditBatch.methodology_version, required=False)
    if event_eligible is not True and event_eligible is not False:
        raise ValidationFailed(_l("Say whether the credits may count towards a large-event claim."), "event_eligible")
    if not vintage_start or not vintage_end or vintage_end < vintage_start:
        raise ValidationFailed(_l("The monitoring period must end after it starts."), "vintage_end")
    if vintage_start < project.crediting_start or vintage_end > project.crediting_end:
        raise ValidationFailed(_l("The monitoring period must lie within the project's crediting period."),
                               "vintage_start")
    overlapping = session.scalar(sa.select(sa.func.count()).select_from(CreditBatch).where(
        CreditBatch.project_id == project.id, CreditBatch.vintage_start <= vintage_end,
        CreditBatch.vintage_end >= vintage_start))
    if overlapping:
        raise ValidationFailed(_l("Credits for part of this monitoring period were already issued."),
                               "vintage_start")
    percent = Decimal(buffer_percent if buffer_percent is not None else current_app.config["BUFFER_POOL_PERCENT"])
    if percent < 0 or percent >= 100:
        raise ValidationFailed(_l("The buffer share must be between 0 and 100%."), "buffer_percent")
    buffer_units = buffer_share(quantity_units, percent)
    if buffer_units >= quantity_units:
        raise ValidationFailed(_l("The quantity is too small for the buffer share."), "quantity")
    # Serial blocks are allocated one after another across the whole registry. On PostgreSQL the
    # exclusion constraint refuses overlapping blocks if two issuances race; the loser retries.
    start = (session.scalar(sa.select(sa.func.max(CreditBatch.serial_end))) or 1)
    batch = CreditBatch(project_id=project.id, vintage_start=vintage_start, vintage_end=vintage_end,
                        quantity_units=quantity_units, buffer_units=buffer_units, serial_start=start,
                        serial_end=start + quantity_units, next_serial=start,
                        next_buffer_serial=start + quantity_units - buffer_units,
                        verification_body=_clean(verification_body, CreditBatch.verification_body),
                        report_reference=_clean(report_reference, CreditBatch.report_reference), issued_by_id=actor.id,
                        scheme=scheme, methodology_code=methodology_code, methodology_version=methodology_version,
                        event_eligible=event_eligible)
    session.add(batch)
    session.flush()
    ledger.open_accounts(session, batch.id, BATCH_ACCOUNTS)
    ref = f"batch:{batch.id}"
    ledger.move(session, batch_id=batch.id, from_account="issuance", to_account="available",
                units=quantity_units - buffer_units, kind="issue", ref=ref, actor_id=actor.id)
    if buffer_units:
        ledger.move(session, batch_id=batch.id, from_account="issuance", to_account="buffer", units=buffer_units,
                    kind="issue", ref=ref, actor_id=actor.id)
    return batch


def report_loss(session: so.Session, batch: CreditBatch, *, actor: User, kind: str, units: int,
                reason: str) -> BufferLoss:
    """Cancel buffer units against a reported loss (fire, pests, logging)."""
    if actor.role != "bureau":
        raise Forbidden(_l("Only the bureau cancels buffer units."))
    if kind not in LOSS_KINDS:
        raise ValidationFailed(_l("Choose the kind of loss."), "kind")
    loss = BufferLoss(batch_id=batch.id, kind=kind, units=units, reason=_clean(reason, BufferLoss.reason),
                      actor_id=actor.id)
    session.add(loss)
    session.flush()
    ledger.cancel_buffer(session, batch_id=batch.id, units=units, ref=f"loss:{loss.id}", actor_id=actor.id)
    return loss


# --- listings -----------------------------------------------------------------------------------

def create_listing(session: so.Session, batch: CreditBatch, *, actor: User, units: int, price_cny_per_tonne: Decimal,
                   min_order_units: int = 1) -> Listing:
    """Offer part of a batch's available units at a price; the units move available → listed."""
    if actor.role != "seller" or batch.project.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))
    if min_order_units <= 0 or min_order_units > units:
        raise ValidationFailed(_l("The minimum order must be between 0.0001 t and the quantity listed."),
                               "min_order")
    listing = Listing(seller_organisation_id=actor.organisation_id, batch_id=batch.id,
                      price_cny_per_tonne=price_cny_per_tonne, min_order_units=min_order_units, status="active")
    session.add(listing)
    session.flush()
    ledger.open_accounts(session, batch.id, (listing.listed_account, listing.reserved_account))
    ledger.move(session, batch_id=batch.id, from_account="available", to_account=listing.listed_account,
                units=units, kind="list", ref=f"listing:{listing.id}", actor_id=actor.id,
                message=_l("The batch has fewer available units than this quantity."))
    return listing


def _own_listing(listing: Listing, actor: User) -> None:
    if actor.role != "seller" or listing.seller_organisation_id != actor.organisation_id:
        raise NotFound(_l("Not found."))


LISTING_TRANSITIONS = {"pause": ("active", "paused"), "resume": ("paused", "active"),
                       "withdraw": (None, "withdrawn")}


def change_listing(session: so.Session, listing: Listing, action: str, *, actor: User) -> Listing:
    """Pause, resume or withdraw. Withdrawing returns the unreserved units to the batch; units an order
    holds stay reserved until the order completes or lets them go (then they return too)."""
    _own_listing(listing, actor)
    if action not in LISTING_TRANSITIONS:
        raise ValidationFailed(_l("Unknown action."), "action")
    required, target = LISTING_TRANSITIONS[action]
    if listing.status == "withdrawn" or (required and listing.status != required):
        raise InvalidTransition(_l("This listing cannot do that now."))
    result = session.execute(sa.update(Listing).where(Listing.id == listing.id, Listing.status == listing.status)
                             .values(status=target, updated_at=utcnow()),
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        raise InvalidTransition(_l("The listing was changed by someone else; reload the page."))
    if target == "withdrawn":
        # Lock the listing's balance row; whatever is left unreserved goes back to the batch.
        units = session.scalar(sa.select(ledger.LedgerBalance.units).where(
            ledger.LedgerBalance.batch_id == listing.batch_id,
            ledger.LedgerBalance.account == listing.listed_account).with_for_update())
        if units:
            ledger.move(session, batch_id=listing.batch_id, from_account=listing.listed_account,
                        to_account="available", units=units, kind="unlist", ref=f"listing:{listing.id}",
                        actor_id=actor.id)
    session.refresh(listing, ["status", "updated_at"])  # what the UPDATE changed
    return listing


def listing_status(listing: Listing, available_units: int) -> str:
    """What buyers see: an active listing with nothing left is sold out."""
    if listing.status == "active" and available_units == 0:
        return "sold_out"
    return listing.status


def scheme_label(scheme: str) -> str:
    return str({"zhejiang_forestry": _l("Zhejiang forestry carbon sink"),
                "lishui_inclusive": _l("Lishui carbon inclusion"), "ccer": _l("CCER"),
                "other": _l("Other")}.get(scheme, scheme))


def label_filters(stmt: sa.Select, *, scheme: str | None = None, event_eligible: bool | None = None) -> sa.Select:
    """Narrow a statement that joins CreditBatch to the batches with these labels."""
    if scheme:
        stmt = stmt.where(CreditBatch.scheme == scheme)
    if event_eligible is not None:
        stmt = stmt.where(CreditBatch.event_eligible.is_(event_eligible))
    return stmt


def public_listings_query(*, county_id: int | None = None, village_id: int | None = None,
                          vintage: int | None = None, session: so.Session | None = None,
                          places: bool = False, scheme: str | None = None,
                          event_eligible: bool | None = None) -> sa.Select:
    """Active listings with units left, with their batch and project; with ``places`` also the project's
    seller, village and the village's ancestors (what the registry shows of a listing). ``scheme`` and
    ``event_eligible`` filter by the batch's labels."""
    balance = ledger.LedgerBalance
    project = so.contains_eager(Listing.batch).contains_eager(CreditBatch.project)
    if places:
        project = project.options(*PROJECT_SHOWN)
    # The balance as a correlated lookup (its primary key), not a join on an expression the planner cannot
    # estimate: listings are then read in price order from ix_listings_active_price and a LIMIT stops early.
    units = (sa.select(balance.units)
             .where(balance.batch_id == Listing.batch_id,
                    balance.account == sa.literal("listed:") + sa.cast(Listing.id, sa.String))
             .scalar_subquery())
    stmt = (sa.select(Listing, units.label("units"))
            .join(CreditBatch, CreditBatch.id == Listing.batch_id)
            .join(Project, Project.id == CreditBatch.project_id)
            .options(project)
            .where(Listing.status == "active", units > 0)
            .order_by(Listing.price_cny_per_tonne, Listing.id))
    if village_id:
        stmt = stmt.where(Project.village_id == village_id)
    elif county_id and session is not None:
        stmt = stmt.where(Project.village_id.in_(village_ids_under(session, county_id)))
    if vintage:
        stmt = stmt.where(sa.extract("year", CreditBatch.vintage_end) == vintage)
    return label_filters(stmt, scheme=scheme, event_eligible=event_eligible)


def listings_of(session: so.Session, actor) -> list[tuple[Listing, int, int, str]]:
    """The actor's organisation's listings, newest first: (listing, available, reserved, status)."""
    rows = session.scalars(scoped_select(Listing, actor, bureau_sees_all=False).order_by(Listing.id.desc())
                           .options(so.joinedload(Listing.batch).joinedload(CreditBatch.project))).all()
    available = ledger.listings_available_units(session, [r.id for r in rows])
    reserved = ledger.listings_reserved_units(session, [r.id for r in rows])
    return [(r, available[r.id], reserved[r.id], listing_status(r, available[r.id])) for r in rows]
