"""The ePassi payment backend: the simulator's rules, the adapter over real HTTP, loading
a month, importing and reconciling charges (SQLite and PostgreSQL), and the commands.

Every test that talks to ePassi starts the simulator on a free port of 127.0.0.1 with its
own file and a clock the test sets, and stops it afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import open_app
from helpers import HETUS, PROVIDERS

import avain.plugins.payment_epassi as payment_epassi
from avain.core.auth import Actor
from avain.core.cli import cli
from avain.core.cli import state as cli_state
from avain.core.domain import Money, Period
from avain.core.errors import NotFound, PermissionDenied, Refused, ValidationError
from avain.core.plugins import make_plugin_manager
from avain.core.services import audit_log, budget, payments, people, pilots, providers, statements
from avain.plugins.payment_epassi import backend, report
from avain.plugins.payment_epassi.client import EpassiClient, ServiceUnavailable
from avain.plugins.payment_epassi.reconcile import differences
from avain.plugins.payment_epassi.simulator import Simulator
from avain.plugins.payment_epassi.wallets import HELSINKI, ServiceRefusal, Wallets

PLUGIN_DIR = Path(payment_epassi.__file__).parent
PILOT = "epassi-test"
JAN, FEB = Period(2018, 1), Period(2018, 2)
PHONES = ["+358401000001", "+358401000002", "+358401000003"]
P0, P1 = PROVIDERS
UNREGISTERED = "1234567-1"  # a valid Y-tunnus avain has no provider for
ADMIN = Actor("admin")
FIN = Actor("finance")


def epassi_pm():
    """A fresh plugin manager: the ePassi plugin comes in through its entry point."""
    pm = make_plugin_manager()
    assert pm.is_registered(payment_epassi)
    return pm


class Clock:
    """The simulator's "now", set by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime(2018, 1, 15, 10, 0, tzinfo=HELSINKI)

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, *when: int) -> None:
        self.now = dt.datetime(*when, tzinfo=HELSINKI)


@pytest.fixture
def pm():
    """Overrides conftest's: the ``app`` fixture then has this plugin."""
    return epassi_pm()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sim(tmp_path, clock):
    """The simulator on a free port, two transactions a page (so reports come in pages)."""
    simulator = Simulator(tmp_path / "epassi.db", clock=clock, page_size=2)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def wallet(sim):
    return EpassiClient(sim.url, timeout=5)


@pytest.fixture
def pilot_file(tmp_path, sim) -> Path:
    """The shipped example pilot, as a test pilot of its own that talks to this simulator."""
    text = (PLUGIN_DIR / "pilot.toml").read_text(encoding="utf-8")
    text = text.replace('id = "example-epassi"', f'id = "{PILOT}"').replace('code = "EP"', 'code = "ET"')
    text = text.replace('url = "http://127.0.0.1:8765"', f'url = "{sim.url}"')
    assert f'id = "{PILOT}"' in text and sim.url in text, "the shipped pilot.toml changed: update this fixture"
    path = tmp_path / "pilot.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Month:
    def __init__(self, app, codes, finance, opened):
        self.app, self.codes, self.finance, self.opened = app, codes, finance, opened
        self.pilot = app.read(ADMIN, pilots.get, PILOT)


def ready(app, pilot_file, *, phones=PHONES[:2], open_month=True) -> Month:
    """The test pilot with a team, both providers, a client per phone (None: no phone)
    with HB for 2018 at the pilot's default 300 €, and January opened (and loaded)."""
    app.run(ADMIN, pilots.add_file, pilot_file)

    def add(code, role, supervisor=None):
        return app.run(ADMIN, people.add_worker, pilot_id=PILOT, code=code, name=f"Worker {code}",
                       role=role, supervisor_id=supervisor)["id"]

    worker = add("01", "worker", add("02", "supervisor"))
    finance = Actor("finance", add("04", "finance"))
    for i, pid in enumerate(PROVIDERS):
        app.run(ADMIN, providers.add, business_id=pid, name=f"Provider {i}")
    codes = [app.run(ADMIN, people.enroll, pilot_id=PILOT, hetu=HETUS[i], name="Testi Henkilö", worker_id=worker,
                     phone=phone, on_date=dt.date(2018, 1, 1))["code"] for i, phone in enumerate(phones)]
    for code in codes:
        app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1),
                valid_to=dt.date(2018, 12, 31))
    opened = budget.open_period(app, finance, PILOT, JAN) if open_month else None
    return Month(app, codes, finance, opened)


