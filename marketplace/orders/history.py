"""An order's history in the reader's language.

The services write each transition's note as a short English audit line with the identifiers that
matter (``card pi_… (webhook evt_…)``, ``bank transfer ICBC-…``, a certificate number). Pages show it
through :func:`describe_note`, which recognises those lines and says them in the reader's language,
identifiers kept as they are; a note it does not know (free text) is shown as written.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _

_PAYMENT_METHODS = {"card": lambda: _("to be paid by card"), "bank_transfer": lambda: _("to be paid by bank transfer")}

#: (pattern, message) in the order they are tried; nested notes (a payment after cancellation) recurse.
_NOTES = (
    (re.compile(r"card (\S+) \(webhook (\S+)\)"),
     lambda m: _("card payment %(intent)s confirmed by Stripe (event %(event)s)", intent=m[1], event=m[2])),
    (re.compile(r"card (\S+) \(re-read\)"),
     lambda m: _("card payment %(intent)s confirmed on re-reading it from Stripe", intent=m[1])),
    (re.compile(r"card (\S+) \(pay page\)"),
     lambda m: _("card payment %(intent)s confirmed on the pay page", intent=m[1])),
    (re.compile(r"card (\S+) \(order page\)"),
     lambda m: _("card payment %(intent)s confirmed when the order page checked it", intent=m[1])),
    (re.compile(r"card (\S+) \(paid while cancelling\)"),
     lambda m: _("card payment %(intent)s arrived while the order was being cancelled", intent=m[1])),
    (re.compile(r"card refund (\S+)"), lambda m: _("card payment refunded (%(refund)s)", refund=m[1])),
    (re.compile(r"bank transfer (.+)"), lambda m: _("bank transfer %(reference)s confirmed", reference=m[1])),
    (re.compile(r"refund made: (.+)"), lambda m: _("refund made: %(reference)s", reference=m[1])),
    (re.compile(r"payment after cancellation: (.+)"),
     lambda m: _("payment after cancellation, to be refunded: %(detail)s", detail=describe_note(m[1]))),
    (re.compile(r"late payment, units gone: (.+)"),
     lambda m: _("late payment; the credits were gone, to be refunded: %(detail)s", detail=describe_note(m[1]))),
    (re.compile(r"cancelled by the buyer"), lambda m: _("cancelled by the buyer")),
    (re.compile(r"cancelled after payment"), lambda m: _("cancelled after payment")),
    (re.compile(r"refund requested by the buyer"), lambda m: _("refund requested by the buyer")),
    (re.compile(r"reservation expired"), lambda m: _("the reservation expired")),
    (re.compile(r"retirement started"), lambda m: _("retirement of the credits started")),
    (re.compile(r"(TH-\d{4}-\d{6,})"), lambda m: _("certificate %(number)s issued", number=m[1])),
)


def describe_note(note: str | None) -> str:
    """The note of an order transition, in the reader's language."""
    note = (note or "").strip()
    if note in _PAYMENT_METHODS:
        return _PAYMENT_METHODS[note]()
    for pattern, message in _NOTES:
        match = pattern.fullmatch(note)
        if match:
            return message(match)
    return note
