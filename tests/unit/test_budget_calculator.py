"""The budget calculator: cost-neutral, capped, prorated, explained — and reproducible."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avain.core.domain import Period
from avain.core.errors import Refused
from avain.plugins.budget_calculator import calculator as calc

PRICES = (calc.Price("cleaning", 3500, dt.date(2017, 1, 1)),
          calc.Price("cleaning", 3650, dt.date(2018, 7, 1)),
          calc.Price("meals", 850, dt.date(2017, 1, 1)))
SETTINGS = calc.Settings(PRICES, carer_day_value=10000, monthly_cap=30000)
JAN = Period(2018, 1)

plans = st.fixed_dictionaries({
    "items": st.lists(st.fixed_dictionaries({"service": st.sampled_from(["cleaning", "meals"]),
                                             "quantity": st.integers(0, 60)}), max_size=3),
    "carer_days_off": st.booleans(),
    "round_the_clock": st.booleans(),
})
days = st.dates(min_value=dt.date(2017, 1, 1), max_value=dt.date(2020, 12, 31))


def test_prices_times_quantities_then_the_cap_with_every_step_explained():
    r = calc.monthly_budget({"items": [{"service": "cleaning", "quantity": 4},
                                       {"service": "meals", "quantity": 10}]}, SETTINGS, dt.date(2018, 1, 1))
    assert r.monthly == 4 * 3500 + 10 * 850
    assert "4 × 35,00\u00a0€ (own-production price from 2017-01-01) = 140,00\u00a0€" in r.explanation()
    capped = calc.monthly_budget({"items": [{"service": "cleaning", "quantity": 20}]}, SETTINGS, dt.date(2018, 1, 1))
    assert capped.monthly == 30000
    assert "above the pilot's cap" in capped.explanation()


def test_the_price_in_force_on_the_decisions_first_day_is_used():
    plan = {"items": [{"service": "cleaning", "quantity": 2}]}
    assert calc.monthly_budget(plan, SETTINGS, dt.date(2018, 6, 30)).monthly == 7000
    assert calc.monthly_budget(plan, SETTINGS, dt.date(2018, 7, 1)).monthly == 7300


def test_carers_days_off_are_two_or_three_a_month():
    two = calc.monthly_budget({"carer_days_off": True}, calc.Settings((), 10000, None), JAN.first_day)
    three = calc.monthly_budget({"carer_days_off": True, "round_the_clock": True},
                                calc.Settings((), 10000, None), JAN.first_day)
    assert (two.monthly, three.monthly) == (20000, 30000)
    assert "937/2005 §4" in two.explanation()


def test_a_service_without_an_own_production_price_is_refused():
    with pytest.raises(Refused, match="no own-production price for bathing on 2018-01-01"):
        calc.monthly_budget({"items": [{"service": "bathing", "quantity": 1}]}, SETTINGS, JAN.first_day)


def test_partial_month():
    r = calc.compute({"items": [{"service": "cleaning", "quantity": 4}]}, SETTINGS, JAN,
                     dt.date(2018, 1, 17), dt.date(2018, 12, 31))
    assert r.amount == 14000 * 31 // 31 - 14000 * 16 // 31
    assert "15 of 31 days in 2018-01" in r.explanation()


@given(plans, days)
def test_never_negative_never_above_the_cap(plan, on):
    r = calc.monthly_budget(plan, SETTINGS, on)
    assert 0 <= r.monthly <= SETTINGS.monthly_cap


@given(plans, days)
def test_same_inputs_same_amount_and_explanation(plan, on):
    assert calc.monthly_budget(plan, SETTINGS, on) == calc.monthly_budget(plan, SETTINGS, on)


@given(st.integers(0, 10_000_000), st.integers(2000, 2030), st.integers(1, 12),
       st.lists(st.integers(1, 30), max_size=5, unique=True))
def test_prorated_parts_of_a_month_add_up_to_the_month(monthly, year, month, cuts):
    period = Period(year, month)
    last = period.last_day.day
    bounds = sorted({c for c in cuts if c < last})
    starts = [1] + [b + 1 for b in bounds]
    ends = bounds + [last]
    parts = [calc.prorate(monthly, period, dt.date(year, month, s), dt.date(year, month, e))[0]
             for s, e in zip(starts, ends, strict=True)]
    assert sum(parts) == monthly
    assert all(p >= 0 for p in parts)
