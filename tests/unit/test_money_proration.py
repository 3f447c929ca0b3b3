"""The core's fallback budget (the amount written on a decision, or the pilot's default) is
prorated by days: the parts of a month, however it is split between decisions, add up to
exactly one month's amount in cents."""

import datetime as dt
from collections import namedtuple

from hypothesis import given
from hypothesis import strategies as st

from avain.core import pilot_config
from avain.core.domain import Money, Period
from avain.core.plugins import collect
from avain.core.services.budget import in_force_parts

PILOT_TOML = """\
id = "plain"
name = "A pilot without budget rules"
code = "PL"

[[groups]]
id = "adults"
code = "A"
name = "Adults"

[budget]
default_monthly = 30000
"""

Row = namedtuple("Row", "id client_code pilot_id valid_from valid_to monthly_amount inputs")


def _pilot(pm):
    pilot, _ = pilot_config.parse_text(PILOT_TOML, collect(pm, "avain_config_sections"), source="p.toml")
    return pilot


def _month_total(pm, pilot, rows, period):
    return [pm.hook.avain_compute_budget(pilot=pilot, decision=part, period=period).amount.cents
            for part in in_force_parts(rows, period)]


def test_an_amount_written_from_the_15th_of_december_is_17_of_31_days(pm):
    """Regression: --from 2026-12-15 --amount 250 allocated the whole 250,00 € for 17 days."""
    pilot = _pilot(pm)
    row = Row(1, "PL-A-01-001", "plain", dt.date(2026, 12, 15), dt.date(2027, 6, 30), 25000, "{}")
    result = pm.hook.avain_compute_budget(pilot=pilot, decision=in_force_parts([row], Period(2026, 12))[0],
                                          period=Period(2026, 12))
    assert result.amount == Money(25000 * 31 // 31 - 25000 * 14 // 31)  # 137,10 €
    assert "17 of 31 days in 2026-12" in result.explanation
    # the next month is whole again
    whole = pm.hook.avain_compute_budget(pilot=pilot, decision=in_force_parts([row], Period(2027, 1))[0],
                                         period=Period(2027, 1))
    assert whole.amount == Money(25000)


def test_two_decisions_splitting_february_give_one_month(pm):
    """Regression: two --amount 100 decisions splitting February gave 200,00 €."""
    pilot = _pilot(pm)
    rows = [Row(1, "c", "plain", dt.date(2026, 1, 1), dt.date(2026, 2, 13), 10000, "{}"),
            Row(2, "c", "plain", dt.date(2026, 2, 14), dt.date(2026, 12, 31), 10000, "{}")]
    parts = _month_total(pm, pilot, rows, Period(2026, 2))
    assert len(parts) == 2
    assert sum(parts) == 10000


def test_the_pilots_default_is_prorated_too(pm):
    pilot = _pilot(pm)
    row = Row(1, "c", "plain", dt.date(2026, 4, 1), dt.date(2026, 4, 10), None, "{}")
    assert _month_total(pm, pilot, [row], Period(2026, 4)) == [30000 * 10 // 30]


@given(st.integers(1, 1_000_000), st.integers(2000, 2040), st.integers(1, 12),
       st.lists(st.integers(1, 30), max_size=6, unique=True), st.data())
def test_random_splits_of_a_month_add_up_to_the_monthly_amount(monthly, year, month, cuts, data):
    """Decisions with the same monthly amount, one after another across the month (each
    newer one taking over from a cut day): the parts sum to exactly the monthly amount in
    cents, every part is within a cent of its days' exact share, and none is negative."""
    from avain.core.plugins import make_plugin_manager

    pm = make_plugin_manager()
    pilot = _pilot(pm)
    period = Period(year, month)
    last = period.last_day.day
    bounds = sorted({c for c in cuts if c < last})
    starts = [1, *(b + 1 for b in bounds)]
    ends = [*bounds, last]
    rows = []
    for i, (s, e) in enumerate(zip(starts, ends, strict=True), start=1):
        # the first decision may start before the month, the last may run past it
        first = period.first_day - dt.timedelta(days=data.draw(st.integers(0, 40))) if s == 1 \
            else dt.date(year, month, s)
        to = period.last_day + dt.timedelta(days=data.draw(st.integers(0, 40))) if e == last \
            else dt.date(year, month, e)
        rows.append(Row(i, "c", "plain", first, to, monthly, "{}"))
    parts = _month_total(pm, pilot, rows, period)
    assert sum(parts) == monthly
    assert all(p >= 0 for p in parts)
    for p, s, e in zip(parts, starts, ends, strict=True):
        exact = monthly * (e - s + 1) / last
        assert abs(p - exact) < 1
