"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a check digit."""

from __future__ import annotations

#: The 31 characters the standard allows (no I, O, S, V, Z), in value order.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Weight of each of the first 17 positions: 3^i mod 31.
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    """The check character for the first 17 characters."""
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(raw: str) -> str:
    return (raw or "").strip().upper()


def is_valid_credit_code(raw: str) -> bool:
    code = normalise_credit_code(raw)
    if len(code) != 18 or any(ch not in ALPHABET for ch in code):
        return False
    return check_character(code[:17]) == code[17]


def complete_credit_code(first17: str) -> str:
    """The full code for 17 given characters (used to make demo organisations' codes valid)."""
    first17 = normalise_credit_code(first17)
    return first17 + check_character(first17)
