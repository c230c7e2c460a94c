"""Quantities and money, parsed and formatted in one place.

1 unit = 0.0001 tCO2e (100 g). Quantities are stored as integer units and travel as decimal strings
with at most 4 places ("175.402" in, "175.4020" out). Money is CNY as Decimal with 2 places.
Floats never appear: a float cannot hold 0.0001 exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property

from flask_babel import lazy_gettext as _l

from marketplace.core.errors import ValidationFailed

UNITS_PER_TONNE = 10_000
#: The largest quantity accepted in one field: 100 million tonnes, far above any real forest project.
MAX_UNITS = 100_000_000 * UNITS_PER_TONNE
MAX_CNY = Decimal("10000000000.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DecimalInput:
    """One kind of decimal a person types: its places, its bounds and what they are told when it is wrong.

    Only ASCII digits and one point are read: Python's Decimal would happily accept full-width "１２",
    exponents, "NaN" and floats, none of which a form or the API should. A message left None is
    ``malformed``."""

    places: int
    integer_digits: int
    maximum: Decimal
    #: not digits with at most ``places`` places
    malformed: object
    #: None or a bool (and a blank string when ``blank_is_missing``)
    missing: object = None
    #: neither a string, an int nor a Decimal (a float, a list …)
    not_text: object = None
    too_precise: object = None
    negative: object = None
    zero: object = None
    too_large: object = None
    blank_is_missing: bool = False
    allow_zero: bool = False

    @cached_property
    def pattern(self) -> re.Pattern:
        return re.compile(rf"^[0-9]{{1,{self.integer_digits}}}(?:\.[0-9]{{1,{self.places}}})?$")

    @cached_property
    def too_precise_pattern(self) -> re.Pattern:
        return re.compile(rf"^[0-9]{{1,{self.integer_digits}}}\.[0-9]{{{self.places + 1},}}$")


def parse_decimal(raw, rule: DecimalInput, field: str) -> Decimal:
    """A decimal as typed (a string, an int or a Decimal) → Decimal as written, not rounded; otherwise
    ValidationFailed on ``field`` with the rule's message."""
    def refuse(message):
        return ValidationFailed(message or rule.malformed, field)

    if raw is None or isinstance(raw, bool):
        raise refuse(rule.missing)
    if isinstance(raw, int):
        raw = str(raw)
    elif isinstance(raw, Decimal):
        if not raw.is_finite():
            raise refuse(rule.malformed)
        raw = format(raw, "f")
    elif not isinstance(raw, str):
        raise refuse(rule.not_text)
    text = raw.strip()
    if not text and rule.blank_is_missing:
        raise refuse(rule.missing)
    if not rule.pattern.match(text):
        if text.startswith("-"):
            raise refuse(rule.negative)
        if rule.too_precise_pattern.match(text):
            raise refuse(rule.too_precise)
        raise refuse(rule.malformed)
    value = Decimal(text)
    if value == 0 and not rule.allow_zero:
        raise refuse(rule.zero)
    if value > rule.maximum:
        raise refuse(rule.too_large)
    return value


TONNES = DecimalInput(
    places=4, integer_digits=12, maximum=Decimal(MAX_UNITS // UNITS_PER_TONNE),
    malformed=_l("Enter a quantity in tonnes with digits and at most 4 decimal places, e.g. 175.402."),
    missing=_l("Enter a quantity in tonnes, e.g. 175.402."),
    not_text=_l("Send the quantity as a decimal string, e.g. \"175.402\"."),
    too_precise=_l("At most 4 decimal places (0.0001 t)."), negative=_l("The quantity must be positive."),
    zero=_l("The quantity must be greater than zero."), too_large=_l("The quantity is too large."))
#: Tonnes where zero is a valid answer (an estimate of nothing avoided).
TONNES_OR_ZERO = replace(TONNES, allow_zero=True)
CNY = DecimalInput(
    places=2, integer_digits=11, maximum=MAX_CNY,
    malformed=_l("Enter an amount in yuan with at most 2 decimal places, e.g. 30.00."),
    missing=_l("Enter an amount in yuan, e.g. 30.00."), not_text=_l("Enter an amount in yuan, e.g. 30.00."),
    zero=_l("The amount must be greater than zero."), too_large=_l("The amount is too large."))


def parse_tonnes(raw, field: str = "quantity", *, allow_zero: bool = False) -> int:
    """A decimal string of tonnes (at most 4 places, positive, ASCII digits) → integer units."""
    return decimal_to_units(parse_decimal(raw, TONNES_OR_ZERO if allow_zero else TONNES, field))


def units_to_decimal(units: int) -> Decimal:
    """Integer units → Decimal tonnes with exactly 4 places."""
    return (Decimal(units) / UNITS_PER_TONNE).quantize(Decimal("0.0001"))


def decimal_to_units(tonnes: Decimal) -> int:
    """Decimal tonnes (already rounded to 4 places) → integer units; refuses hidden precision."""
    scaled = tonnes * UNITS_PER_TONNE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{tonnes} has more than 4 decimal places")
    return int(scaled)


def format_tonnes(units: int) -> str:
    """For the API: always 4 places ("175.4020")."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_TONNE)
    return f"{sign}{whole}.{frac:04d}"


def display_tonnes(units: int) -> str:
    """For pages, e-mails and messages: the one way a quantity is read, exact to the unit with all
    4 places and thousands separated ("1,175.4020", "630.0000"), so a column lines up and 175.402 and
    175.4020 are never both seen for the same figure."""
    text = format_tonnes(units)
    whole, _dot, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{frac}"


def parse_cny(raw, field: str = "price") -> Decimal:
    """A CNY amount as a decimal string with at most 2 places, positive."""
    return parse_decimal(raw, CNY, field).quantize(CENT)


def format_cny(amount: Decimal) -> str:
    """For the API: 2 places ("5262.06")."""
    return str(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def amount_for(units: int, price_cny_per_tonne: Decimal) -> Decimal:
    """The price of a quantity, rounded half-up to the fen (one rule, used everywhere)."""
    try:
        return (Decimal(units) * Decimal(price_cny_per_tonne) / UNITS_PER_TONNE).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover — inputs are validated before
        raise ValidationFailed(_l("The amount is too large."), "price") from exc


def fen(amount: Decimal) -> int:
    """CNY → integer fen, for Stripe's smallest currency unit and the dashboards' sums."""
    return int((Decimal(amount) * 100).to_integral_value())


def fen_to_cny(amount_fen: int) -> Decimal:
    """Integer fen → CNY with exactly 2 places."""
    return (Decimal(amount_fen) / 100).quantize(CENT)


def display_cny(amount: Decimal) -> str:
    """For pages: 2 places, thousands separated ("5,262.06")."""
    return f"{Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def format_serial_range(prefix: str, first: int, last: int) -> str:
    """One serial range, both ends inclusive, the one way pages, PDFs and exports print it:
    "TH-P00001-2023-000000000001…000000050000"."""
    return f"{prefix}-{first:012d}…{last:012d}"
