"""Receipts and invoices: the payment receipt (收款凭证) of a paid order, the payment notice (付款通知书) of
a bank transfer, and the fapiao (发票) request and record flow (no tax-system integration).

The two PDFs are printed in Chinese (what a Chinese finance office files), with the CJK font; their
amounts come from the order and, for the receipt, from the money journal's capture.
"""

from __future__ import annotations

import io
import re
import secrets
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from marketplace.accounts.audit import record_event
from marketplace.accounts.credit_code import is_valid_credit_code, normalise_credit_code
from marketplace.core.access import Actor
from marketplace.core.db import max_length, utcnow
from marketplace.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from marketplace.core.i18n import local_time, platform_zone
from marketplace.core.ids import is_id
from marketplace.core.pdf_fonts import cjk_font
from marketplace.core.quantities import display_cny, display_tonnes, fen_to_cny
from marketplace.core.uploads import upload_limit_bytes, upload_limit_mb
from marketplace.orders.models import ORDER_LINES_SHOWN, Order, OrderLine
from marketplace.registry.models import Listing
from marketplace.settlement.models import DESK_ROLES, FAPIAO_KINDS, FapiaoRequest, MoneyEntry

PAID_STATUSES = ("paid", "retiring", "completed")
PRINT_LOCALE = "zh_CN"


def _text(raw, column, field: str, missing) -> str:
    text = " ".join(str(raw or "").split())
    if not text:
        raise ValidationFailed(missing, field)
    if len(text) > max_length(column):
        raise ValidationFailed(_l("At most %(n)s characters.", n=max_length(column)), field)
    return text


# --- fapiao ---------------------------------------------------------------------------------------------

def request_fapiao(session: so.Session, order: Order, *, actor: Actor, title: str, tax_id: str, kind: str,
                   address: str) -> FapiaoRequest:
    """The buyer asks for a fapiao for its paid order. Asking again before it is issued corrects the
    request; after it is issued the request is refused."""
    if actor.role != "buyer" or order.buyer_organisation_id != actor.organisation_id:
        raise Forbidden(_l("Only the buyer requests a fapiao for its order."))
    if order.status not in PAID_STATUSES:
        raise InvalidTransition(_l("A fapiao is issued for a paid order only."))
    values = {"title": _text(title, FapiaoRequest.title, "title", _l("Enter the invoice title.")),
              "address": _text(address, FapiaoRequest.address, "address", _l("Enter the address."))}
    code = normalise_credit_code(tax_id or "")
    if not is_valid_credit_code(code):
        raise ValidationFailed(_l("Enter the 18-character unified social credit code (taxpayer number)."), "tax_id")
    if kind not in FAPIAO_KINDS:
        raise ValidationFailed(_l("Choose the kind of fapiao."), "kind")
    request = session.scalar(sa.select(FapiaoRequest).where(FapiaoRequest.order_id == order.id).with_for_update())
    if request is not None and request.status == "issued":
        raise InvalidTransition(_l("The fapiao has been issued already."))
    if request is None:
        request = FapiaoRequest(order_id=order.id, buyer_organisation_id=order.buyer_organisation_id,
                                requested_by_id=actor.id, status="requested")
        session.add(request)
    request.tax_id, request.kind = code, kind
    for key, value in values.items():
        setattr(request, key, value)
    session.flush()
    return request


def fapiao_folder() -> Path:
    folder = Path(current_app.instance_path) / "fapiao"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def order_sellers(session: so.Session, order_id: int) -> set[int]:
    """The cooperatives whose credits the order bought."""
    return set(session.scalars(sa.select(Listing.seller_organisation_id).join(OrderLine, OrderLine.listing_id == Listing.id)
                               .where(OrderLine.order_id == order_id).distinct()))


def sold_by(organisation_id: int):
    """SQL condition: the fapiao request is for an order with credits of this cooperative."""
    return FapiaoRequest.order_id.in_(sa.select(OrderLine.order_id).join(Listing, Listing.id == OrderLine.listing_id)
                                      .where(Listing.seller_organisation_id == organisation_id))


