"""Quantities and money, parsed and formatted in one place.

1 unit = 0.0001 tCO2e (100 g). Quantities are stored as integer units and travel as decimal strings
with at most 4 places ("175.402" in, "175.4020" out). Money is CNY as Decimal with 2 places.
Floats never appear: a float cannot hold 0.0001 exactly.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from marketplace.core.errors import ValidationFailed

UNITS_PER_TONNE = 10_000
#: The largest quantity accepted in one field: 100 million tonnes, far above any real forest project.
MAX_UNITS = 100_000_000 * UNITS_PER_TONNE
MAX_CNY = Decimal("10000000000.00")
CENT = Decimal("0.01")

# ASCII digits only: Python's Decimal would happily accept full-width "１２", exponents and "NaN".
_TONNES = re.compile(r"^(?P<int>[0-9]{1,12})(?:\.(?P<frac>[0-9]{1,4}))?$")
_TONNES_TOO_PRECISE = re.compile(r"^[0-9]{1,12}\.[0-9]{5,}$")
_CNY = re.compile(r"^(?P<int>[0-9]{1,11})(?:\.(?P<frac>[0-9]{1,2}))?$")


def parse_tonnes(raw, field: str = "quantity", *, allow_zero: bool = False) -> int:
    """A decimal string of tonnes (at most 4 places, positive, ASCII digits) → integer units."""
    if isinstance(raw, bool) or raw is None:
        raise ValidationFailed(_l("Enter a quantity in tonnes, e.g. 175.402."), field)
    if isinstance(raw, int):
        raw = str(raw)
    if isinstance(raw, Decimal):
        raw = format(raw, "f")
    if not isinstance(raw, str):
        raise ValidationFailed(_l("Send the quantity as a decimal string, e.g. \"175.402\"."), field)
    text = raw.strip()
    match = _TONNES.match(text)
    if match is None:
        if _TONNES_TOO_PRECISE.match(text):
            raise ValidationFailed(_l("At most 4 decimal places (0.0001 t)."), field)
        if text.startswith("-"):
            raise ValidationFailed(_l("The quantity must be positive."), field)
        raise ValidationFailed(_l("Enter a quantity in tonnes with digits and at most 4 decimal places, e.g. 175.402."),
                               field)
    units = int(match["int"]) * UNITS_PER_TONNE + int((match["frac"] or "").ljust(4, "0"))
    if units == 0 and not allow_zero:
        raise ValidationFailed(_l("The quantity must be greater than zero."), field)
    if units > MAX_UNITS:
        raise ValidationFailed(_l("The quantity is too large."), field)
    return units


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
    """For pages: trailing zeros trimmed, thousands separated ("1,175.402", "630")."""
    text = format_tonnes(units)
    whole, _dot, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-')):,}"
    frac = frac.rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def parse_cny(raw, field: str = "price") -> Decimal:
    """A CNY amount as a decimal string with at most 2 places, positive."""
    if isinstance(raw, Decimal):
        raw = format(raw, "f")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise ValidationFailed(_l("Enter an amount in yuan, e.g. 30.00."), field)
    match = _CNY.match(raw.strip())
    if match is None:
        raise ValidationFailed(_l("Enter an amount in yuan with at most 2 decimal places, e.g. 30.00."), field)
    value = Decimal(raw.strip()).quantize(Decimal("0.01"))
    if value <= 0:
        raise ValidationFailed(_l("The amount must be greater than zero."), field)
    if value > MAX_CNY:
        raise ValidationFailed(_l("The amount is too large."), field)
    return value


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