def ledger_charges(app, period=JAN):
    found = app.read(FIN, payments.ledger_charges, backend="epassi", pilot_id=PILOT, period=period)
    return sorted((c["external_id"], c["client"], c["provider"], c["amount"], c["cancelled"]) for c in found)


def transfer_count(app) -> int:
    checked = app.read(ADMIN, statements.verify)
    assert checked["ok"], checked["problems"]
    return checked["transfers"]


def available(app, code) -> int:
    return app.read(FIN, statements.balance, code)["available"]


def csv_export(sim, period=JAN) -> str:
    with urllib.request.urlopen(f"{sim.url}/transactions.csv?period={period}", timeout=5) as response:
        return response.read().decode()


# --- the simulator's rules (no database) -------------------------------------------------


def test_a_charge_above_the_balance_or_without_the_identity_check_is_refused(wallet):
    wallet.load_wallet(PHONES[0], client_ref="ET-F-01-001", period="2018-01", amount=30000, rest="withdraw",
                       identity_check_required=True)
    with pytest.raises(Refused, match="^ePassi refused: the wallet holds 300,00\xa0€, the charge is "
                                      "300,01\xa0€$") as refused:
        wallet.charge(phone=PHONES[0], provider=P0, amount=30001, identity_checked=True)
    assert refused.value.reasons == ["insufficient-balance"]
    with pytest.raises(Refused, match="identity check") as refused:
        wallet.charge(phone=PHONES[0], provider=P0, amount=100, identity_checked=False)
    assert refused.value.reasons == ["identity-check-required"]
    spent = wallet.charge(phone=PHONES[0], provider=P0, amount=30000, identity_checked=True)
    assert (spent["type"], spent["client_ref"], spent["balance"]) == ("charge", "ET-F-01-001", 0)
    with pytest.raises(Refused, match="holds 0,00"):
        wallet.charge(phone=PHONES[0], provider=P0, amount=1, identity_checked=True)
    with pytest.raises(NotFound, match="no wallet has this phone number"):
        wallet.charge(phone=PHONES[1], provider=P0, amount=1, identity_checked=True)
    with pytest.raises(ValidationError, match="provider: a Y-tunnus"):
        wallet.charge(phone=PHONES[0], provider="Kotiapu", amount=1, identity_checked=True)


def test_a_wallet_holds_one_month_and_deals_with_the_rest_by_the_flag(tmp_path, clock):
    w = Wallets(tmp_path / "w.db", clock=clock)
    try:
        load = dict(client_ref="C1", amount=30000, identity_check_required=False)
        first = w.load(PHONES[0], period="2018-01", rest="withdraw", **load)
        assert [(t["type"], t["amount"]) for t in first["transactions"]] == [("load", 30000)]
        assert w.load(PHONES[0], period="2018-01", rest="withdraw", **load) == {**first, "transactions": [],
                                                                                 "changed": False}
        w.charge(phone=PHONES[0], provider=P0, amount=10000, identity_checked=False)  # no check asked for
        clock.set(2018, 2, 3, 9, 0)
        with pytest.raises(ServiceRefusal, match="holds the budget of 2018-01; 2018-02 is not loaded"):
            w.charge(phone=PHONES[0], provider=P0, amount=100, identity_checked=False)
        kept = w.load(PHONES[0], period="2018-02", rest="keep", **load)  # carry-over: the rest counts
        assert [(t["type"], t["period"], t["amount"]) for t in kept["transactions"]] == [("load", "2018-02", 10000)]
        assert (kept["wallet"]["balance"], kept["wallet"]["budget"]) == (30000, 30000)
        w.charge(phone=PHONES[0], provider=P0, amount=5000, identity_checked=False)
        clock.set(2018, 3, 1, 9, 0)
        lapsed = w.load(PHONES[0], period="2018-03", rest="withdraw", **{**load, "amount": 20000})
        assert [(t["type"], t["period"], t["amount"]) for t in lapsed["transactions"]] == [
            ("withdraw", "2018-02", 25000), ("load", "2018-03", 20000)]
        w.charge(phone=PHONES[0], provider=P0, amount=15000, identity_checked=False)
        with pytest.raises(ServiceRefusal, match="cannot be lowered by 100,00.€: the wallet holds 50,00"):
            w.load(PHONES[0], period="2018-03", rest="withdraw", **{**load, "amount": 10000})
        topped = w.load(PHONES[0], period="2018-03", rest="withdraw", **{**load, "amount": 25000})
        assert [(t["type"], t["amount"]) for t in topped["transactions"]] == [("load", 5000)]
        with pytest.raises(ServiceRefusal, match="holds the budget of 2018-03 already; 2018-02 cannot"):
            w.load(PHONES[0], period="2018-02", rest="withdraw", **load)
        with pytest.raises(ServiceRefusal, match="has the wallet of C1, not C2"):
            w.load(PHONES[0], period="2018-03", rest="withdraw", **{**load, "client_ref": "C2"})
    finally:
        w.close()


