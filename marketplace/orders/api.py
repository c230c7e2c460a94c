"""Orders API: place (idempotent), read, cancel; the bureau confirms bank transfers."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, jsonify, url_for

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.core import api_idempotency as idempotency
from marketplace.core.access import get_scoped
from marketplace.core.api import Blueprint
from marketplace.core.api_fields import Id
from marketplace.core.dates import FIRST_DAY, LAST_DAY
from marketplace.core.db import reload
from marketplace.core.errors import InsufficientCredits
from marketplace.core.idempotency import act_once
from marketplace.core.quantities import format_cny, format_tonnes
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import ORDER_LINES_SHOWN, RETIREMENT_PURPOSES, Order

blp = Blueprint("api_orders", __name__, url_prefix="/api/v1", description="Orders and payments")


def order_json(order: Order | orders.WrittenOrder, *, new: bool = False,
               places: dict[int, tuple[str, str]] | None = None) -> dict:
    """The order answer, with exactly ``OrderOut``'s fields (tests/test_order_answer.py dumps it through the
    schema and compares). Reads and replays return it through the schema; a new order's 201 sends it as
    built. ``new``: just placed (an ``orders.WrittenOrder``), so it has no certificate yet (no query).
    ``places``: listing id → (project, village) names, when known already (a new order's lines)."""
    places = places or {}
    data = {
        "id": order.id, "status": order.status, "quantity_tonnes": format_tonnes(order.quantity_units),
        "amount_cny": format_cny(order.amount_cny), "event_id": order.event_id, "beneficiary": order.beneficiary,
        "retirement_reason": order.retirement_reason, "purpose": order.purpose,
        "period_start": order.period_start.isoformat() if order.period_start else None,
        "period_end": order.period_end.isoformat() if order.period_end else None,
        "payment_method": order.payment_method,
        "reserved_until": order.reserved_until.isoformat() if order.reserved_until else None,
        "created_at": order.created_at.isoformat(), "refund_status": order.refund_status,
        "lines": [_line_json(line, places.get(line.listing_id)) for line in order.lines],
        "certificate_number": None if new else certificate_number(order),
    }
    if order.payment_method == "bank_transfer":
        data["payment"] = {"method": "bank_transfer", "reference": order.payment_reference,
                           "amount_cny": format_cny(order.amount_cny),
                           "payee": current_app.config["BANK_PAYEE"], "account": current_app.config["BANK_ACCOUNT"],
                           "bank": current_app.config["BANK_NAME"]}
    else:
        data["payment"] = {"method": "card",
                           "pay_url": url_for("orders.pay", order_id=order.id, _external=True)}
    return data


def _line_json(line, place: tuple[str, str] | None) -> dict:
    project, village = place or (line.listing.batch.project.name, line.listing.batch.project.village.name)
    return {"listing_id": line.listing_id, "batch_id": line.batch_id, "project": project, "village": village,
            "quantity_tonnes": format_tonnes(line.units), "price_cny_per_tonne": format_cny(line.price_cny_per_tonne),
            "amount_cny": format_cny(line.amount_cny)}


def certificate_number(order: Order) -> str | None:
    """Filled in by the certificates feature once the order is completed."""
    return orders.certificate_number(db.session, order)


PURPOSE_FIELD = {"description": "event (大型活动碳中和) | zero_carbon_org (零碳机构) | ecological_compensation "
                                 "(生态损害赔偿) | voluntary (自愿抵消) | other"}


class LineOut(ma.Schema):
    listing_id = ma.fields.Integer()
    batch_id = ma.fields.Integer()
    project = ma.fields.String()
    village = ma.fields.String()
    quantity_tonnes = ma.fields.String()
    price_cny_per_tonne = ma.fields.String()
    amount_cny = ma.fields.String()


class PaymentOut(ma.Schema):
    method = ma.fields.String(metadata={"description": "card | bank_transfer"})
    pay_url = ma.fields.String(metadata={"description": "card: the page where the buyer pays"})
    reference = ma.fields.String(metadata={"description": "bank transfer: what the transfer must quote",
                                           "example": "TH00000042"})
    amount_cny = ma.fields.String(metadata={"description": "bank transfer: the amount to transfer"})
    payee = ma.fields.String(metadata={"description": "bank transfer: the account holder"})
    account = ma.fields.String(metadata={"description": "bank transfer: the account number"})
    bank = ma.fields.String(metadata={"description": "bank transfer: the bank"})


class OrderOut(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "pending_payment | paid | retiring | completed | cancelled "
                                                       "| expired | refunded"})
    quantity_tonnes = ma.fields.String(metadata={"example": "175.4020"})
    amount_cny = ma.fields.String(metadata={"example": "6314.47"})
    event_id = ma.fields.Integer(allow_none=True)
    beneficiary = ma.fields.String()
    retirement_reason = ma.fields.String()
    purpose = ma.fields.String(metadata=PURPOSE_FIELD)
    period_start = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-10-30", "description": "first day of the period the retirement covers"})
    period_end = ma.fields.String(allow_none=True, metadata={
        "format": "date", "example": "2026-11-01", "description": "last day of the period (inclusive)"})
    payment_method = ma.fields.String()
    reserved_until = ma.fields.String(allow_none=True)
    created_at = ma.fields.String()
    refund_status = ma.fields.String(metadata={"description": "none | pending | done"})
    lines = ma.fields.List(ma.fields.Nested(LineOut))
    payment = ma.fields.Nested(PaymentOut)
    certificate_number = ma.fields.String(allow_none=True)


