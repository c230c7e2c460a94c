"""The wrap-up of reduction measures: what each achieved (recorded after the event), and the documents that
prove it (PDFs, stored as project documents are: outside the web root, under a generated name, type checked
from the content, within UPLOAD_MAX_MB).

The organiser records them in the dossier until the event is declared carbon neutral or evaluated (the
declaration and the evaluation are made over them); the assigned evaluator reads them; the public reads
them once the plan is published. Every refusal raises before anything is written or stored.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import InvalidTransition, NotFound, ValidationFailed
from marketplace.core.files import write_private_file
from marketplace.core.quantities import TONNES_OR_ZERO, decimal_to_units, parse_decimal
from marketplace.core.uploads import upload_limit_bytes, upload_limit_mb
from marketplace.footprint import service as footprint
from marketplace.footprint.models import ReductionEvidence, ReductionMeasure
from marketplace.neutrality.models import NeutralityPlan
from marketplace.neutrality.service import declaration_of, plan_for, today, visible_plan
from marketplace.registry.service import is_pdf, safe_display_name, upload_folder

#: A measure that avoided more than a million tonnes at one event is a typing slip.
ACHIEVED = replace(TONNES_OR_ZERO, maximum=Decimal(1_000_000), blank_is_missing=True,
                   missing=_l("Enter the tCO2e the measure achieved, e.g. 1.25 (0 if it achieved nothing)."),
                   negative=_l("What a measure achieved cannot be negative."),
                   too_large=_l("At most 1,000,000 t for one measure; check the figure."))
PDF = "application/pdf"


def _measure(session: so.Session, actor, event_id, measure_id) -> tuple[NeutralityPlan, ReductionMeasure]:
    """The organiser's measure of its event with a plan, while the dossier is open to changes."""
    event = footprint.own_event(session, actor, event_id)
    try:
        measure = session.get(ReductionMeasure, int(measure_id))
    except (TypeError, ValueError):
        measure = None
    if measure is None or measure.event_id != event.id:
        raise NotFound(_l("Not found."))
    plan = plan_for(session, event.id)
    if plan is None:
        raise InvalidTransition(_l("Make the neutrality plan first; reductions are accounted in it."))
    if declaration_of(session, plan.id, "self") is not None or declaration_of(session, plan.id, "evaluation"):
        raise InvalidTransition(_l("The event is declared or evaluated; its reductions and their evidence can no "
                                   "longer change."))
    return plan, measure


def record_achieved(session: so.Session, actor, event_id, measure_id, achieved_tonnes) -> ReductionMeasure:
    """What the measure achieved, in tonnes (exact, at most 4 places, zero allowed, may exceed the estimate).
    Recorded once the event has taken place; recording the same figure again changes nothing."""
    plan, measure = _measure(session, actor, event_id, measure_id)
    field = f"achieved-{measure.id}"
    units = decimal_to_units(parse_decimal(achieved_tonnes, ACHIEVED, field))
    if plan.event.starts_on > today():
        raise InvalidTransition(_l("What a measure achieved is recorded once the event has taken place."))
    if measure.achieved_units != units:
        measure.achieved_units = units
        measure.achieved_recorded_at = utcnow()
        session.flush()
    return measure


def add_evidence(session: so.Session, actor, event_id, measure_id, *, title, filename: str,
                 data: bytes) -> ReductionEvidence:
    """A PDF proving the measure, with a title people read it by."""
    _plan, measure = _measure(session, actor, event_id, measure_id)
    text = " ".join(str(title or "").split())
    if not text:
        raise ValidationFailed(_l("Give the document a title, e.g. “Electricity bill, October”."), "title")
    if len(text) > max_length(ReductionEvidence.title):
        raise ValidationFailed(_l("At most %(n)d characters.", n=max_length(ReductionEvidence.title)), "title")
    if not data:
        raise ValidationFailed(_l("Choose the document to upload."), "file")
    if len(data) > upload_limit_bytes():
        raise ValidationFailed(_l("The file is too large: at most %(mb)d MB.", mb=upload_limit_mb()), "file")
    if not is_pdf(data):
        raise ValidationFailed(_l("Only PDF documents are accepted (without a password)."), "file")
    stored = f"{secrets.token_hex(16)}.pdf"
    path = upload_folder() / stored
    tmp = path.with_suffix(".part")
    write_private_file(tmp, data)
    os.replace(tmp, path)
    document = ReductionEvidence(measure_id=measure.id, title=text, original_name=safe_display_name(filename),
                                 content_type=PDF, stored_name=stored, size_bytes=len(data),
                                 sha256=hashlib.sha256(data).hexdigest(), uploaded_by_id=actor.id)
    session.add(document)
    session.flush()
    return document


def _document_of_event(session: so.Session, event_id: int, evidence_id) -> ReductionEvidence:
    try:
        wanted = int(evidence_id)
    except (TypeError, ValueError):
        wanted = None
    document = session.scalar(sa.select(ReductionEvidence).join(ReductionMeasure)
                              .where(ReductionEvidence.id == wanted, ReductionMeasure.event_id == event_id)
                              .options(so.joinedload(ReductionEvidence.measure))) if wanted else None
    if document is None:
        raise NotFound(_l("Not found."))
    return document


def organiser_document(session: so.Session, actor, event_id, evidence_id) -> ReductionEvidence:
    """A document of the actor's own event (another organisation's, or another event's: 404)."""
    event = footprint.own_event(session, actor, event_id)
    return _document_of_event(session, event.id, evidence_id)


def evaluator_document(session: so.Session, actor, plan_id, evidence_id) -> ReductionEvidence:
    """A document of an event the actor's organisation evaluates (scoped as the dossier is)."""
    plan = visible_plan(session, actor, plan_id)
    return _document_of_event(session, plan.event_id, evidence_id)


def public_document(session: so.Session, event_id, evidence_id) -> ReductionEvidence:
    """A document of a published plan's event (unpublished: 404)."""
    plan = plan_for(session, int(event_id))
    if plan is None or plan.published_at is None:
        raise NotFound(_l("Not found."))
    return _document_of_event(session, plan.event_id, evidence_id)


def document_path(document: ReductionEvidence) -> Path:
    return upload_folder() / document.stored_name