def test_a_cancellation_is_allowed_on_the_day_of_the_charge_only(wallet, clock):
    wallet.load_wallet(PHONES[0], client_ref="C1", period="2018-01", amount=30000, rest="withdraw",
                       identity_check_required=False)
    charge = wallet.charge(phone=PHONES[0], provider=P0, amount=4550, identity_checked=False)
    clock.set(2018, 1, 15, 23, 59)
    cancelled = wallet.cancel(charge["id"])
    assert (cancelled["type"], cancelled["cancels"], cancelled["balance"], cancelled["replayed"]) == (
        "cancel", charge["id"], 30000, False)
    assert wallet.cancel(charge["id"])["id"] == cancelled["id"]  # asking twice is harmless
    late = wallet.charge(phone=PHONES[0], provider=P0, amount=1000, identity_checked=False)
    clock.set(2018, 1, 16, 0, 1)
    with pytest.raises(Refused, match=r"cancelled on the day it was made \(2018-01-15\) only") as refused:
        wallet.cancel(late["id"])
    assert refused.value.reasons == ["cancel-window-closed"]
    with pytest.raises(NotFound):
        wallet.cancel("nope-000001")


def test_the_report_comes_in_pages_and_as_a_csv_export(sim, wallet):
    for i, phone in enumerate(PHONES):
        wallet.load_wallet(phone, client_ref=f"C{i}", period="2018-01", amount=30000, rest="withdraw",
                           identity_check_required=False)
    wallet.charge(phone=PHONES[0], provider=P0, amount=1250, identity_checked=False)
    first = wallet.transactions_page("2018-01")
    assert len(first["transactions"]) == 2 and first["next"] == first["transactions"][-1]["id"]
    rows = wallet.transactions("2018-01")
    assert [r["type"] for r in rows] == ["load", "load", "load", "charge"]
    assert wallet.transactions("2018-02") == []
    lines = csv_export(sim).splitlines()
    assert lines[0] == "id;type;timestamp;period;phone;client_ref;provider;amount;identity_checked;cancels;balance"
    assert lines[-1].endswith(f";charge;2018-01-15T10:00:00+02:00;2018-01;{PHONES[0]};C0;{P0};12,50;no;;287,50")


def test_a_service_that_is_not_there_is_one_clear_error(tmp_path):
    sim = Simulator(tmp_path / "gone.db")
    port = sim.start()
    sim.stop()
    with pytest.raises(ServiceUnavailable, match=rf"^ePassi at http://127\.0\.0\.1:{port} is not answering: "):
        EpassiClient(f"http://127.0.0.1:{port}", timeout=2).health()


# --- reports and differences (pure) ----------------------------------------------------


