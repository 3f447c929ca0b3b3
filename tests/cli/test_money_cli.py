"""Money defects through the commands: statements carry business dates, a month is not
closed before its end without --force, a proposal in a month that is not open is refused."""

import datetime as dt

from test_workflow_cli import run, setup_month  # noqa: F401  (the fixture and the month's set-up)


def test_a_statement_shows_business_dates_beside_the_recording_time(run):  # noqa: F811
    """Regression: every row showed the day the command ran, even for January 2018."""
    code = setup_month(run)
    p = run.json("proposal", "create", code, "--service", "cleaning", "--provider", "1572860-0",
                 "--amount", "45,50", "--date", "2018-01-12", actor=f"client:{code}")
    ref = run.json("proposal", "approve", p["id"], actor="worker:example-01")["commitment"]["reference_rf"]
    run.json("invoice", "record", "--provider", "1572860-0", "--number", "A-1", "--amount", "40", "--ref", ref,
             "--date", "2018-01-20", "--final", actor="finance:example-04")
    run("budget", "close-period", "--pilot", "example", "2018-01", actor="finance:example-04")
    lines = run.json("ledger", "statement", code)["lines"]
    assert [(line["what"], line["date"]) for line in lines] == [
        ("granted", "2018-01-01"), ("committed", "2018-01-12"),
        ("spent", "2018-01-20"), ("released", "2018-01-20"), ("lapsed", "2018-01-31")]
    today = dt.date.today().isoformat()
    assert all(line["recorded_at"].startswith(today) for line in lines)
    table = run("ledger", "statement", code).stdout
    assert "2018-01-12" in table and "2018-01-20" in table and today not in table  # ISO in English output


def test_close_period_is_refused_before_the_months_end_unless_forced(run):  # noqa: F811
    """Regression: close-period run on 3 December lapsed a month still being spent."""
    setup_month(run)
    run("budget", "close-period", "--pilot", "example", "2018-01", actor="finance:example-04")
    run("budget", "open-period", "--pilot", "example", "2099-01", actor="finance:example-04")
    r = run("budget", "close-period", "--pilot", "example", "2099-01", actor="finance:example-04", ok=1)
    assert "2099-01 does not end until 2099-01-31" in r.stderr
    assert "0 commitment(s)" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert [p["status"] for p in run.json("budget", "show", "--pilot", "example")] == ["closed", "open"]
    closed = run.json("budget", "close-period", "--pilot", "example", "2099-01", "--force", actor="finance:example-04")
    assert closed["forced"] is True and closed["proposals_expired"] == 0
    events = run.json("audit", "log", "--subject", "example:2099-01")
    assert [e["after"]["forced"] for e in events if e["action"] == "budget.period_closed"] == [True]


def test_a_proposal_for_a_month_that_is_not_open_names_the_date(run):  # noqa: F811
    code = setup_month(run)
    r = run("proposal", "create", code, "--service", "cleaning", "--provider", "1572860-0",
            "--amount", "10", "--date", "2018-02-03", actor=f"client:{code}", ok=1)
    assert r.stderr.startswith("error: --date: 2018-02-03 ")
    assert "2018-02 is not open for spending (not opened)" in r.stderr
    assert run.json("proposal", "list") == []
