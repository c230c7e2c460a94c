"""An order's history: why each transition happened, stored as data and said in the reader's language.

A transition's note is a code and its parameters (``note_code``, ``note_params``): the identifiers that
matter (a PaymentIntent, a webhook event, a bank reference, a certificate number) are kept as they are,
and the words are chosen when a page shows them (:func:`describe`, the ``order_note`` template filter).
Services build notes with the functions below, so every code written has a translation here. A
transition without a code carries free text in ``note`` (written by hand, or an old note the migration
did not recognise), shown as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _


@dataclass(frozen=True)
class Note:
    """Why a transition happened: a code and its parameters (JSON values)."""

    code: str
    params: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """The note nested in another's parameters (a payment that came after a cancellation)."""
        return {"code": self.code, "params": self.params}


#: How a card payment became known: the webhook, the periodic re-read, the pay page (the card POST or its
#: 3-D Secure return), the cancellation's check of the PaymentIntent; ``order_page`` only in old rows.
CARD_PAID_VIA = ("webhook", "reread", "pay_page", "order_page", "cancelling")


def placed(payment_method: str) -> Note:
    return Note("placed", {"payment_method": payment_method})


def card_paid(intent_id: str, *, via: str, event_id: str | None = None) -> Note:
    params = {"intent": intent_id, "via": via}
    if event_id:
        params["event"] = event_id
    return Note("card_paid", params)


def card_refunded(refund_id: str) -> Note:
    return Note("card_refunded", {"refund": refund_id})


def bank_transfer(reference: str) -> Note:
    return Note("bank_transfer", {"reference": reference})


def refund_made(reference: str) -> Note:
    return Note("refund_made", {"reference": reference})


def _nested_json(payment: Note | str) -> dict:
    return payment.as_json() if isinstance(payment, Note) else {"code": "text", "params": {"text": payment}}


def payment_after_cancellation(payment: Note | str) -> Note:
    return Note("payment_after_cancellation", {"payment": _nested_json(payment)})


def late_payment_units_gone(payment: Note | str) -> Note:
    return Note("late_payment_units_gone", {"payment": _nested_json(payment)})


def certificate_issued(number: str) -> Note:
    return Note("certificate_issued", {"number": number})


CANCELLED_BY_BUYER = Note("cancelled_by_buyer")
CANCELLED_AFTER_PAYMENT = Note("cancelled_after_payment")
REFUND_REQUESTED = Note("refund_requested")
RESERVATION_EXPIRED = Note("reservation_expired")
RETIREMENT_STARTED = Note("retirement_started")


def _card_paid(p: dict) -> str:
    intent = p.get("intent", "")
    via = p.get("via")
    if via == "webhook":
        return _("card payment %(intent)s confirmed by Stripe (event %(event)s)", intent=intent, event=p.get("event", ""))
    if via == "reread":
        return _("card payment %(intent)s confirmed on re-reading it from Stripe", intent=intent)
    if via == "order_page":
        return _("card payment %(intent)s confirmed when the order page checked it", intent=intent)
    if via == "cancelling":
        return _("card payment %(intent)s arrived while the order was being cancelled", intent=intent)
    return _("card payment %(intent)s confirmed on the pay page", intent=intent)


def _nested(p: dict) -> str:
    payment = p.get("payment") or {}
    return describe(payment.get("code"), payment.get("params"))


#: code → its words, given the parameters
_SAY = {
    "placed": lambda p: (_("to be paid by card") if p.get("payment_method") == "card"
                         else _("to be paid by bank transfer")),
    "card_paid": _card_paid,
    "card_refunded": lambda p: _("card payment refunded (%(refund)s)", refund=p.get("refund", "")),
    "bank_transfer": lambda p: _("bank transfer %(reference)s confirmed", reference=p.get("reference", "")),
    "refund_made": lambda p: _("refund made: %(reference)s", reference=p.get("reference", "")),
    "payment_after_cancellation": lambda p: _("payment after cancellation, to be refunded: %(detail)s",
                                              detail=_nested(p)),
    "late_payment_units_gone": lambda p: _("late payment; the credits were gone, to be refunded: %(detail)s",
                                           detail=_nested(p)),
    "cancelled_by_buyer": lambda p: _("cancelled by the buyer"),
    "cancelled_after_payment": lambda p: _("cancelled after payment"),
    "refund_requested": lambda p: _("refund requested by the buyer"),
    "reservation_expired": lambda p: _("the reservation expired"),
    "retirement_started": lambda p: _("retirement of the credits started"),
    "certificate_issued": lambda p: _("certificate %(number)s issued", number=p.get("number", "")),
    # free text nested in another note (an old note the migration did not recognise)
    "text": lambda p: p.get("text", ""),
}
NOTE_CODES = frozenset(_SAY)


def describe(code: str | None, params: dict | None = None) -> str:
    """A note's words in the reader's language ("" for no code; an unknown code as it is)."""
    if not code:
        return ""
    say = _SAY.get(code)
    return say(params or {}) if say else code


def card_refused(attempt_number: int, reason: str) -> str:
    """A refused card payment in the history: not a transition (the order still awaits payment), said
    with the reason the buyer was given."""
    return _("card payment attempt %(n)s refused: %(reason)s", n=attempt_number, reason=reason)


def describe_transition(transition) -> str:
    """The ``order_note`` filter: a transition's note in the reader's language, or its free text."""
    if transition.note_code:
        return describe(transition.note_code, transition.note_params)
    return (transition.note or "").strip()
