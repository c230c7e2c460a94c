"""Quantities are exact: decimal strings with at most 4 places in, integer units inside."""

from decimal import Decimal

import pytest

from marketplace.core.errors import ValidationFailed
from marketplace.core.quantities import (
    amount_for,
    display_cny,
    display_tonnes,
    fen_to_cny,
    format_cny,
    format_tonnes,
    parse_cny,
    parse_tonnes,
)
from marketplace.footprint.emission_factors import parse_factor_value
from marketplace.footprint.service import parse_activity_quantity
from marketplace.registry.service import parse_hectares


@pytest.mark.parametrize("raw,units", [
    ("175.402", 1_754_020), ("629.9914", 6_299_914), ("0.0001", 1), ("1", 10_000), (" 12.5 ", 125_000),
    ("805.3934", 8_053_934), (Decimal("175.402"), 1_754_020), (3, 30_000),
])
def test_good_quantities_parse_to_exact_units(raw, units):
    assert parse_tonnes(raw) == units


@pytest.mark.parametrize("raw", [
    "1e3", "-1", "0", "0.0000", "NaN", "nan", "Infinity", "1.00001", "１２", "", " ", "abc", "1,000", ".5", "5.",
    "+5", "0x10", None, True, 1.5, [], "1_000", "100000000.0001",
])
def test_bad_quantities_are_refused_with_a_message(raw, app_ctx):
    with pytest.raises(ValidationFailed) as caught:
        parse_tonnes(raw)
    assert str(caught.value.message)
    assert caught.value.field == "quantity"


def test_formatting_is_four_places_for_the_api_and_trimmed_for_pages():
    assert format_tonnes(1_754_020) == "175.4020"
    assert format_tonnes(1) == "0.0001"
    assert display_tonnes(1_754_020) == "175.4020"  # one format on every page: all 4 places
    assert display_tonnes(8_053_934) == "805.3934"
    assert display_tonnes(12_340_000) == "1,234.0000"
    assert display_tonnes(-5) == "-0.0005"


def test_story_totals_add_up_exactly():
    assert parse_tonnes("175.402") + parse_tonnes("629.9914") == parse_tonnes("805.3934")


def test_money_is_two_places_and_rounded_half_up_to_the_fen(app_ctx):
    assert parse_cny("30") == Decimal("30.00")
    assert format_cny(amount_for(parse_tonnes("175.402"), Decimal("30.00"))) == "5262.06"
    assert amount_for(1, Decimal("0.05")) == Decimal("0.00")
    assert amount_for(1, Decimal("50.00")) == Decimal("0.01")  # 0.005 rounds half up
    for bad in ("-1", "0", "1.001", "1e2", "NaN", "１"):
        with pytest.raises(ValidationFailed):
            parse_cny(bad)


DECIMAL_FIELDS = [(parse_tonnes, "quantity"), (parse_cny, "price"), (parse_hectares, "area_hectares"),
                  (parse_activity_quantity, "quantity"), (parse_factor_value, "kgco2e_per_unit")]


@pytest.mark.parametrize("parse,field", DECIMAL_FIELDS)
@pytest.mark.parametrize("raw", ["１２", "1e3", "NaN", ".5", "5.", "+5", "-1", "1,000", "1_000", "", None, 1.5, True])
def test_every_decimal_field_reads_ascii_digits_and_one_point_only(parse, field, raw, app_ctx):
    with pytest.raises(ValidationFailed) as caught:
        parse(raw)
    assert str(caught.value.message)
    assert caught.value.field == field


def test_fen_become_yuan_with_two_places_grouped_on_pages():
    assert fen_to_cny(526_206) == Decimal("5262.06")
    assert fen_to_cny(5) == Decimal("0.05")
    assert display_cny(fen_to_cny(123_456_780)) == "1,234,567.80"
