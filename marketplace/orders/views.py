"""Buyers' orders: the market, ordering (review before confirming), paying, following, cancelling."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from marketplace.core.access import get_scoped, scoped_select
from marketplace.core.errors import DomainError, ValidationFailed
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.quantities import display_tonnes, fen, format_cny, parse_tonnes
from marketplace.core.signals import ask
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.models import Event
from marketplace.orders import order_payments, payments
from marketplace.orders import service as orders
from marketplace.orders.forms import OrderForm
from marketplace.orders.models import ORDER_LINES_SHOWN, Order, OrderTransition
from marketplace.orders.signals import certificate_number_wanted
from marketplace.orders.stripe.client import StripeError, StripeUnavailable
from marketplace.registry import service as registry

bp = Blueprint("orders", __name__, url_prefix="/buyers/orders")


def _events_for_choice():
    """The buyer's events with their footprints, for the order form (two queries, whatever their number)."""
    events = db.session.scalars(scoped_select(Event, current_user, bureau_sees_all=False)
                                .order_by(Event.starts_on.desc())).all()
    totals = footprint.breakdown_for_events(db.session, [e.id for e in events])
    return [(e, totals[e.id]) for e in events]


#: An event's order state, as the order form names it: ordering again is allowed, but should be a choice.
_EVENT_ORDER_STATES = (("completed", "neutralised"), ("retiring", "paid"), ("paid", "paid"),
                       ("pending_payment", "awaiting_payment"))


def _event_order_states(event_ids: list[int]) -> dict[int, str]:
    """Per event, the furthest state among its orders: neutralised, paid or awaiting payment."""
    if not event_ids:
        return {}
    rows = db.session.execute(
        sa.select(Order.event_id, Order.status).distinct()
        .where(Order.buyer_organisation_id == current_user.organisation_id, Order.event_id.in_(event_ids),
               Order.status.in_([status for status, _state in _EVENT_ORDER_STATES]))).all()
    found: dict[int, set[str]] = {}
    for event_id, status in rows:
        found.setdefault(event_id, set()).add(status)
    states = {}
    for event_id, statuses in found.items():
        states[event_id] = next(state for status, state in _EVENT_ORDER_STATES if status in statuses)
    return states


def _event_label(event, units: int, state: str | None) -> str:
    label = f"{event.name} · {display_tonnes(units)} t"
    if state == "neutralised":
        return label + " · " + _("already neutralised")
    if state == "paid":
        return label + " · " + _("paid, being retired")
    if state == "awaiting_payment":
        return label + " · " + _("an order awaits payment")
    return label


def _form_choices(form: OrderForm, events):
    states = _event_order_states([e.id for e, _units in events])
    form.event_id.choices = [("", _("No event (enter a quantity)"))] + [
        (str(e.id), _event_label(e, units, states.get(e.id))) for e, units in events]
    form.prefer_county_id.choices = [("", _("No preference"))] + [
        (str(c.id), c.name) for c in registry.counties(db.session)]
    listing_rows = db.session.execute(registry.public_listings_query()).all()
    form.listing_id.choices = [("", _("Allocate for me: cheapest first"))] + [
        (str(listing.id), f"{listing.batch.project.name} · {listing.batch.vintage_end.year} · ¥"
                          f"{format_cny(listing.price_cny_per_tonne)}/t · {display_tonnes(units)} t")
        for listing, units in listing_rows]


def _order_args(form: OrderForm, events) -> dict:
    event_id = int(form.event_id.data) if form.event_id.data else None
    raw = (form.quantity.data or "").strip()
    if event_id is not None:
        units_by_event = {e.id: u for e, u in events}
        if event_id not in units_by_event:
            raise ValidationFailed(_("Choose one of your events."), "event_id")
        units = parse_tonnes(raw) if raw else units_by_event[event_id]
        if units <= 0:
            raise ValidationFailed(_("The event has no footprint yet; add its activities first."), "event_id")
    else:
        if not raw:
            raise ValidationFailed(_("Enter the quantity in tonnes, or choose an event."), "quantity")
        units = parse_tonnes(raw)
    return {"units": units, "event_id": event_id,
            "listing_id": int(form.listing_id.data) if form.listing_id.data else None,
            "prefer_county_id": int(form.prefer_county_id.data) if form.prefer_county_id.data else None,
            "payment_method": form.payment_method.data, "beneficiary": form.beneficiary.data,
            "retirement_reason": form.retirement_reason.data}


def _next_page(order: Order) -> str:
    """After placing: the pay page for a card order still to be paid, else the order page."""
    if order.payment_method == "card" and order.status == "pending_payment":
        return url_for("orders.pay", order_id=order.id)
    return url_for("orders.detail", order_id=order.id)


