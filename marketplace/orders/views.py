"""Buyers' orders: the market, ordering (review before confirming), paying, following, cancelling."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from marketplace.core.access import get_scoped, scoped_select
from marketplace.core.errors import DomainError
from marketplace.core.forms import EmptyForm, form_error
from marketplace.core.i18n import local_time
from marketplace.core.idempotency import act_once
from marketplace.core.quantities import display_tonnes, format_cny, format_tonnes
from marketplace.core.web import role_required
from marketplace.extensions import db
from marketplace.footprint import service as footprint
from marketplace.footprint.models import Event
from marketplace.orders import order_payments
from marketplace.orders import service as orders
from marketplace.orders.forms import OrderForm
from marketplace.orders.models import ORDER_LINES_SHOWN, RETIREMENT_PURPOSES, Order
from marketplace.orders.stripe.client import StripeError, StripeUnavailable, get_client
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


def _order_request(form: OrderForm) -> orders.OrderRequest:
    return orders.OrderRequest(
        payment_method=form.payment_method.data, beneficiary=form.beneficiary.data,
        retirement_reason=form.retirement_reason.data, quantity=(form.quantity.data or "").strip(),
        event_id=int(form.event_id.data) if form.event_id.data else None,
        listing_id=int(form.listing_id.data) if form.listing_id.data else None,
        prefer_county_id=int(form.prefer_county_id.data) if form.prefer_county_id.data else None,
        purpose=form.purpose.data or None, eligible_only=bool(form.eligible_only.data),
        period_start=(form.period_start.data or "").strip() or None,
        period_end=(form.period_end.data or "").strip() or None)


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
        # The form starts from its query string: an event's "neutralise" link, "order again", a language switch.
        form.event_id.data = request.args.get("event_id", "")
        form.listing_id.data = request.args.get("listing_id", "")
        form.prefer_county_id.data = request.args.get("prefer_county_id", "")
        # A top-up from an event's neutrality page: exactly the shortfall, eligible credits, for the event.
        form.quantity.data = request.args.get("quantity", "")[:30]
        if request.args.get("purpose") in RETIREMENT_PURPOSES:
            form.purpose.data = request.args["purpose"]
        form.eligible_only.data = request.args.get("eligible") == "1"
        form.period_start.data = request.args.get("period_start", "")[:10]
        form.period_end.data = request.args.get("period_end", "")[:10]
        if request.args.get("payment_method") in ("card", "bank_transfer"):
            form.payment_method.data = request.args["payment_method"]
        form.beneficiary.data = request.args.get("beneficiary", "")[:200] or current_user.organisation.name
        form.retirement_reason.data = request.args.get("retirement_reason", "")[:1000] or None
        event = next((e for e, _u in events if str(e.id) == form.event_id.data), None)
        if event is not None and not form.retirement_reason.data:
            form.retirement_reason.data = _("Carbon neutrality of %(event)s", event=event.name)
        return render_template("orders/new.html", form=form, quote=None)
    quote = None
    if form.validate_on_submit():
        try:
            wanted = _order_request(form)
            if request.form.get("confirm") != "1":
                # Refused at the review already, not only when confirming: the period as given must hold.
                orders.period_for(db.session, wanted.period_start, wanted.period_end, wanted.event_id)
                units = orders.units_for(db.session, current_user, event_id=wanted.event_id, quantity=wanted.quantity,
                                         quantity_field="quantity")
                quote = orders.quote(db.session, units=units, listing_id=wanted.listing_id,
                                     prefer_county_id=wanted.prefer_county_id, eligible_only=wanted.eligible_only)
                form.request_token.data = uuid.uuid4().hex
                return render_template("orders/new.html", form=form, quote=quote, units=units,
                                       total=sum(line.amount for line in quote))
            # A double click sends the confirmation twice: the first places the order, the second finds it.
            key = f"web-{form.request_token.data}"[:200] if form.request_token.data else None
            outcome = act_once(
                db.session,
                earlier=lambda: key and orders.find_by_idempotency_key(db.session, current_user.organisation_id, key),
                claim=lambda: orders.place_request(db.session, actor=current_user, request=wanted,
                                                   quantity_field="quantity", idempotency_key=key))
            if outcome.repeated:
                return redirect(_next_page(outcome.earlier))
            order = outcome.done.order
            db.session.commit()
            flash(_("Order placed. The credits are reserved for you until %(time)s.",
                    time=local_time(order.reserved_until)), "success")
            return redirect(_next_page(order))
        except DomainError as exc:
            db.session.rollback()
            form_error(form, exc)
    return render_template("orders/new.html", form=form, quote=quote), 422


@bp.get("/")
@role_required("buyer")
def index():
    rows = db.session.scalars(scoped_select(Order, current_user, bureau_sees_all=False)
                              .options(so.joinedload(Order.event)).order_by(Order.id.desc()).limit(500)).all()
    return render_template("orders/index.html", rows=rows)


def _certificate_number(order: Order) -> str | None:
    return orders.certificate_number(db.session, order)


@bp.get("/<int:order_id>")
@role_required("buyer")
def detail(order_id: int):
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False,
                       options=[ORDER_LINES_SHOWN, so.joinedload(Order.event)])
    history = order_payments.order_history(db.session, order.id)
    return render_template("orders/detail.html", order=order, history=history,
                           certificate_number=_certificate_number(order),
                           action_form=EmptyForm(), order_again_url=_order_again_url(order))


def _order_again_url(order: Order) -> str | None:
    """For an order that lapsed or was cancelled before payment: the order form with the same request."""
    if order.status not in ("expired", "cancelled"):
        return None
    single = {line.listing_id for line in order.lines}
    args = {"payment_method": order.payment_method, "beneficiary": order.beneficiary,
            "retirement_reason": order.retirement_reason, "purpose": order.purpose}
    if order.period_start and order.period_end:
        args["period_start"], args["period_end"] = order.period_start.isoformat(), order.period_end.isoformat()
    if order.event_id:  # the event's footprint as it is now
        args["event_id"] = order.event_id
    else:
        args["quantity"] = format_tonnes(order.quantity_units)  # as typed into the form: no grouping
    if len(single) == 1:
        args["listing_id"] = next(iter(single))
    return url_for("orders.new", **args)


@bp.get("/<int:order_id>/status")
@role_required("buyer")
def status(order_id: int):
    """What the order page polls: status and, once ready, the certificate. Reads only: the payment is
    settled by the pay page, the webhook and the periodic re-read, never by a GET."""
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
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


def stripe_budget():
    """The pay page's calls to Stripe end within STRIPE_REQUEST_BUDGET_MS: the payer hears "try again"
    instead of waiting on a slow Stripe until the browser or the web server gives up."""
    return get_client().deadline(current_app.config["STRIPE_REQUEST_BUDGET_MS"])


@bp.post("/<int:order_id>/pay/card")
@role_required("buyer")
def pay_card(order_id: int):
    """JSON: the browser's one-time card token → confirm the order's PaymentIntent."""
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    if order.payment_method == "card" and order.status in ("paid", "retiring", "completed"):
        # A parallel or repeated submission arriving after the payment went through: it succeeded.
        return jsonify(status="succeeded", client_secret=None)
    if order.payment_method != "card" or order.status != "pending_payment":
        return jsonify(error={"code": "not_payable", "message": _("This order cannot be paid now.")}), 409
    token = (request.get_json(silent=True) or {}).get("token")
    try:
        with stripe_budget():
            payment = order_payments.pay_with_card(db.session, order, token)
    except DomainError as exc:
        db.session.rollback()
        return jsonify(error={"code": exc.code, "message": str(exc.message)}), exc.status
    db.session.commit()
    return jsonify(status=payment.status, client_secret=payment.client_secret)


@bp.post("/<int:order_id>/pay/authenticated")
@role_required("buyer")
def pay_authenticated(order_id: int):
    """JSON: the pay page's return from 3-D Secure (stripe.confirmCardPayment resolved) → the payment is
    settled now, from Stripe's own answer. If Stripe does not answer, the webhook or the re-read will."""
    order = get_scoped(db.session, Order, order_id, current_user, bureau_sees_all=False)
    try:
        with stripe_budget():
            intent_status = order_payments.settle_after_authentication(db.session, order)
    except (StripeError, StripeUnavailable):
        db.session.rollback()
        intent_status = None
    else:
        db.session.commit()
    return jsonify(status=order.status, payment_status=intent_status)


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