def test_a_report_file_names_each_bad_row_with_every_reason(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text(
        "id;type;timestamp;period;phone;client_ref;provider;amount;identity_checked;cancels;balance\n"
        f"a-1;charge;2018-01-15T10:00:00+02:00;2018-01;{PHONES[0]};C1;{P0};12,50;yes;;287,50\n"
        f"a-2;charge;2018-01-15T10:00:00+02:00;2018-01;{PHONES[0]};C1;;12,345;maybe;;\n"
        f"a-3;refund;yesterday;2018-13;{PHONES[0]};C1;{P0};5;yes;;\n"
        f"a-4;charge;2018-02-01T00:30:00+02:00;2018-01;{PHONES[0]};C1;{P0};5;yes;;\n", encoding="utf-8")
    rows, rejected = report.read_file(path)
    assert [(r.id, r.amount, r.identity_checked, r.day) for r in rows] == [("a-1", 1250, True, dt.date(2018, 1, 15))]
    assert rejected == [
        {"where": f"{path}: line 3", "reason": "amount: '12,345' has fractions of a cent"},
        {"where": f"{path}: line 4", "reason": "period: '2018-13' does not fit: The month whose budget the "
                                               "transaction belongs to; "
                                               "type: 'refund' is not one of ['load', 'withdraw', 'charge', 'cancel']"},
        {"where": f"{path}: line 5", "reason": "period: 2018-01 but the charge was made on 2018-02-01"},
    ]
    as_json = tmp_path / "report.json"
    as_json.write_text(json.dumps({"transactions": [{"id": "b-1", "type": "charge"}]}))
    assert report.read_file(as_json)[1] == [{"where": f"{as_json}: transaction 1", "reason":
                                             "row: 'amount' is a required property; row: 'client_ref' is a required "
                                             "property; row: 'identity_checked' is a required property; row: 'period' "
                                             "is a required property; row: 'phone' is a required property; row: "
                                             "'provider' is a required property; row: 'timestamp' is a required "
                                             "property"}]
    with pytest.raises(NotFound, match="no such file"):
        report.read_file(tmp_path / "missing.csv")


def test_differences_cover_both_sides_and_the_wallets():
    def tx(id_, kind, client, amount, cancels=None):
        return report.WalletTransaction(where=id_, id=id_, type=kind, client_ref=client, amount=amount,
                                        timestamp=dt.datetime(2018, 1, 15, 10, tzinfo=HELSINKI), period=JAN,
                                        provider=P0, identity_checked=True, cancels=cancels)

    rows = [tx("t1", "charge", "A", 100), tx("t2", "charge", "A", 200), tx("t3", "charge", "B", 300),
            tx("t4", "cancel", "B", 300, cancels="t3")]
    booked = [{"external_id": "t1", "client": "A", "provider": P0, "amount": 100, "cancelled": True},
              {"external_id": "t3", "client": "B", "provider": P1, "amount": 300, "cancelled": False},
              {"external_id": "t9", "client": "B", "provider": P0, "amount": 50, "cancelled": False}]
    wallets = [{"client_ref": "A", "period": "2018-01", "budget": 30000, "balance": 29700},
               {"client_ref": "B", "period": "2018-01", "budget": 25000, "balance": 25000},
               {"client_ref": "D", "period": "2018-01", "budget": 100, "balance": 100}]
    found = differences(JAN, wallet_rows=rows, unreadable=[{"where": "transaction x", "reason": "bad"}],
                        wallets=wallets, ledger_charges=booked,
                        allocations={"A": 30000, "B": 30000, "C": 30000}, available={"A": 29900, "B": 30000})
    assert [(d["kind"], d["client"], d["transaction"]) for d in found] == [
        ("unreadable", None, None), ("missing-in-ledger", "A", "t2"), ("missing-in-wallet", "B", "t9"),
        ("provider-differs", "B", "t3"), ("cancelled-in-wallet-only", "B", "t3"),
        ("cancelled-in-ledger-only", "A", "t1"), ("not-loaded", "C", None), ("load-differs", "B", None),
        ("loaded-without-budget", "D", None), ("balance-differs", "A", None), ("balance-differs", "B", None)]
    assert found[1]["detail"] == ("ePassi charge t2 of 2,00\xa0€ on 2018-01-15 by 1572860-0 is not in the ledger "
                                  "(run `avain epassi import`)")


# --- with the ledger (SQLite and PostgreSQL) ---------------------------------------------


def test_opening_a_month_loads_each_clients_budget_to_their_wallet(app, wallet, pilot_file):
    m = ready(app, pilot_file)
    assert m.opened["backend"] == {"name": "epassi", "loaded": 2, "unchanged": 0, "rest": "withdraw"}
    assert [(w["client_ref"], w["phone"], w["period"], w["balance"], w["identity_check_required"])
            for w in wallet.wallets()] == [(m.codes[0], PHONES[0], "2018-01", 30000, True),
                                            (m.codes[1], PHONES[1], "2018-01", 30000, True)]
    again = budget.open_period(app, m.finance, PILOT, JAN)
    assert again["backend"] == {"name": "epassi", "loaded": 0, "unchanged": 2, "rest": "withdraw"}
    assert [t["type"] for t in wallet.transactions("2018-01")] == ["load", "load"]
    reads = [e for e in app.read(ADMIN, audit_log.log, subject=m.codes[0]) if e["action"] == "client.identity_read"]
    assert [e["purpose"] for e in reads] == ["ePassi wallet load", "ePassi wallet load"]
    assert backend.reconcile(app, m.pilot, JAN) == []


def test_a_client_without_a_phone_is_named_and_the_others_are_loaded(app, wallet, pilot_file):
    with pytest.raises(Refused, match=r"1 of 2 wallets not loaded for 2018-01 \(ET-F-01-002 has no phone number\)"):
        ready(app, pilot_file, phones=[PHONES[0], None])
    assert [w["client_ref"] for w in wallet.wallets()] == ["ET-F-01-001"]
    assert app.read(ADMIN, budget.periods, PILOT)[0]["status"] == "open"  # the ledger's month stands
    found = backend.reconcile(app, app.read(ADMIN, pilots.get, PILOT), JAN)
    assert [(d["kind"], d["client"]) for d in found] == [("not-loaded", "ET-F-01-002")]


def test_a_service_down_at_period_open_leaves_the_ledger_whole_and_a_rerun_loads(app, sim, wallet, pilot_file):
    m = ready(app, pilot_file, open_month=False)
    sim.stop()
    with pytest.raises(ServiceUnavailable, match=rf"^ePassi at {re.escape(sim.url)} is not answering"):
        budget.open_period(app, m.finance, PILOT, JAN)
    assert app.read(ADMIN, budget.periods, PILOT)[0]["clients"] == 2
    sim.start()
    assert budget.open_period(app, m.finance, PILOT, JAN)["backend"]["loaded"] == 2


def test_imported_charges_become_posted_transfers_and_importing_again_changes_nothing(app, sim, wallet,
                                                                                      pilot_file, tmp_path):
    m = ready(app, pilot_file)
    t1 = wallet.charge(phone=PHONES[0], provider=P0, amount=4550, identity_checked=True)
    t2 = wallet.charge(phone=PHONES[1], provider=P1, amount=12000, identity_checked=True)
    done = backend.import_period(app, m.finance, m.pilot, JAN)
    assert {k: done[k] for k in ("charges", "cancellations", "replayed", "ignored", "skipped", "rejected")} == {
        "charges": 2, "cancellations": 0, "replayed": 0, "ignored": 2, "skipped": [], "rejected": []}
    assert ledger_charges(app) == sorted([(t1["id"], m.codes[0], P0, 4550, False),
                                          (t2["id"], m.codes[1], P1, 12000, False)])
    assert (available(app, m.codes[0]), available(app, m.codes[1])) == (25450, 18000)
    lines = app.read(FIN, statements.statement, m.codes[0])["lines"]
    assert [(ln["transfer"], ln["effect_on_available"]) for ln in lines][-1] == (f"epassi:{t1['id']}", -4550)
    transfers = transfer_count(app)
    again = backend.import_period(app, m.finance, m.pilot, JAN)
    assert (again["charges"], again["replayed"]) == (0, 2)
    export = tmp_path / "jan.csv"
    export.write_text(csv_export(sim), encoding="utf-8")
    for _ in range(2):
        from_file = backend.import_file(app, m.finance, m.pilot, export)
        assert (from_file["charges"], from_file["replayed"], from_file["rejected"]) == (0, 2, [])
    assert transfer_count(app) == transfers
    assert backend.reconcile(app, m.pilot, JAN) == []


def test_a_same_day_cancellation_reverses_the_charge_in_both_places(app, wallet, clock, pilot_file):
    m = ready(app, pilot_file)
    charge = wallet.charge(phone=PHONES[0], provider=P0, amount=4550, identity_checked=True)
    backend.import_period(app, m.finance, m.pilot, JAN)
    clock.set(2018, 1, 15, 16, 30)
    assert wallet.cancel(charge["id"])["balance"] == 30000
    done = backend.import_period(app, m.finance, m.pilot, JAN)
    assert (done["charges"], done["cancellations"], done["replayed"]) == (0, 1, 1)
    assert ledger_charges(app) == [(charge["id"], m.codes[0], P0, 4550, True)]
    assert available(app, m.codes[0]) == 30000
    assert backend.import_period(app, m.finance, m.pilot, JAN)["replayed"] == 2
    assert backend.reconcile(app, m.pilot, JAN) == []
    late = wallet.charge(phone=PHONES[0], provider=P0, amount=1000, identity_checked=True)
    clock.set(2018, 1, 16, 8, 0)
    with pytest.raises(Refused, match="on the day it was made"):
        wallet.cancel(late["id"])


def test_money_a_cancellation_gave_back_and_spent_again_posts_in_one_import(app, wallet, clock, pilot_file):
    m = ready(app, pilot_file)
    first = wallet.charge(phone=PHONES[0], provider=P0, amount=25000, identity_checked=True)
    clock.set(2018, 1, 15, 10, 5)
    wallet.cancel(first["id"])
    clock.set(2018, 1, 15, 10, 10)
    again = wallet.charge(phone=PHONES[0], provider=P1, amount=28000, identity_checked=True)
    done = backend.import_period(app, m.finance, m.pilot, JAN)
    assert (done["charges"], done["cancellations"], done["rejected"]) == (2, 1, [])
    assert ledger_charges(app) == sorted([(first["id"], m.codes[0], P0, 25000, True),
                                          (again["id"], m.codes[0], P1, 28000, False)])
    assert available(app, m.codes[0]) == 2000
    assert backend.reconcile(app, m.pilot, JAN) == []


def test_reconcile_lists_charges_the_ledger_misses_and_amounts_that_differ(app, wallet, pilot_file, tmp_path):
    m = ready(app, pilot_file)
    t1 = wallet.charge(phone=PHONES[0], provider=P0, amount=4550, identity_checked=True)
    found = backend.reconcile(app, m.pilot, JAN)
    assert [(d["kind"], d["client"], d["transaction"], d["wallet"], d["ledger"]) for d in found] == [
        ("missing-in-ledger", m.codes[0], t1["id"], 4550, None),
        ("balance-differs", m.codes[0], None, 25450, 30000)]
    backend.import_period(app, m.finance, m.pilot, JAN)
    assert backend.reconcile(app, m.pilot, JAN) == []
    t2 = wallet.charge(phone=PHONES[1], provider=P1, amount=1500, identity_checked=True)
    tampered = [{**t, "amount": 1400} if t["id"] == t2["id"] else t for t in wallet.transactions("2018-01")]
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps({"transactions": tampered}))
    assert backend.import_file(app, m.finance, m.pilot, path)["charges"] == 1
    found = backend.reconcile(app, m.pilot, JAN)
    assert [(d["kind"], d["transaction"], d["wallet"], d["ledger"]) for d in found] == [
        ("amount-differs", t2["id"], 1500, 1400), ("balance-differs", None, 28500, 28600)]


