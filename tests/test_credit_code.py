"""The unified social credit code is checked with its GB 32100-2015 check character."""

import pytest

from marketplace.accounts.credit_code import complete_credit_code, is_valid_credit_code


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",   # the standard's worked example
    "91350100m000100y43",   # lower case is accepted and normalised
    " 91350100M000100Y43 ",
])
def test_valid_codes_pass(code):
    assert is_valid_credit_code(code)


@pytest.mark.parametrize("code", [
    "91350100M000100Y44",   # wrong check character
    "91350100M000100Y4",    # 17 characters
    "91350100M000100Y433",  # 19 characters
    "91350100I000100Y43",   # I is not in the alphabet
    "",
    "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width digits
])
def test_invalid_codes_fail(code):
    assert not is_valid_credit_code(code)


def test_completing_17_characters_gives_a_valid_code():
    code = complete_credit_code("91350100M000100Y4")
    assert code == "91350100M000100Y43"
    assert is_valid_credit_code(code)
