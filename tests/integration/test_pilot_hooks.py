"""The hooks a real pilot needs, through the services and the command line: eligibility
judged again when a decision is granted, whole-month budgets prorated by the core, a
remainder carried over once, and workflow steps replayed on a past date."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import open_app
from helpers import FINANCE, HETUS, add_team, approve, enroll, month_ready, propose
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.cli import cli
from avain.core.cli import state as cli_state
from avain.core.domain import PERIOD_END_ACTIONS, BudgetAmount, Money, Period, PeriodEndPolicy, WorkflowOptions
from avain.core.errors import Refused
from avain.core.hookspecs import hookimpl
from avain.core.models import AccountRow, DecisionRow, TransferRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import audit_log, budget, purchases, statements

ADMIN = Actor("admin")


@pytest.fixture(autouse=True)
def _no_plugin_selection(monkeypatch):
    monkeypatch.delenv("AVAIN_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("AVAIN_DB", raising=False)


@pytest.fixture
def app_with(db_url):
    opened = []

    def make(*extra):
        app = open_app(db_url, make_plugin_manager(extra=list(extra)))
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture
def avain(monkeypatch, db_url):
    """``avain(*args, plugins=[…])``: the command line on a fresh database of each engine."""
    runner = CliRunner()

    def run(*args, plugins=()):
        monkeypatch.setattr(cli_state, "make_plugin_manager", lambda: make_plugin_manager(extra=list(plugins)))
        return runner.invoke(cli, ["--db", db_url, *map(str, args)])

    assert run("init", "--json").exit_code == 0
    return run


def ledger_clean(app) -> bool:
    return app.run(ADMIN, statements.verify)["ok"]


# --- eligibility at the decision ---------------------------------------------------------


class UnderTwentyFive:
    """HB only while the client is under 25: a decision must end before the 25th birthday.
    Records what the hook was given at each call."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def avain_check_eligibility(self, pilot, client, assessment, decision):
        self.calls.append((client.birth_date, client.on_date, dict(assessment), decision))
        if decision is None:
            return []
        born = client.birth_date
        if decision.valid_to >= born.replace(year=born.year + 25):
            return [f"HB must end before the client turns 25 ({born.year + 25}); give an earlier --to"]
        return []


def test_eligibility_is_judged_again_on_the_decisions_dates(app_with):
    rule = UnderTwentyFive()
    app = app_with(rule)
    team = add_team(app)
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])  # born 1.5.1994
    enrolled = rule.calls[-1]
    assert enrolled[3] is None and enrolled[1] == dt.date(2017, 12, 1)
    worker = Actor("worker", team["worker"])

    with pytest.raises(Refused) as err:
        app.run(worker, budget.grant, code, valid_from=dt.date(2018, 3, 1), valid_to=dt.date(2019, 12, 31),
                monthly_amount=Money(30000))
    assert str(err.value) == (f"cannot grant HB to {code}: HB must end before the client turns 25 (2019); "
                              "give an earlier --to")
    assert err.value.reasons == ["HB must end before the client turns 25 (2019); give an earlier --to"]
    birth, on_date, assessment, decision = rule.calls[-1]
    # The birth date from the henkilötunnus, the decision's first day, the assessment in force.
    assert (birth, on_date, assessment) == (dt.date(1994, 5, 1), dt.date(2018, 3, 1), {"carer_contract": "yes"})
    assert (decision.client_code, decision.valid_from, decision.valid_to, decision.monthly_amount) == (
        code, dt.date(2018, 3, 1), dt.date(2019, 12, 31), Money(30000))
    # Nothing written: no decision, no budget account, no audit event.
    with Session(app.engine) as s:
        assert s.execute(select(func.count()).select_from(DecisionRow)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(AccountRow).where(
            AccountRow.kind == "budget")).scalar_one() == 0
    assert "decision.granted" not in [e["action"] for e in app.run(ADMIN, audit_log.log, subject=code)]

    granted = app.run(worker, budget.grant, code, valid_from=dt.date(2018, 3, 1), valid_to=dt.date(2019, 4, 30),
                      monthly_amount=Money(30000))
    assert granted["to"] == "2019-04-30"
    assert ledger_clean(app)