def test_a_service_that_goes_down_mid_import_posts_nothing(app, sim, wallet, pilot_file, monkeypatch):
    m = ready(app, pilot_file)
    for phone in PHONES[:2]:
        wallet.charge(phone=phone, provider=P0, amount=1000, identity_checked=True)
    transfers = transfer_count(app)
    pages = []
    fetch = EpassiClient.transactions_page

    def then_down(self, period, after=None):
        page = fetch(self, period, after)
        pages.append(page)
        sim.stop()  # the first page arrived; the service is gone before the next
        return page

    monkeypatch.setattr(EpassiClient, "transactions_page", then_down)
    with pytest.raises(ServiceUnavailable, match=rf"^ePassi at {re.escape(sim.url)} is not answering: "):
        backend.import_period(app, m.finance, m.pilot, JAN)
    assert len(pages) == 1 and pages[0]["next"]
    assert ledger_charges(app) == [] and transfer_count(app) == transfers


def test_a_report_file_with_bad_rows_posts_the_good_ones_and_names_the_bad(app, sim, wallet, pilot_file, tmp_path):
    m = ready(app, pilot_file)
    good = [wallet.charge(phone=p, provider=P0, amount=2000, identity_checked=True)["id"] for p in PHONES[:2]]
    lines = csv_export(sim).splitlines()
    charge_line = lines[-1]
    lines.append(charge_line.replace(good[1], "x-1").replace(";20,00;", ";20,001;"))
    lines.append(charge_line.replace(good[1], "x-2").replace(P0, UNREGISTERED))
    lines.append(charge_line.replace(good[1], "x-3").replace(";20,00;", ";999,00;"))
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = backend.import_file(app, m.finance, m.pilot, path)
    assert done["charges"] == 2
    assert done["rejected"] == [
        {"where": f"{path}: line 6", "reason": "amount: '20,001' has fractions of a cent"},
        {"where": f"{path}: line 7", "reason": f"no provider {UNREGISTERED} in avain"},
        {"where": f"{path}: line 8", "reason": "not enough budget: 280,00\xa0€ available, 999,00\xa0€ needed"}]
    assert [c[0] for c in ledger_charges(app)] == sorted(good)
    transfer_count(app)  # a refused row left nothing half-written: the books still balance