def seller_request(session: so.Session, request_id, organisation_id: int) -> FapiaoRequest:
    """A fapiao request for one of the cooperative's sales; another cooperative's request is NotFound."""
    if not str(request_id).isdigit() or not is_id(int(request_id)):
        raise NotFound(_l("Not found."))
    row = session.scalar(sa.select(FapiaoRequest).where(FapiaoRequest.id == int(request_id), sold_by(organisation_id)))
    if row is None:
        raise NotFound(_l("Not found."))
    return row


def may_record(session: so.Session, request: FapiaoRequest, actor: Actor) -> bool:
    """Who issues the fapiao: the selling cooperative when every credit of the order is its own; an order with
    credits of several cooperatives is one payment to the platform, so the platform (the bureau or its
    operator) issues its one fapiao. The money desk may always record it."""
    if actor.role in DESK_ROLES:
        return True
    return actor.role == "seller" and order_sellers(session, request.order_id) == {actor.organisation_id}


#: A fapiao number: the 8-digit number of a paper or older electronic fapiao (with its 10- or 12-digit code in
#: front, if given), or the 20 digits of a fully digital one (数电发票).
FAPIAO_NUMBER = re.compile(r"\d{8,20}")


def record_fapiao(session: so.Session, request: FapiaoRequest, *, actor: Actor, number: str, issued_on: date | None,
                  pdf: bytes | None) -> FapiaoRequest:
    """The issuer records the fapiao: number (digits, unique), date (not in the future, not before the order
    was paid) and PDF (within the upload limit). The same number again changes nothing; anything refused
    leaves the request as it was."""
    if not may_record(session, request, actor):
        if actor.role == "seller":
            raise Forbidden(_l("This order has credits of several cooperatives: the platform issues its fapiao."))
        raise Forbidden(_l("Only the selling cooperative, the bureau or its platform operator records fapiao."))
    number = re.sub(r"[\s-]", "", str(number or ""))
    if not number:
        raise ValidationFailed(_l("Enter the fapiao number."), "number")
    if not FAPIAO_NUMBER.fullmatch(number):
        raise ValidationFailed(_l("A fapiao number has 8 to 20 digits."), "number")
    request = session.scalar(sa.select(FapiaoRequest).where(FapiaoRequest.id == request.id).with_for_update()
                             .execution_options(populate_existing=True))
    if request.status == "issued":
        if request.fapiao_number == number:
            return request
        raise InvalidTransition(_l("The fapiao has been issued already."))
    if issued_on is None:
        raise ValidationFailed(_l("Enter the date of issue."), "issued_on")
    zone = platform_zone()
    if issued_on > utcnow().astimezone(zone).date():
        raise ValidationFailed(_l("The date of issue cannot be in the future."), "issued_on")
    paid_at = session.scalar(sa.select(Order.paid_at).where(Order.id == request.order_id))
    if paid_at is not None and issued_on < paid_at.astimezone(zone).date():
        raise ValidationFailed(_l("The date of issue cannot be before the order was paid (%(day)s).",
                                  day=paid_at.astimezone(zone).date().isoformat()), "issued_on")
    if session.scalar(sa.select(FapiaoRequest.id).where(FapiaoRequest.fapiao_number == number)):
        raise ValidationFailed(_l("This fapiao number is already recorded."), "number")
    if pdf is not None and len(pdf) > upload_limit_bytes():
        raise ValidationFailed(_l("The file is too large: at most %(mb)d MB.", mb=upload_limit_mb()), "pdf")
    if not pdf or not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-2048:]:
        raise ValidationFailed(_l("Upload the fapiao as a PDF."), "pdf")
    name = f"{secrets.token_hex(16)}.pdf"
    request.status, request.fapiao_number, request.issued_on, request.pdf_name = "issued", number, issued_on, name
    request.recorded_by_id, request.issuer_organisation_id, request.issued_at = actor.id, actor.organisation_id, utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError:
        # the same number recorded for another request a moment ago
        session.expire(request)
        raise ValidationFailed(_l("This fapiao number is already recorded."), "number") from None
    (fapiao_folder() / name).write_bytes(pdf)
    record_event(session, actor.id, "fapiao_recorded", actor_id=actor.id, detail=f"order {request.order_id}: {number}")
    return request


def fapiao_pdf_path(request: FapiaoRequest) -> Path | None:
    return fapiao_folder() / request.pdf_name if request.pdf_name else None