def test_a_rule_written_for_the_enrolment_day_holds_on_the_decisions_first_day(app_with):
    class AtMostTwentyThree:
        @hookimpl
        def avain_check_eligibility(self, client):
            born, day = client.birth_date, client.on_date
            years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
            return [f"the client must be at most 23 on {day.isoformat()} (is {years})"] if years > 23 else []

    app = app_with(AtMostTwentyThree())
    team = add_team(app)
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])  # 23 on the enrolment day
    with pytest.raises(Refused, match="must be at most 23 on 2018-06-01 \\(is 24\\)"):
        app.run(Actor("worker", team["worker"]), budget.grant, code, valid_from=dt.date(2018, 6, 1),
                valid_to=dt.date(2018, 12, 31))
    assert app.run(Actor("worker", team["worker"]), budget.grant, code, valid_from=dt.date(2018, 1, 1),
                   valid_to=dt.date(2018, 12, 31))["from"] == "2018-01-01"


def test_decision_grant_on_the_command_line_names_the_reasons_and_writes_nothing(avain):
    rule = UnderTwentyFive()
    for code, name, role in (("02", "S", "supervisor"), ("01", "W", "worker")):
        assert avain("worker", "add", "--pilot", "example", "--code", code, "--name", name,
                     "--role", role).exit_code == 0
    enrolled = avain("client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
                     "--group", "family", "--assess", "carer_contract=yes", "--hetu", HETUS[0], "--date",
                     "2017-12-01", plugins=[rule])
    assert enrolled.exit_code == 0, enrolled.output
    code = enrolled.stdout.strip()
    worker = ("--as", "worker:example-01")
    refused = avain(*worker, "decision", "grant", code, "--from", "2018-01-01", "--to", "2019-06-30",
                    "--amount", "300", plugins=[rule])
    assert refused.exit_code == 1
    assert f"cannot grant HB to {code}: HB must end before the client turns 25 (2019)" in refused.stderr
    assert "010594" not in refused.output  # no henkilötunnus in the error
    shown = avain(*worker, "decision", "show", code, "--json", plugins=[rule])
    assert json.loads(shown.stdout) == []
    ok = avain(*worker, "decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31",
               "--amount", "300", "--json", plugins=[rule])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["to"] == "2018-12-31"
    assert avain("ledger", "verify", plugins=[rule]).exit_code == 0


def test_the_built_in_pilots_grant_as_before(app):
    team, codes = month_ready(app)
    assert len(app.run(ADMIN, budget.decisions, codes[0])) == 1
    assert ledger_clean(app)


# --- whole-month budgets, prorated by the core ----------------------------------------------


class HoursTimesPrice:
    """A pilot that states only its monthly rule: assessed hours × 35,00 €."""

    @hookimpl
    def avain_compute_budget(self, decision):
        hours = int(decision.inputs.get("hours", 0))
        return BudgetAmount(Money(hours * 3500), f"{hours} h × 35,00 €", "hours-2018", whole_month=True)


def test_a_monthly_rule_is_prorated_by_the_core_for_a_part_month(app_with):
    app = app_with(HoursTimesPrice())
    team = add_team(app)
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    worker = Actor("worker", team["worker"])
    grant = app.run(worker, budget.grant, code, valid_from=dt.date(2018, 1, 15), valid_to=dt.date(2018, 2, 20),
                    inputs={"hours": "10"})
    # computed at the grant already: 17 of January's 31 days of 350,00 €
    assert grant["at_grant"]["amount"] == 35000 - 35000 * 14 // 31 == 19194
    assert grant["at_grant"]["explanation"] == "10 h × 35,00 €; 17 of 31 days in 2018-01 (15.–31.1.): 191,94\u00a0€"
    jan = budget.open_period(app, FINANCE, "example", Period(2018, 1))
    assert jan["amount"] == 19194
    explained = app.run(ADMIN, budget.explain, code, Period(2018, 2))
    assert explained["amount"] == 35000 * 20 // 28  # 1.–20.2.
    assert explained["parts"][0]["rule"] == "hours-2018"
    assert "20 of 28 days in 2018-02" in explained["parts"][0]["explanation"]
    assert ledger_clean(app)