def test_importing_is_finances_job(app, wallet, pilot_file):
    m = ready(app, pilot_file)
    wallet.charge(phone=PHONES[0], provider=P0, amount=1000, identity_checked=True)
    with pytest.raises(PermissionDenied, match="admin is not allowed to invoice.record"):
        backend.import_period(app, ADMIN, m.pilot, JAN)
    assert ledger_charges(app) == []


def test_a_new_month_withdraws_the_lapsed_rest_before_it_loads(app, wallet, clock, pilot_file):
    m = ready(app, pilot_file)
    wallet.charge(phone=PHONES[0], provider=P0, amount=4550, identity_checked=True)
    backend.import_period(app, m.finance, m.pilot, JAN)
    assert budget.close_period(app, m.finance, PILOT, JAN)["policy"] == "lapse"
    clock.set(2018, 2, 1, 8, 0)
    assert budget.open_period(app, m.finance, PILOT, FEB)["backend"]["loaded"] == 2
    assert [(w["period"], w["balance"]) for w in wallet.wallets()] == [("2018-02", 30000)] * 2
    assert [(t["type"], t["amount"]) for t in wallet.transactions("2018-01") if t["type"] == "withdraw"] == [
        ("withdraw", 25450), ("withdraw", 30000)]
    assert backend.reconcile(app, m.pilot, JAN) == [] and backend.reconcile(app, m.pilot, FEB) == []


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def avain(monkeypatch, db_url):
    """``avain(*args, code=0, actor=None)``: the command line with this plugin loaded."""
    monkeypatch.setattr(cli_state, "make_plugin_manager", epassi_pm)
    runner = CliRunner()

    def run(*args, code=0, actor=None):
        argv = ["--db", db_url] + (["--as", actor] if actor else []) + [str(a) for a in args]
        result = runner.invoke(cli, argv)
        assert "Traceback" not in result.output + result.stderr
        assert result.exit_code == code, result.stderr + result.output
        return result

    return run


