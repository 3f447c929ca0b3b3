"""Statements show each transfer on its business date (service, invoice, payment date, a
month's first day for what opening and closing did) beside the time it was recorded; the
migration fills the date for rows written before it; notes are never cut mid-word."""

import datetime as dt

import ledger_scenarios as L
from helpers import HETUS
from hypothesis import given
from hypothesis import strategies as st
from ledger_scenarios import FEB, JAN

from avain.core import db as dbmod
from avain.core.auth import Actor
from avain.core.domain import Money, clip_words
from avain.core.services import budget, purchases, statements

FIN = Actor("finance", "example-04")


def _lines(app, code, period=None):
    return app.run(FIN, statements.statement, code, period=period)["lines"]


def _a_month(app):
    """January 2018 of one client: 300 € granted, one purchase on the 22nd invoiced on
    the 25th for less, one cancelled on the 24th, then February opened (carry-over not in
    use: January's rest lapses when it closes on 1 February)."""
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    bought = L.buy(app, team, code, 4000, day=dt.date(2018, 1, 22))
    L.invoice(app, bought, 3500, "A-1", on_date=dt.date(2018, 1, 25), final=True)
    cancelled = L.buy(app, team, code, 1000, day=dt.date(2018, 1, 23))
    app.run(Actor("worker", team["worker"]), purchases.cancel, cancelled["id"], on_date=dt.date(2018, 1, 24))
    L.close_month(app, today=dt.date(2018, 2, 1))
    return team, code


EXPECTED = [("granted", "2018-01-01"), ("committed", "2018-01-22"),
            ("committed", "2018-01-23"), ("released", "2018-01-24"), ("spent", "2018-01-25"),
            ("released", "2018-01-25"), ("lapsed", "2018-01-31")]


def test_statement_lines_carry_their_business_dates(app):
    """Regression: every line showed the day the statement was printed."""
    _, code = _a_month(app)
    lines = _lines(app, code)
    assert [(line["what"], line["date"]) for line in lines] == EXPECTED
    today = dt.date.today()
    for line in lines:
        recorded = dt.datetime.fromisoformat(line["recorded_at"])
        assert recorded.date() in (today, today - dt.timedelta(days=1))  # a test run over midnight
    # a month's statement holds that month's lines only, still on their dates
    assert [line["date"] for line in _lines(app, code, "2018-01")] == [d for _, d in EXPECTED]


def test_the_next_months_allocation_and_carry_in_are_dated_on_its_first_day(app):
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    L.close_month(app, today=dt.date(2018, 1, 31))
    L.open_month(app, FEB)
    feb = _lines(app, code, "2018-02")
    assert [(line["what"], line["date"]) for line in feb] == [("granted", "2018-02-01")]


def test_the_migration_dates_rows_written_before_it(db_url, pm):
    """Rows written before 0008 get the best date there is: the month's first day for
    allocations and lapses, the service date for commitments, else the recording day."""
    from conftest import open_app

    app = open_app(db_url, pm)
    try:
        _, code = _a_month(app)
    finally:
        app.close()
    engine = dbmod.make_engine(db_url)
    try:
        from alembic import command

        command.downgrade(dbmod.alembic_config(engine), "0007")
        command.upgrade(dbmod.alembic_config(engine), "head")
    finally:
        engine.dispose()
    app = open_app(db_url, pm)
    try:
        today = dt.date.today().isoformat()
        got = [(line["what"], line["date"]) for line in _lines(app, code)]
        # invoices and releases kept no date of their own before: the day they were recorded
        want = [(what, day if what in ("granted", "lapsed", "committed") else today) for what, day in EXPECTED]
        assert sorted(got) == sorted(want)
        assert app.run(FIN, statements.verify)["ok"]
    finally:
        app.close()


def test_a_long_granted_note_is_not_cut_mid_word(app):
    """Regression: the "granted" note of a month split between decisions was cut at 200
    characters in the middle of a word."""
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0], valid_to=dt.date(2018, 1, 10))
    worker = Actor("worker", team["worker"])
    for first, last in ((11, 20), (21, 31)):
        app.run(worker, budget.grant, code, valid_from=dt.date(2018, 1, first), valid_to=dt.date(2018, 1, last),
                monthly_amount=Money(L.BUDGET))
    L.open_month(app)
    [granted] = [line for line in _lines(app, code) if line["what"] == "granted"]
    assert granted["amount"] == L.BUDGET
    memo = granted["memo"]
    assert len(memo) <= 200 and memo.endswith("…")
    full = app.run(FIN, budget.explain, code, JAN)
    whole = " + ".join(p["explanation"] for p in full["parts"])
    assert len(whole) > 200  # the note is the month's explanation, shortened between words
    kept = memo[:-1]
    assert whole.startswith(kept) and whole[len(kept)] == " "


words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzäö0123456789,.€", min_size=1, max_size=15),
                 min_size=1, max_size=40)


@given(words, st.integers(10, 120))
def test_clipped_text_ends_between_words(parts, limit):
    text = " ".join(parts)
    clipped = clip_words(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
        return
    assert clipped.endswith("…")
    kept = clipped[:-1]
    assert text.startswith(kept)
    if len(parts[0]) < limit - 1:  # unless the first word alone is too long, a whole word ends it
        assert text[len(kept)] == " " or text[len(kept):].lstrip(",;:+–-").startswith(" ")
