"""Money and Period: integer cents, Finnish display, parsing with clear errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avain.core.domain import MAX_CENTS, Money, Period, fi_date, positive_amount
from avain.core.errors import ValidationError

NBSP = "\u00a0"


def test_finnish_display_groups_thousands_with_no_break_spaces():
    assert Money(123450).fi() == f"1{NBSP}234,50{NBSP}€"
    assert Money(5).fi() == f"0,05{NBSP}€"
    assert Money(-100000000).fi() == f"-1{NBSP}000{NBSP}000,00{NBSP}€"
    assert Money(123450).en() == "€1,234.50"


@pytest.mark.parametrize("text,cents", [("12", 1200), ("12,5", 1250), ("12.50", 1250),
                                        ("1 234,50 €", 123450), (f"1{NBSP}234,50{NBSP}€", 123450),
                                        ("0,01", 1)])
def test_parse_accepts_the_ways_people_type_euros(text, cents):
    assert Money.parse(text) == Money(cents)


@pytest.mark.parametrize("text", ["12,345", "abc", "", "1e3", "12,5,0"])
def test_parse_refuses_fractions_of_a_cent_and_garbage_naming_the_field(text):
    with pytest.raises(ValidationError, match="^--amount: "):
        Money.parse(text, field_name="--amount")


def test_no_floats_and_no_mixed_currencies():
    with pytest.raises(ValidationError):
        Money(12.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(1) + Money(1, "SEK")
    with pytest.raises(TypeError):
        Money(1) + 1  # type: ignore[operator]


def test_positive_amount_refuses_zero_negative_and_absurd():
    for cents in (0, -1, MAX_CENTS + 1):
        with pytest.raises(ValidationError, match="amount"):
            positive_amount(Money(cents))
    assert positive_amount(Money(1)) == Money(1)


@given(st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS))
def test_display_parses_back_to_the_same_cents(cents):
    assert Money.parse(Money(cents).fi()) == Money(cents)


@given(st.integers(min_value=0, max_value=MAX_CENTS),
       st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=12))
def test_allocate_parts_sum_to_the_whole_and_differ_by_ratio_only(cents, ratios):
    parts = Money(cents).allocate(ratios)
    assert sum(p.cents for p in parts) == cents
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        assert abs(part.cents - cents * ratio / total) < len(ratios) + 1


def test_period_months():
    p = Period.parse("2018-12")
    assert str(p.next()) == "2019-01"
    assert str(Period.parse("2018-01").previous()) == "2017-12"
    assert p.last_day.isoformat() == "2018-12-31"
    assert fi_date(p.first_day) == "1.12.2018"
    for bad in ("2018-13", "18-01", "2018-1"):
        with pytest.raises(ValidationError, match="period"):
            Period.parse(bad)