def test_the_epassi_commands(app, sim, wallet, pilot_file, avain, tmp_path):
    m = ready(app, pilot_file)
    charged = json.loads(avain("epassi", "charge", "--pilot", PILOT, "--phone", "040 100 0001", "--provider", P0,
                               "--amount", "45,50", "--identity-checked", "--json").stdout)
    assert (charged["client_ref"], charged["amount"], charged["balance"]) == (m.codes[0], 4550, 25450)
    assert "phone" not in charged  # never printed, like a henkilötunnus
    refused = avain("epassi", "charge", "--pilot", PILOT, "--phone", PHONES[0], "--provider", P0, "--amount", "300",
                    "--identity-checked", code=1)
    assert refused.stderr == "error: ePassi refused: the wallet holds 254,50\xa0€, the charge is 300,00\xa0€\n"
    behind = json.loads(avain("epassi", "reconcile", "--pilot", PILOT, "--period", "2018-01", "--json",
                              code=1).stdout)
    assert behind["in_step"] is False
    assert [d["kind"] for d in behind["differences"]] == ["missing-in-ledger", "balance-differs"]
    assert "admin is not allowed" in avain("epassi", "import", "--pilot", PILOT, "--period", "2018-01",
                                           code=1).stderr
    done = json.loads(avain("epassi", "import", "--pilot", PILOT, "--period", "2018-01", "--json",
                            actor=str(m.finance)).stdout)
    assert (done["charges"], done["rejected"]) == (1, [])
    assert "are in step" in avain("epassi", "reconcile", "--pilot", PILOT, "--period", "2018-01").stdout
    cancelled = avain("epassi", "cancel", charged["id"], "--pilot", PILOT).stdout
    assert f"cancels {charged['id']}" in cancelled and "balance 300,00" in cancelled
    again = json.loads(avain("epassi", "cancel", charged["id"], "--pilot", PILOT, "--json").stdout)
    assert (again["cancels"], again["balance"], again["replayed"]) == (charged["id"], 30000, True)
    assert "phone" not in again
    export = tmp_path / "jan.csv"
    export.write_text(csv_export(sim), encoding="utf-8")
    text = avain("epassi", "import", export, "--pilot", PILOT, actor=str(m.finance)).stdout
    assert "0 charges posted, 1 cancellations, 1 already posted, 0 rejected" in text
    assert avain("epassi", "import", export, "--pilot", PILOT, actor=str(m.finance)).stdout.count("2 already posted")
    assert "not both" in avain("epassi", "import", "--pilot", PILOT, code=2).stderr
    assert "--phone" in avain("epassi", "charge", "--pilot", PILOT, "--phone", "12", "--provider", P0,
                              "--amount", "1", code=1).stderr
    wrong = avain("epassi", "reconcile", "--pilot", "example", "--period", "2018-01", code=1).stderr
    assert wrong == "error: pilot example: no payment.backend: its budgets are not on ePassi wallets\n"
    sim.stop()
    down = avain("epassi", "reconcile", "--pilot", PILOT, "--period", "2018-01", code=1).stderr
    assert re.fullmatch(rf"error: ePassi at {re.escape(sim.url)} is not answering: [^\n]+\n", down)
    assert ledger_charges(app) == [(charged["id"], m.codes[0], P0, 4550, True)]


