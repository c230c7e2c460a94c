"""Orders API: place (idempotent), read, cancel; the bureau confirms bank transfers."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, jsonify, url_for
from flask_babel import lazy_gettext as _l
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError, OperationalError

from marketplace.accounts.api_auth import BEARER, api_user, token_required
from marketplace.core import api_idempotency as idempotency
from marketplace.core.access import get_scoped
from marketplace.core.api_fields import Id
from marketplace.core.db import reload
from marketplace.core.errors import DomainError, ValidationFailed
from marketplace.core.quantities import format_cny, format_tonnes, parse_tonnes
from marketplace.core.signals import ask
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.orders import service as orders
from marketplace.orders.models import ORDER_LINES_SHOWN, Order
from marketplace.orders.signals import certificate_number_wanted

blp = Blueprint("api_orders", __name__, url_prefix="/api/v1", description="Orders and payments")

#: Attempts for an order that loses a race for allocated units, or a PostgreSQL deadlock/serialisation retry.
PLACE_ATTEMPTS = 3


def order_json(order: Order, *, new: bool = False, places: dict[int, tuple[str, str]] | None = None) -> dict:
    """The order as the API shows it; ``new``: just placed, so it has no certificate yet (no query).
    ``places``: listing id → (project, village) names, when known already (a new order's lines)."""
    places = places or {}
    data = {
        "id": order.id, "status": order.status, "quantity_tonnes": format_tonnes(order.quantity_units),
        "amount_cny": format_cny(order.amount_cny), "event_id": order.event_id, "beneficiary": order.beneficiary,
        "retirement_reason": order.retirement_reason, "payment_method": order.payment_method,
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
    return ask(certificate_number_wanted, session=db.session, order_id=order.id)


class LineOut(ma.Schema):
    listing_id = ma.fields.Integer()
    batch_id = ma.fields.Integer()
    project = ma.fields.String()
    village = ma.fields.String()
    quantity_tonnes = ma.fields.String()
    price_cny_per_tonne = ma.fields.String()
    amount_cny = ma.fields.String()


class OrderOut(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "pending_payment | paid | retiring | completed | cancelled "
                                                       "| expired | refunded"})
    quantity_tonnes = ma.fields.String(metadata={"example": "175.4020"})
    amount_cny = ma.fields.String(metadata={"example": "6314.47"})
    event_id = ma.fields.Integer(allow_none=True)
    beneficiary = ma.fields.String()
    retirement_reason = ma.fields.String()
    payment_method = ma.fields.String()
    reserved_until = ma.fields.String(allow_none=True)
    created_at = ma.fields.String()
    refund_status = ma.fields.String(metadata={"description": "none | pending | done"})
    lines = ma.fields.List(ma.fields.Nested(LineOut))
    payment = ma.fields.Dict(metadata={"description": "card: pay_url; bank_transfer: reference, amount, payee, account"})
    certificate_number = ma.fields.String(allow_none=True)


class OrderIn(ma.Schema):
    quantity_tonnes = ma.fields.Raw(metadata={"type": "string", "example": "175.402",
                                              "description": "omit with event_id to order the event's footprint"})
    event_id = Id()
    listing_id = Id(metadata={"description": "omit to allocate across listings, cheapest first"})
    prefer_county_id = Id(metadata={"description": "allocation: this county's listings first"})
    payment_method = ma.fields.String(required=True, validate=ma.validate.OneOf(["card", "bank_transfer"]))
    beneficiary = ma.fields.String(required=True, metadata={"description": "printed on the certificate; public"})
    retirement_reason = ma.fields.String(required=True)


class ReferenceIn(ma.Schema):
    reference = ma.fields.String(required=True, metadata={"description": "the bank's transfer reference"})


def _units_for(data: dict, actor) -> tuple[int, int | None]:
    event_id = data.get("event_id")
    raw = data.get("quantity_tonnes")
    if event_id is not None:
        event = footprint.visible_event(db.session, actor, event_id)
        if raw is not None:
            return parse_tonnes(raw, "quantity_tonnes"), event.id
        units = footprint.event_total_units(db.session, event.id)
        if units <= 0:
            raise ValidationFailed(_l("The event has no footprint yet; add its activities first."), "event_id")
        return units, event.id
    if raw is None:
        raise ValidationFailed(_l("Give quantity_tonnes, or event_id to order an event's footprint."),
                               "quantity_tonnes")
    return parse_tonnes(raw, "quantity_tonnes"), None


def commit_keeping_state() -> None:
    """Commit without expiring what the session holds: the order just written is answered from memory
    instead of being read back (every value it has was set here; none comes from the database)."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def _replay(existing: Order, fingerprint: str):
    if existing.request_fingerprint != fingerprint:
        raise idempotency.key_reused()
    return order_json(reload(db.session, existing, ORDER_LINES_SHOWN)), 200


@blp.route("/orders", methods=["POST"])
@blp.doc(security=BEARER, parameters=[idempotency.PARAMETER])
@blp.arguments(OrderIn())  # an instance: a class would be instantiated (its fields deep-copied) per request
@blp.response(201, OrderOut)
@blp.alt_response(200, schema=OrderOut, description="the order an earlier request with this key created")
@token_required("buyer")
def create_order(data):
    """Place an order: reserve the units now (15 minutes for card, days for bank transfer)."""
    actor = api_user()
    key = idempotency.request_key()
    fingerprint = idempotency.fingerprint(data)
    try:
        return _place(data, actor, key, fingerprint)
    except DomainError:
        # A request repeated with its key is answered with the order it made, whatever would refuse it now
        # (the units sold since, the event neutralised by that very order); a new key is refused as is.
        db.session.rollback()
        if key is not None and (existing := orders.find_by_idempotency_key(db.session, actor.organisation_id, key)):
            return _replay(existing, fingerprint)
        raise


def _place(data: dict, actor, key: str | None, fingerprint: str):
    """Place the order; a key used before is found by the database's unique constraint (no lookup first)."""
    units, event_id = _units_for(data, actor)
    for attempt in range(1, PLACE_ATTEMPTS + 1):
        try:
            placed = orders.place(
                db.session, actor=actor, units=units, payment_method=data["payment_method"],
                beneficiary=data["beneficiary"], retirement_reason=data["retirement_reason"],
                listing_id=data.get("listing_id"), prefer_county_id=data.get("prefer_county_id"), event_id=event_id,
                idempotency_key=key, request_fingerprint=fingerprint)
            commit_keeping_state()
            # order_json has exactly OrderOut's fields, so the body is sent as built (OrderOut documents it).
            return jsonify(order_json(placed.order, new=True, places=placed.places)), 201
        except IntegrityError:
            # The key was used before (or by a request running at the same time, which committed first).
            db.session.rollback()
            existing = key and orders.find_by_idempotency_key(db.session, actor.organisation_id, key)
            if existing:
                return _replay(existing, fingerprint)
            raise
        except OperationalError:
            # A deadlock or serialisation failure chose this transaction; nothing was saved. Try again.
            db.session.rollback()
            if attempt == PLACE_ATTEMPTS:
                raise
        except DomainError as exc:
            db.session.rollback()
            # An allocated order can lose a race for the units it was quoted: quote again.
            if exc.code != "insufficient_credits" or data.get("listing_id") or attempt == PLACE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


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
@blp.arguments(ReferenceIn)
@blp.response(200, OrderOut)
@token_required("bureau")
def confirm_bank_transfer(data, order_id: int):
    """The money arrived: the order is paid and its retirement starts."""
    order = get_scoped(db.session, Order, order_id, api_user())
    try:
        orders.confirm_bank_transfer(db.session, order, actor=api_user(), reference=data["reference"])
    except DomainError:
        db.session.commit()  # a refund flagged for a late transfer must be kept
        raise
    db.session.commit()
    return order_json(reload(db.session, order, ORDER_LINES_SHOWN))