def test_a_month_split_between_two_decisions_adds_up_to_the_monthly_rule(app_with):
    app = app_with(HoursTimesPrice())
    team = add_team(app)
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    worker = Actor("worker", team["worker"])
    first = app.run(worker, budget.grant, code, valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31),
                    inputs={"hours": "10"})
    app.run(worker, budget.amend, first["id"], reason="hours assessed again", valid_from=dt.date(2018, 3, 11),
            inputs={"hours": "10"})
    march = app.run(ADMIN, budget.explain, code, Period(2018, 3))
    assert [p["amount"] for p in march["parts"]] == [35000 * 10 // 31, 35000 - 35000 * 10 // 31]
    assert march["amount"] == 35000


def test_the_core_fallback_gives_what_it_gave_before(app):
    """The amount written on a decision, prorated by the core: the same cents and words as
    when the fallback prorated itself."""
    team = add_team(app)
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    decision = app.run(Actor("worker", team["worker"]), budget.grant, code, valid_from=dt.date(2018, 1, 15),
                       valid_to=dt.date(2018, 12, 31), monthly_amount=Money(30000))
    opened = budget.open_period(app, FINANCE, "example", Period(2018, 1))
    assert opened["amount"] == 30000 - 30000 * 14 // 31 == 16452
    assert app.run(ADMIN, budget.explain, code, Period(2018, 1))["parts"][0]["explanation"] == (
        f"300,00\u00a0€ per month by decision {decision['id']}; 17 of 31 days in 2018-01 (15.–31.1.): 164,52\u00a0€")
    assert app.run(ADMIN, budget.explain, code, Period(2018, 2))["amount"] == 30000


def test_decision_explain_on_the_command_line_shows_the_prorated_part(avain):
    plugins = [HoursTimesPrice()]
    for wcode, name, role in (("02", "S", "supervisor"), ("01", "W", "worker")):
        assert avain("worker", "add", "--pilot", "example", "--code", wcode, "--name", name,
                     "--role", role).exit_code == 0
    code = avain("client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
                 "--group", "family", "--assess", "carer_contract=yes", "--hetu", HETUS[0], "--date",
                 "2017-12-01", plugins=plugins).stdout.strip()
    granted = avain("--as", "worker:example-01", "decision", "grant", code, "--from", "2018-01-15", "--to",
                    "2018-12-31", "--input", "hours=10", plugins=plugins)
    assert granted.exit_code == 0, granted.output
    shown = avain("decision", "explain", code, "--period", "2018-01", "--json", plugins=plugins)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["amount"] == 19194


# --- carry over once ----------------------------------------------------------------------


class CarryOnce:
    @hookimpl
    def avain_period_end_policy(self):
        return PeriodEndPolicy("carry-once")


@given(st.sampled_from(PERIOD_END_ACTIONS), st.integers(-10, 10**7), st.integers(0, 10**7),
       st.integers(-10**6, 10**7))
def test_a_remainder_is_split_without_creating_or_losing_a_cent(action, remainder, carried_in, spent):
    carry, lapse = PeriodEndPolicy(action).split(remainder, carried_in, spent)
    assert carry >= 0 and lapse >= 0
    assert carry + lapse == max(remainder, 0)
    if action == "carry-once":
        assert lapse <= carried_in  # only money carried in lapses
        # what was carried in and not spent lapses, as far as the remainder holds it
        assert lapse == min(max(remainder, 0), max(0, carried_in - max(spent, 0)))
    else:
        assert (carry if action == "lapse" else lapse) == 0


def _spend(app, team, code, cents, day):
    pid = propose(app, code, cents, day=day)
    return approve(app, team, pid, today=day)


def _invoice(app, commitment, cents, day, number):
    return app.run(FINANCE, purchases.record_invoice, provider_id=commitment["provider"], number=number,
                   amount=Money(cents), reference=commitment["reference"], on_date=day, final=True)


def _close(app, period):
    return budget.close_period(app, FINANCE, "example", period)


def test_carry_once_carries_the_months_own_remainder_and_lapses_what_was_carried_in(app_with):
    app = app_with(CarryOnce())
    team, (code,) = month_ready(app, clients=1)  # 300,00 € a month from January
    _invoice(app, _spend(app, team, code, 10000, dt.date(2018, 1, 15)), 10000, dt.date(2018, 1, 20), "J1")
    jan = _close(app, Period(2018, 1))
    assert (jan["policy"], jan["carried"], jan["lapsed"]) == ("carry-once", 20000, 0)
    budget.open_period(app, FINANCE, "example", Period(2018, 2))
    assert app.run(ADMIN, statements.balance, code)["available"] == 50000
    # February spends 150,00 €: taken from January's 200,00 € first.
    _invoice(app, _spend(app, team, code, 15000, dt.date(2018, 2, 15)), 15000, dt.date(2018, 2, 20), "F1")
    feb = _close(app, Period(2018, 2))
    assert (feb["carried"], feb["lapsed"]) == (30000, 5000)  # February's own; January's last 50,00 €
    budget.open_period(app, FINANCE, "example", Period(2018, 3))
    mar = _close(app, Period(2018, 3))
    assert (mar["carried"], mar["lapsed"]) == (30000, 30000)  # nothing spent: February's money lapses
    lines = app.run(ADMIN, statements.statement, code)["lines"]
    lapses = [(line["date"], line["amount"], line["memo"]) for line in lines if line["transfer"].startswith("lapse:")]
    assert lapses == [("2018-02-28", 5000, "carried into 2018-02 and unused"),
                      ("2018-03-31", 30000, "carried into 2018-03 and unused")]
    assert ledger_clean(app)


def test_close_period_on_the_command_line_says_what_carried_and_what_lapsed(avain):
    plugins = [CarryOnce()]
    for wcode, name, role in (("02", "S", "supervisor"), ("01", "W", "worker"), ("04", "F", "finance")):
        assert avain("worker", "add", "--pilot", "example", "--code", wcode, "--name", name,
                     "--role", role).exit_code == 0
    code = avain("client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
                 "--group", "family", "--assess", "carer_contract=yes", "--hetu", HETUS[0], "--date",
                 "2017-12-01", plugins=plugins).stdout.strip()
    assert avain("--as", "worker:example-01", "decision", "grant", code, "--from", "2018-01-01", "--to",
                 "2018-12-31", "--amount", "300", plugins=plugins).exit_code == 0
    fin = ("--as", "finance:example-04")
    for month in ("2018-01", "2018-02"):
        assert avain(*fin, "budget", "open-period", "--pilot", "example", month, plugins=plugins).exit_code == 0
        closed = avain(*fin, "--lang", "en", "budget", "close-period", "--pilot", "example", month,
                       plugins=plugins)
        assert closed.exit_code == 0, closed.output
    assert "closed 2018-02 for example: €300.00 carried over once and €300.00 carried in before lapsed, " \
           "from 1 budget" in closed.stdout
    as_json = avain(*fin, "budget", "close-period", "--pilot", "example", "2018-02", "--json", plugins=plugins)
    assert as_json.exit_code == 1  # closed already
    assert avain("ledger", "verify", plugins=plugins).exit_code == 0


@pytest.fixture(scope="module")
def carry_template(tmp_path_factory, sqlite_template):
    """A SQLite database with the example team, one client granted 300,00 € a month for
    2018 and January open, under carry-once: each example of the property copies it."""
    folder = tmp_path_factory.mktemp("carry")
    shutil.copy(sqlite_template, folder / "avain.db")
    app = open_app(f"sqlite:///{folder / 'avain.db'}", make_plugin_manager(extra=[CarryOnce()]))
    team, (code,) = month_ready(app, clients=1)
    app.close()
    return folder, team, code


MONTH = st.lists(st.tuples(st.integers(1, 25000), st.sampled_from(["invoiced", "in part", "pending",
                                                                    "cancelled"])), max_size=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(months=st.lists(MONTH, min_size=1, max_size=3))
def test_carry_once_creates_and_loses_no_money(carry_template, tmp_path_factory, months):
    """Whatever a client spends, month after month under carry-once: granted = spent +
    lapsed + carried (not yet carried in) + reserved + available, only a month's own
    money carries out of it and only money carried in lapses when it closes."""
    template, team, code = carry_template
    folder = tmp_path_factory.mktemp("example")
    shutil.copytree(template, folder, dirs_exist_ok=True)
    app = open_app(f"sqlite:///{folder / 'avain.db'}", make_plugin_manager(extra=[CarryOnce()]))
    try:
        period = Period(2018, 1)
        for i, purchases_ in enumerate(months):
            if i:
                budget.open_period(app, FINANCE, "example", period)
            for j, (cents, fate) in enumerate(purchases_):
                if cents > app.run(ADMIN, statements.balance, code)["available"]:
                    continue
                day = period.first_day + dt.timedelta(days=10 + j)
                c = _spend(app, team, code, cents, day)
                if fate in ("invoiced", "in part"):
                    _invoice(app, c, cents if fate == "invoiced" else (cents + 1) // 2, day, f"{period}-{j}")
                elif fate == "cancelled":
                    app.run(Actor("worker", team["worker"]), purchases.cancel, c["id"], on_date=day)
            _close(app, period)
            period = period.next()
        with Session(app.engine) as s:
            acc = s.execute(select(AccountRow.id).where(AccountRow.kind == "budget",
                                                        AccountRow.owner == code)).scalar_one()
            rows = s.execute(select(TransferRow).where(
                (TransferRow.debit_account_id == acc) | (TransferRow.credit_account_id == acc))).scalars().all()

        def total(kind, *, into, month=None, prefix=""):
            return sum(t.amount for t in rows if t.kind == kind and (t.credit_account_id == acc) == into
                       and (month is None or t.period == month) and t.id.startswith(prefix))

        granted = total("allocation", into=True)
        spent = total("post", into=False)
        lapsed = total("lapse", into=False)
        carried = total("carry-over", into=False) - total("carry-over", into=True)
        b = app.run(ADMIN, statements.balance, code)
        assert granted == spent + lapsed + carried + b["reserved"] + b["available"]
        for month in {t.period for t in rows}:
            assert total("carry-over", into=False, month=month) <= total("allocation", into=True, month=month)
            assert total("lapse", into=False, month=month, prefix="lapse:example:") <= \
                total("carry-over", into=True, month=month)
        assert ledger_clean(app)
    finally:
        app.close()


# --- workflow steps replayed on a past date --------------------------------------------------


class ReceiptsAndMonths:
    """A pilot that uses receipt confirmation."""

    @hookimpl
    def avain_workflow_options(self):
        return WorkflowOptions(confirm_receipt=True)


def _business_dates(app, code):
    return {line["transfer"].split(":")[0]: line["date"]
            for line in app.run(ADMIN, statements.statement, code)["lines"]}


def test_approve_confirm_and_invoice_on_a_past_date(app_with):
    app = app_with(ReceiptsAndMonths())
    team, (code,) = month_ready(app, clients=1)
    worker = Actor("worker", team["worker"])
    pid = propose(app, code, 10000, day=dt.date(2018, 1, 20))
    approved = app.run(worker, purchases.approve, pid, on_date=dt.date(2018, 1, 12))
    # valid for the pilot's 60 days from the service date, the later of the two
    assert approved["commitment"]["expires_on"] == "2018-03-21"
    c = approved["commitment"]
    confirmed = app.run(Actor("client", code), purchases.confirm_receipt, c["id"], on_date=dt.date(2018, 1, 21))
    assert confirmed["received_on"] == "2018-01-21"
    _invoice(app, c, 8000, dt.date(2018, 1, 25), "P-1")
    # the commitment on its service date; the invoice's post and release on the invoice's day
    assert _business_dates(app, code) == {"alloc": "2018-01-01", "commit": "2018-01-20", "post": "2018-01-25",
                                          "release": "2018-01-25"}
    assert ledger_clean(app)


def test_a_date_in_a_closed_month_is_refused_naming_date(app_with):
    app = app_with(ReceiptsAndMonths())
    team, (code,) = month_ready(app, clients=1)
    worker = Actor("worker", team["worker"])
    c = _spend(app, team, code, 10000, dt.date(2018, 1, 20))
    _close(app, Period(2018, 1))
    budget.open_period(app, FINANCE, "example", Period(2018, 2))
    with pytest.raises(Refused) as err:
        app.run(Actor("client", code), purchases.confirm_receipt, c["id"], on_date=dt.date(2018, 1, 30))
    assert str(err.value) == ("--date: 2018-01-30 is in 2018-01, which example has closed; a receipt can be dated "
                              "in a month that is not closed (today, or a day of an open month)")
    assert err.value.field == "--date"
    app.run(Actor("client", code), purchases.confirm_receipt, c["id"], on_date=dt.date(2018, 2, 1))
    with pytest.raises(Refused, match="^--date: 2018-01-31 is in 2018-01, which example has closed; an invoice"):
        _invoice(app, c, 10000, dt.date(2018, 1, 31), "L-1")
    _invoice(app, c, 10000, dt.date(2018, 2, 2), "L-1")
    feb = propose(app, code, 5000, day=dt.date(2018, 2, 10))
    with pytest.raises(Refused, match="^--date: 2018-01-31 is in 2018-01, which example has closed; an approval"):
        app.run(worker, purchases.approve, feb, on_date=dt.date(2018, 1, 31))
    assert app.run(worker, purchases.approve, feb, on_date=dt.date(2018, 2, 3))["commitment"]["status"] == "pending"
    assert ledger_clean(app)


@pytest.fixture
def run(tmp_path):
    db = f"sqlite:///{tmp_path / 'avain.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init"]).exit_code == 0

    def invoke(*args, actor=None, ok=0):
        argv = ["--db", db, "--lang", "en", *(["--as", actor] if actor else []), *map(str, args)]
        result = runner.invoke(cli, argv)
        assert "Traceback" not in result.output
        assert result.exit_code == ok, result.output
        return result

    invoke.json = lambda *args, actor=None: json.loads(invoke(*args, "--json", actor=actor).stdout)
    invoke.tmp = tmp_path
    return invoke


def test_dates_on_the_command_line_date_the_ledger_and_refuse_a_closed_month(run, monkeypatch):
    monkeypatch.delenv("AVAIN_LOAD_PLUGINS", raising=False)
    for wcode, name, role in (("02", "S", "supervisor"), ("01", "W", "worker"), ("04", "F", "finance")):
        run("worker", "add", "--pilot", "example", "--code", wcode, "--name", name, "--role", role)
    run("provider", "add", "--ytunnus", "1572860-0", "--name", "Siivous Oy", "--iban", "FI2112345600000785",
        "--area", "Kajaani")
    checks = [a for c in ("prepayment_register", "provider_register", "service_level", "liability_insurance",
                          "hb_training") for a in ("--check", f"{c}=document seen@2017-12-01")]
    run("provider", "approve", "1572860-0", "--pilot", "example", "--service", "cleaning", "--from", "2017-12-01",
        *checks)
    prices = run.tmp / "prices.csv"
    prices.write_text("provider,service,price,valid_from\n1572860-0,cleaning,\"50,00\",2017-01-01\n")
    run("catalogue", "import", prices)
    code = run.json("client", "enroll", "--pilot", "example", "--hetu", HETUS[0], "--name", "N", "--worker",
                    "example-01", "--group", "family", "--assess", "carer_contract=yes", "--date",
                    "2017-12-01")["code"]
    run("plan", "set", code, "--from", "2018-01-01", "--item", "cleaning=4", actor="worker:example-01")
    run("decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31", "--amount", "300",
        actor="worker:example-01")
    fin = "finance:example-04"
    run("budget", "open-period", "--pilot", "example", "2018-01", actor=fin)

    def proposal(day):
        return run.json("proposal", "create", code, "--service", "cleaning", "--provider", "1572860-0",
                        "--amount", "40", "--date", day, actor=f"client:{code}")["id"]

    approved = run.json("proposal", "approve", proposal("2018-01-15"), "--date", "2018-01-10",
                        actor="worker:example-01")
    assert approved["commitment"]["expires_on"] == "2018-03-16"
    ref = approved["commitment"]["reference_rf"]
    run("budget", "close-period", "--pilot", "example", "2018-01", actor=fin)
    run("budget", "open-period", "--pilot", "example", "2018-02", actor=fin)
    refused = run("invoice", "record", "--provider", "1572860-0", "--number", "A-1", "--amount", "40", "--ref",
                  ref, "--date", "2018-01-31", actor=fin, ok=1)
    assert "--date: 2018-01-31 is in 2018-01, which example has closed" in refused.output
    run("invoice", "record", "--provider", "1572860-0", "--number", "A-1", "--amount", "40", "--ref", ref,
        "--date", "2018-02-05", actor=fin)
    refused = run("proposal", "approve", proposal("2018-02-12"), "--date", "2018-01-20",
                  actor="worker:example-01", ok=1)
    assert "--date: 2018-01-20 is in 2018-01, which example has closed; an approval" in refused.output
    lines = run.json("ledger", "statement", code)["lines"]
    assert [(line["transfer"].split(":")[0], line["date"]) for line in lines if line["transfer"].startswith(
        ("commit", "post"))] == [("commit", "2018-01-15"), ("post", "2018-02-05")]
    assert run.json("ledger", "verify")["ok"]