def test_the_shipped_pilot_passes_pilot_check_and_a_bad_section_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(cli_state, "make_plugin_manager", epassi_pm)
    runner = CliRunner()
    shipped = PLUGIN_DIR / "pilot.toml"
    ok = runner.invoke(cli, ["pilot", "check", str(shipped), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {"file": str(shipped), "ok": True, "id": "example-epassi",
                                                          "errors": []}
    bad = tmp_path / "pilot.toml"
    bad.write_text(shipped.read_text().replace('url = "http://127.0.0.1:8765"', 'url = "ftp://x"\nretries = 3'))
    result = runner.invoke(cli, ["pilot", "check", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}: plugins.payment_epassi: Additional properties are not allowed ('retries' was unexpected)",
        f"{bad}: plugins.payment_epassi.url: 'ftp://x' does not fit: Base URL of the ePassi service "
        "(default http://127.0.0.1:8765, the local simulator)"]


def test_the_example_pilot_is_shipped_with_the_ledger_loaded(sqlite_url):
    app = open_app(sqlite_url, epassi_pm())
    try:
        pilot = app.read(ADMIN, pilots.get, "example-epassi")
        assert (pilot.code, pilot.monthly_cap, [g.id for g in pilot.groups]) == ("EP", Money(30000), ["family-carers"])
        assert payments.backend_for(app.pm, pilot).name == "epassi"
    finally:
        app.close()


def test_simulator_serve_refuses_a_port_in_use_naming_it(sim, monkeypatch, tmp_path):
    monkeypatch.setattr(cli_state, "make_plugin_manager", epassi_pm)
    result = CliRunner().invoke(cli, ["epassi", "simulator", "serve", "--port", sim.port,
                                      "--data", tmp_path / "other.db"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: --port: {sim.port} cannot be used: ")


def test_simulator_serve_is_its_own_http_service_until_stopped(tmp_path):
    """In a process of its own, stopped as a supervisor would (SIGTERM takes Ctrl-C's path)."""
    data = tmp_path / "served.db"
    code = ("from avain.plugins.payment_epassi.cli import epassi; "
            f"epassi.main(['simulator', 'serve', '--port', '0', '--data', {str(data)!r}, '--today', '2018-01-15'], "
            "prog_name='avain epassi')")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        started = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", started).group()
        client = EpassiClient(url, timeout=5)
        client.load_wallet(PHONES[0], client_ref="C1", period="2018-01", amount=30000, rest="withdraw",
                           identity_check_required=False)
        assert client.charge(phone=PHONES[0], provider=P0, amount=100,
                             identity_checked=False)["timestamp"].startswith("2018-01-15T")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "ePassi simulator stopped" in rest
    kept = Wallets(data)
    try:
        assert [w["balance"] for w in kept.wallets()] == [29900]
    finally:
        kept.close()