@bp.route("/new", methods=["GET", "POST"])
@role_required("buyer")
def new():
    """Step 1: what to buy. Step 2 (same URL, confirm=0): the lines it would be. Step 3 (confirm=1): place it."""
    events = _events_for_choice()
    form = OrderForm()
    _form_choices(form, events)
    if request.method == "GET":
        form.event_id.data = request.args.get("event_id", "")
        form.listing_id.data = request.args.get("listing_id", "")
        form.beneficiary.data = form.beneficiary.data or current_user.organisation.name
        event = next((e for e, _u in events if str(e.id) == form.event_id.data), None)
        if event is not None and not form.retirement_reason.data:
            form.retirement_reason.data = _("Carbon neutrality of %(event)s", event=event.name)
        return render_template("orders/new.html", form=form, quote=None)
    quote = None
    if form.validate_on_submit():
        try:
            args = _order_args(form, events)
            if request.form.get("confirm") != "1":
                quote = orders.quote(db.session, units=args["units"], listing_id=args["listing_id"],
                                     prefer_county_id=args["prefer_county_id"])
                form.request_token.data = uuid.uuid4().hex
                return render_template("orders/new.html", form=form, quote=quote, units=args["units"],
                                       total=sum(line.amount for line in quote))
            key = f"web-{form.request_token.data}"[:200] if form.request_token.data else None
            existing = key and orders.find_by_idempotency_key(db.session, current_user.organisation_id, key)
            if existing:  # a double click: the first click already placed it
                return redirect(_next_page(existing))
            try:
                order = orders.place_order(db.session, actor=current_user, idempotency_key=key, **args)
                db.session.commit()
            except IntegrityError:
                # The same confirmation twice at once: the other request placed it while this one ran.
                db.session.rollback()
                existing = key and orders.find_by_idempotency_key(db.session, current_user.organisation_id, key)
                if not existing:
                    raise
                return redirect(_next_page(existing))
            flash(_("Order placed. The credits are reserved for you until %(time)s.",
                    time=order.reserved_until.astimezone().strftime("%Y-%m-%d %H:%M")), "success")
            return redirect(_next_page(order))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return render_template("orders/new.html", form=form, quote=quote), 422


@bp.get("/")
@role_required("buyer")
def index():
    rows = db.session.scalars(scoped_select(Order, current_user, bureau_sees_all=False)
                              .order_by(Order.id.desc()).limit(500)).all()
    return render_template("orders/index.html", rows=rows)


def _reread_authenticated_payment(order: Order) -> None:
    """After 3-D Secure the browser knows the payment succeeded before this server does (the pay view
    answered "requires_action"). While the order waits and its PaymentIntent was waiting for the
    bank, re-read it, as the pay view does for an immediate success, instead of waiting for the
    webhook or the periodic re-read. One GET to Stripe per call, only in that state."""
    if order.status != "pending_payment" or order.payment_method != "card":
        return
    attempt = payments.current_attempt(db.session, order.id)
    if attempt is None or attempt.payment_intent_id is None or attempt.status not in ("requires_action",
                                                                                       "processing"):
        return

    try:
        if payments.refresh_attempt(db.session, attempt) == "succeeded":
            intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
            order_payments.succeeded(db.session, intent, note=f"card {attempt.payment_intent_id} (order page)")
        db.session.commit()
    except (StripeError, StripeUnavailable):  # the webhook or the periodic re-read will settle it
        db.session.rollback()
    db.session.refresh(order)


def _certificate_number(order: Order) -> str | None:
    return ask(certificate_number_wanted, session=db.session, order_id=order.id)


@bp.get("/<int:order_id>")
@role_required("buyer")
def detail(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False, options=[ORDER_LINES_SHOWN])
    _reread_authenticated_payment(order)
    history = db.session.scalars(sa.select(OrderTransition).where(OrderTransition.order_id == order.id)
                                 .order_by(OrderTransition.id)).all()
    return render_template("orders/detail.html", order=order, history=history, certificate_number=_certificate_number(order),
                           action_form=EmptyForm())


@bp.get("/<int:order_id>/status")
@role_required("buyer")
def status(order_id: int):
    """What the order page polls: status and, once ready, the certificate."""
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    _reread_authenticated_payment(order)
    number = _certificate_number(order)
    return jsonify(status=order.status, certificate_number=number,
                   verify_url=url_for("certificates.verify", number=number) if number else None,
                   pdf_url=url_for("certificates.download_pdf", number=number) if number else None)


@bp.get("/<int:order_id>/pay")
@role_required("buyer")
def pay(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    if order.payment_method != "card" or order.status != "pending_payment":
        return redirect(url_for("orders.detail", order_id=order.id))
    return render_template("orders/pay.html", order=order)


@bp.post("/<int:order_id>/pay/card")
@role_required("buyer")
def pay_card(order_id: int):
    """JSON: the browser's one-time card token → confirm the order's PaymentIntent."""
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    if order.payment_method != "card" or order.status != "pending_payment":
        return jsonify(error={"code": "not_payable", "message": _("This order cannot be paid now.")}), 409
    token = (request.get_json(silent=True) or {}).get("token")
    try:
        attempt = payments.ensure_payment_intent(db.session, order_id=order.id, amount_fen=fen(order.amount_cny),
                                                 metadata={"order_id": order.id})
        result = payments.pay_with_card_token(db.session, attempt, token)
    except DomainError as exc:
        db.session.rollback()
        return jsonify(error={"code": exc.code, "message": str(exc.message)}), exc.status
    if result == "succeeded":
        # Do not wait for the webhook: the re-read says the money is there.

        intent = payments.get_client().retrieve_payment_intent(attempt.payment_intent_id)
        order_payments.succeeded(db.session, intent, note=f"card {attempt.payment_intent_id} (pay page)")
        db.session.commit()
    return jsonify(status=result, client_secret=attempt.client_secret)


@bp.post("/<int:order_id>/cancel")
@role_required("buyer")
def cancel(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    if EmptyForm().validate_on_submit():
        try:
            orders.cancel(db.session, order, actor=current_user)
            db.session.commit()
            flash(_("Order cancelled; the credits are released.") if order.status == "cancelled"
                  else _("Order cancelled; the payment will be refunded."), "success")
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
    return redirect(url_for("orders.detail", order_id=order.id))