class OrderIn(ma.Schema):
    quantity_tonnes = ma.fields.Raw(metadata={"type": "string", "example": "175.402",
                                              "description": "omit with event_id to order the event's footprint"})
    event_id = Id()
    listing_id = Id(metadata={"description": "omit to allocate across listings, cheapest first"})
    prefer_county_id = Id(metadata={"description": "allocation: this county's listings first"})
    eligible_only = ma.fields.Boolean(load_default=False, metadata={
        "description": "only credits eligible for large-event neutralisation (counted towards an event's claim)"})
    payment_method = ma.fields.String(required=True, validate=ma.validate.OneOf(["card", "bank_transfer"]))
    beneficiary = ma.fields.String(required=True, metadata={"description": "printed on the certificate; public"})
    retirement_reason = ma.fields.String(required=True)
    purpose = ma.fields.String(validate=ma.validate.OneOf(RETIREMENT_PURPOSES), metadata={
        **PURPOSE_FIELD, "description": PURPOSE_FIELD["description"] + "; default: event with event_id, else voluntary"})
    period_start = ma.fields.Date(validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY), metadata={
        "example": "2026-10-30", "description": "first day of the period the retirement covers (with period_end, "
                                               "or neither: an order for an event covers the event's days)"})
    period_end = ma.fields.Date(validate=ma.validate.Range(min=FIRST_DAY, max=LAST_DAY), metadata={
        "example": "2026-11-01", "description": "last day of the period, inclusive; not before period_start"})


class ReferenceIn(ma.Schema):
    reference = ma.fields.String(required=True, metadata={"description": "the bank's transfer reference"})


@blp.route("/orders", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@token_required("buyer")
@blp.arguments(OrderIn())  # an instance: a class would be instantiated (its fields deep-copied) per request
@blp.response(201, OrderOut)
@blp.alt_response(200, schema=OrderOut, description="the order an earlier request with this key created")
def create_order(data):
    """Place an order: reserve the units now (15 minutes for card, days for bank transfer)."""
    actor = api_user()
    key = idempotency.request_key()
    fingerprint = idempotency.fingerprint(data)
    request = orders.OrderRequest(
        payment_method=data["payment_method"], beneficiary=data["beneficiary"],
        retirement_reason=data["retirement_reason"], quantity=data.get("quantity_tonnes"),
        event_id=data.get("event_id"), listing_id=data.get("listing_id"),
        prefer_county_id=data.get("prefer_county_id"), purpose=data.get("purpose"),
        eligible_only=data["eligible_only"], period_start=data.get("period_start"),
        period_end=data.get("period_end"))
    # A new key is the common case, and the order's unique key finds a used one: no lookup first.
    outcome = act_once(
        db.session, look_first=False,
        earlier=lambda: key and orders.find_by_idempotency_key(db.session, actor.organisation_id, key),
        claim=lambda: orders.place_request(db.session, actor=actor, request=request, idempotency_key=key,
                                           request_fingerprint=fingerprint))
    if outcome.repeated:
        if outcome.earlier.request_fingerprint != fingerprint:
            raise idempotency.key_reused()
        return order_json(reload(db.session, outcome.earlier, ORDER_LINES_SHOWN)), 200
    db.session.commit()
    placed = outcome.done
    # Sent as built: the same fields as OrderOut (a test holds them equal), without dumping them again.
    return jsonify(order_json(placed.written, new=True, places=placed.places)), 201


@blp.route("/orders/<int:order_id>")
@blp.doc(security=BEARER)
@blp.response(200, OrderOut)
@token_required("buyer", "bureau")
def get_order(order_id: int):
    """An order of yours (the bureau sees every order)."""
    return order_json(get_scoped(db.session, Order, order_id, api_user(), options=[ORDER_LINES_SHOWN]))


@blp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@blp.doc(security=BEARER)
@blp.response(200, OrderOut)
@token_required("buyer")
def cancel_order(order_id: int):
    """Release the reservation; refund if paid and not yet retired. Repeating it changes nothing."""
    order = get_scoped(db.session, Order, order_id, api_user(), bureau_sees_all=False)
    orders.cancel(db.session, order, actor=api_user())
    db.session.commit()
    return order_json(reload(db.session, order, ORDER_LINES_SHOWN))


@blp.route("/orders/<int:order_id>/confirm-bank-transfer", methods=["POST"])
@blp.doc(security=BEARER)
@token_required("bureau")
@blp.arguments(ReferenceIn)
@blp.response(200, OrderOut)
def confirm_bank_transfer(data, order_id: int):
    """The money arrived: the order is paid and its retirement starts."""
    order = get_scoped(db.session, Order, order_id, api_user())
    outcome = orders.confirm_bank_transfer(db.session, order, actor=api_user(), reference=data["reference"])
    db.session.commit()  # paid, or the refund of a transfer that came too late: kept either way
    if outcome is orders.TransferOutcome.REFUND_NEEDED:
        raise InsufficientCredits(orders.LATE_TRANSFER_MESSAGE)
    return order_json(reload(db.session, order, ORDER_LINES_SHOWN))
