"""Webhooks from the payment processor: ``POST /webhooks/stripe``.

Verified, recorded once and handled in one transaction; answered quickly (Stripe waits at most a
few seconds and retries anything not 2xx). Cross-site request forgery protection does not apply:
the signature is the authentication.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from flask_babel import gettext as _

from marketplace.extensions import csrf, db
from marketplace.orders import order_payments, payments  # noqa: F401  (register their webhook handlers)
from marketplace.orders.stripe.client import StripeUnavailable, get_client
from marketplace.orders.stripe.webhook import (
    SignatureError,
    dispatch,
    record_event_once,
    verify_signature,
    webhook_secrets,
)

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/stripe")
@csrf.exempt
def stripe():
    payload = request.get_data(cache=False)
    try:
        event = verify_signature(payload, request.headers.get("Stripe-Signature"),
                                 webhook_secrets(current_app.config.get("STRIPE_WEBHOOK_SECRET")))
    except SignatureError as exc:
        log.warning("stripe webhook refused: %s", exc.reason)
        return jsonify(error={"code": "bad_signature", "message": _("The webhook signature is not valid."),
                              "reason": exc.reason}), 400
    if not record_event_once(db.session, event):
        db.session.rollback()
        return jsonify(received=True, duplicate=True)
    try:
        # Handlers read the PaymentIntent back from Stripe: within the same budget as the pay page's calls.
        with get_client().deadline(current_app.config["STRIPE_REQUEST_BUDGET_MS"]):
            handled = dispatch(db.session, event)
    except StripeUnavailable as exc:
        # Not recorded (rolled back): Stripe delivers the event again later, and it is handled then.
        db.session.rollback()
        log.warning("stripe webhook %s: Stripe could not be read back (%s); 503 for a redelivery", event.get("id"), exc)
        return jsonify(error={"code": "payment_unavailable", "message": payments.unavailable_message()}), 503
    db.session.commit()
    return jsonify(received=True, handled=handled)