# --- PDFs ---------------------------------------------------------------------------------------------

def _document(title: str, facts: list[tuple[str, str]], table: list[list[str]] | None, notes: list[str]) -> bytes:
    font = cjk_font()
    heading = ParagraphStyle("h", fontName=font, fontSize=18, leading=24, alignment=1)
    body = ParagraphStyle("b", fontName=font, fontSize=10.5, leading=15)
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                                 bottomMargin=16 * mm, title=title)
    style = TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 10),
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    story = [Paragraph(escape(title), heading), Spacer(1, 5 * mm)]
    facts_table = Table([[k, Paragraph(escape(v), body)] for k, v in facts], colWidths=[40 * mm, 134 * mm])
    facts_table.setStyle(style)
    story.append(facts_table)
    if table:
        story.append(Spacer(1, 5 * mm))
        lines = Table(table, repeatRows=1, colWidths=[80 * mm, 30 * mm, 30 * mm, 34 * mm])
        lines.setStyle(TableStyle([*style.getCommands(), ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef5f1"))]))
        story.append(lines)
    story += [Spacer(1, 5 * mm), *[Paragraph(escape(n), body) for n in notes]]
    document.build(story)
    return out.getvalue()


def _lines_table(order: Order) -> list[list[str]]:
    rows = [[_("Project"), _("Quantity (t)"), _("Price (CNY/t)"), _("Amount (CNY)")]]
    for line in order.lines:
        rows.append([line.listing.batch.project.name, display_tonnes(line.units),
                     display_cny(line.price_cny_per_tonne), display_cny(line.amount_cny)])
    rows.append([_("Total"), display_tonnes(order.quantity_units), "", display_cny(order.amount_cny)])
    return rows


def load_order(session: so.Session, order_id: int) -> Order:
    return session.scalar(sa.select(Order).where(Order.id == order_id).options(ORDER_LINES_SHOWN,
                                                                               so.joinedload(Order.buyer)))


def receipt_pdf(session: so.Session, order: Order) -> bytes:
    """收款凭证: what was received for the order, from whom, how, and when."""
    if order.status not in PAID_STATUSES:
        raise InvalidTransition(_l("A receipt is issued for a paid order only."))
    captured = session.scalar(sa.select(MoneyEntry.amount_fen).where(MoneyEntry.ref == f"capture:order:{order.id}"))
    config = current_app.config
    with force_locale(PRINT_LOCALE):
        method = _("Bank transfer") if order.payment_method == "bank_transfer" else _("Card (online)")
        facts = [(_("Receipt number"), f"SK{order.id:08d}"), (_("Payer"), order.buyer.name),
                 (_("Payee"), config["BANK_PAYEE"]), (_("Amount received"), f"¥{display_cny(fen_to_cny(captured or 0))}"),
                 (_("Payment"), method + (f" · {order.bank_reference}" if order.bank_reference else "")),
                 (_("Paid at"), local_time(order.paid_at)), (_("Order"), f"#{order.id} · {order.payment_reference}"),
                 (_("Beneficiary"), order.beneficiary)]
        return _document(_("Payment receipt"), facts, _lines_table(order),
                         [_("This receipt confirms the payment only; the fapiao is issued separately on request.")])


def payment_notice_pdf(order: Order) -> bytes:
    """付款通知书: where to transfer the amount and the reference to quote, for a bank-transfer order."""
    if order.payment_method != "bank_transfer":
        raise InvalidTransition(_l("A payment notice is for a bank transfer only."))
    config = current_app.config
    with force_locale(PRINT_LOCALE):
        facts = [(_("Payer"), order.buyer.name), (_("Payee account name"), config["BANK_PAYEE"]),
                 (_("Bank"), config["BANK_NAME"]), (_("Account number"), config["BANK_ACCOUNT"]),
                 (_("Amount"), f"¥{display_cny(order.amount_cny)}"), (_("Reference to quote"), order.payment_reference),
                 (_("Pay by"), local_time(order.reserved_until))]
        return _document(_("Payment notice"), facts, _lines_table(order),
                         [_("Quote the reference on the transfer so the bureau can match it; the credits stay reserved until the date above.")])
