"""Retirement of paid orders and their certificates, each step idempotent.

``retire_order``: paid → retiring; the ledger moves reserved → retired with one serial range per
batch (``ledger.retire`` returns the existing ranges if it already ran; the database refuses a
second retirement). Then the certificate is requested through the outbox.

``generate_certificate``: the signed certificate (one per order: a unique constraint) and its PDF,
then retiring → completed and the buyer's notification through the outbox.

``retire_and_certify``: what the retirement task does: both in one run, without the outbox hop between
them (the certificate follows the retirement's commit at once). If the run dies between the two, the
task's redelivery (acks late) or the re-drive of orders stuck in ``retiring`` asks for the certificate.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.certificates import pdf as certificate_pdf
from marketplace.certificates import service as certificates
from marketplace.certificates.models import Certificate
from marketplace.core import outbox
from marketplace.core.db import utcnow
from marketplace.footprint.models import Event
from marketplace.orders import history as order_notes
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry import ledger
from marketplace.registry.models import PROJECT_VILLAGE, CreditBatch, SerialRange

CERTIFICATE_TASK = "tanhui.generate_certificate"
NOTIFY_TASK = "tanhui.notify_certificate_ready"


def certificate_number_for(_sender=None, *, session: so.Session, order_id: int) -> str | None:
    """The number of the order's certificate, once there is one (answers the orders feature's question)."""
    return session.scalar(sa.select(Certificate.number).where(Certificate.order_id == order_id))


def retire_order(session: so.Session, order_id: int, *, certificate_follows: bool = False) -> str:
    """paid → retiring and the ledger's retirement, flushed (the caller commits); "retired" when the order's
    units are retired (now or by an earlier run). The certificate is asked for through the outbox, unless
    ``certificate_follows`` (the caller draws it next, see ``retire_and_certify``)."""
    order = orders.lock(session, order_id)
    if order is None:
        return "unknown order"
    if order.status == "paid":
        orders.transition(session, order, "retiring", note=order_notes.RETIREMENT_STARTED)
    if order.status != "retiring":
        return f"nothing to do ({order.status})"
    ledger.retire(session, order_ref=order.ref)
    if not certificate_follows:
        outbox.enqueue(session, CERTIFICATE_TASK, order_id=order.id)
    return "retired"


def retire_and_certify(session: so.Session, order_id: int) -> str:
    """The retirement task: retire (committed, releasing the order and the batch's rows), then the
    certificate and the completion (``generate_certificate``). COMMITS. Idempotent like both steps: a
    repeat finds the units retired and the certificate issued. Returns the certificate number, or why
    there was nothing to do."""
    result = retire_order(session, order_id, certificate_follows=True)
    session.commit()
    if result != "retired":
        return result
    return generate_certificate(session, order_id)


def order_ranges(session: so.Session, order: Order) -> list[SerialRange]:
    """The order's retired serial ranges, each with its batch, project and the project's place."""
    return list(session.scalars(sa.select(SerialRange).where(SerialRange.ref == order.ref,
                                                            SerialRange.kind == "retirement")
                                .order_by(SerialRange.batch_id)
                                .options(so.joinedload(SerialRange.batch).joinedload(CreditBatch.project)
                                         .options(PROJECT_VILLAGE))))


def facts_for(session: so.Session, order: Order) -> dict:
    ranges = order_ranges(session, order)
    projects: dict[int, dict] = {}
    batches: dict[int, dict] = defaultdict(dict)
    for serial_range in ranges:
        batch: CreditBatch = serial_range.batch
        project = batch.project
        path = {r.level: r.name for r in project.village.path()}
        projects.setdefault(project.id, {"name": project.name, "village": path.get("village", ""),
                                         "township": path.get("township", ""), "county": path.get("county", ""),
                                         "batches": []})
        entry = batches[project.id].setdefault(batch.id, {"serial_block": batch.serial_prefix,
                                                          "vintage": str(batch.vintage_end.year), "ranges": []})
        entry["ranges"].append((serial_range.start, serial_range.end))
    for project_id, project in projects.items():
        project["batches"] = list(batches[project_id].values())
    event_name = None
    if order.event_id:
        event = session.get(Event, order.event_id)
        event_name = event.name if event else None
    retired_at = min((r.created_at for r in ranges), default=utcnow())
    return certificates.certificate_facts(
        beneficiary=order.beneficiary, buyer=order.buyer, event_name=event_name,
        quantity_units=sum(r.units for r in ranges), retirement_reason=order.retirement_reason,
        retired_at=retired_at, projects=list(projects.values()), purpose=order.purpose,
        event_id=order.event_id if event_name else None,
        period=(order.period_start, order.period_end) if order.period_start and order.period_end else None)


def generate_certificate(session: so.Session, order_id: int) -> str:
    """Issue (or find) the order's certificate, write its PDF, complete the order. COMMITS, twice, unlike
    other services: the certificate number's counter row stays locked until the first commit, so the
    certificate is committed before its PDF is drawn (slow), and every other order's certificate waits
    only for the number, not for a drawing; the completion is then committed on its own. Only the task
    calls it."""
    order = session.get(Order, order_id, options=[so.joinedload(Order.buyer)])  # the certificate names the buyer
    if order is None or order.status not in ("retiring", "completed"):
        return "nothing to do"
    certificate = session.scalar(sa.select(Certificate).where(Certificate.order_id == order.id))
    if certificate is None:
        certificate = certificates.issue_certificate(session, order_id=order.id, facts=facts_for(session, order))
        session.commit()  # the number's counter row is locked until here
    certificate_pdf.certificate_pdf_file(session, certificate)  # drawn unless this run is a repeat
    order = orders.lock(session, order_id)
    issued = order_notes.certificate_issued(certificate.number)
    if order.status == "retiring" and orders.transition(session, order, "completed", note=issued,
                                                        completed_at=utcnow()):
        outbox.enqueue(session, NOTIFY_TASK, order_id=order.id)
    session.commit()
    return certificate.number


def redrive_stalled(session: so.Session, older_than_seconds: int) -> int:
    """Paid or retiring orders that have not moved for ``older_than_seconds``: their task was lost (a killed
    worker, a broker restart), so it is asked for again through the outbox. Flushes; the caller commits."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    stuck = session.execute(sa.select(Order.id, Order.status).where(
        Order.status.in_(("paid", "retiring")), Order.updated_at <= cutoff)).all()
    for order_id, status in stuck:
        task = orders.RETIRE_TASK if status == "paid" else CERTIFICATE_TASK
        outbox.enqueue(session, task, order_id=order_id)
    if stuck:
        # Asked again now: the next ask, if it is still stuck, comes one interval later, not every minute.
        session.execute(sa.update(Order).where(Order.id.in_([order_id for order_id, _s in stuck]))
                        .values(updated_at=utcnow()), execution_options={"synchronize_session": False})
    return len(stuck)
