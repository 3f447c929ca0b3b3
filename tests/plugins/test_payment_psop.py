"""The PSOP payment backend: vouchers issued at period open, the simulator's refusals and
daily batch, booked events imported as charges (idempotent, bad rows named, crash- and
outage-safe), reconciliation, the event schema against the fast parser, and the CLI.

The simulator runs in-process on a free port (a real HTTP server); the pilot under test
is the shipped example-psop pilot.toml with its id, code and URL changed to point at it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import open_app
from helpers import HETUS
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

import avain.plugins.payment_psop as payment_psop
from avain.core import ledger
from avain.core.auth import Actor
from avain.core.cli import cli
from avain.core.cli import state as cli_state
from avain.core.domain import Money, Period
from avain.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from avain.core.models import AuditEventRow, TransferRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import budget, payments, people, pilots, plans, providers, statements
from avain.core.services.common import session
from avain.plugins.payment_psop import backend, client, events, posting
from avain.plugins.payment_psop.client import PsopClient, PsopUnavailable
from avain.plugins.payment_psop.simulator import Simulator

PLUGIN = "avain.plugins.payment_psop"
TOML = Path(payment_psop.__file__).with_name("pilot.toml")
PILOT = "psop-test"
P = Period(2018, 1)
ADMIN = Actor("admin")
#: The test pilot's finance worker (``populate`` adds them): money moves under a name.
FINANCE = Actor("finance", f"{PILOT}-04")
HOME, PA, DAYS = "home-care", "personal-assistance", "carer-day-off"
PROVIDERS = ["1572860-0", "0737546-2"]  # the second is approved for home care only
CHECKS = {c: ("seen", dt.date(2017, 12, 1)) for c in providers.STATUTORY}
#: Client 1's plan: 10 h home care (45 €) + 20 h personal assistance (25 €) = 950 €.
PLAN = {HOME: 10, PA: 20}


def psop_pm():
    """A fresh plugin manager: the PSOP plugin comes in through its entry point."""
    pm = make_plugin_manager()
    assert pm.is_registered(payment_psop)
    return pm


def pilot_file(tmp_path: Path, url: str) -> Path:
    text = TOML.read_text(encoding="utf-8")
    for old, new in [('id = "example-psop"', f'id = "{PILOT}"'), ('code = "PS"', 'code = "PT"'),
                     ('url = "http://127.0.0.1:8766"', f'url = "{url}"')]:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "psop-test.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sim():
    s = Simulator.start(today=dt.date(2018, 1, 15))
    yield s
    s.stop()


@pytest.fixture
def papp(db_url, sim, tmp_path):
    app = open_app(db_url, psop_pm())
    app.run(ADMIN, pilots.add_file, pilot_file(tmp_path, sim.url))
    yield app
    app.close()


#: Client 1's budget comes from the calculator (950 €), client 2's is written on the decision.
AMOUNTS = (None, Money(100001))


def populate(app, plans_=(PLAN, PLAN), amounts=AMOUNTS, *, open_month=True):
    """Providers, a worker, clients with plans and decisions for 2018; January opened.
    Returns the client codes."""
    worker = app.run(ADMIN, people.add_worker, pilot_id=PILOT, code="01", name="Worker", role="worker")["id"]
    app.run(ADMIN, people.add_worker, pilot_id=PILOT, code="04", name="Finance", role="finance")
    for i, pid in enumerate(PROVIDERS):
        app.run(ADMIN, providers.add, business_id=pid, name=f"Hoiva {i}")
        app.run(ADMIN, providers.approve, pid, pilot_id=PILOT, services=[HOME, PA, DAYS] if i == 0 else [HOME],
                checks=dict(CHECKS), valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2019, 12, 31))
    codes = []
    for i, (items, amount) in enumerate(zip(plans_, amounts, strict=True)):
        code = app.run(ADMIN, people.enroll, pilot_id=PILOT, hetu=HETUS[i], name="Testi Henkilö",
                       worker_id=worker, group_id="elderly")["code"]
        app.run(Actor("worker", worker), plans.set_plan, code, valid_from=dt.date(2018, 1, 1), items=dict(items))
        app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1),
                valid_to=dt.date(2018, 12, 31), monthly_amount=amount)
        codes.append(code)
    if open_month:
        budget.open_period(app, FINANCE, PILOT, P)
    return codes


def voucher(code: str, period: Period = P) -> str:
    return f"PT-{period}-{code}"


def record(sim_or_url, event_id, code, *, service=HOME, units=1, price=4500, day="2018-01-10",
           provider=PROVIDERS[0], recorded_on="2018-01-10"):
    url = sim_or_url.url if isinstance(sim_or_url, Simulator) else sim_or_url
    return PsopClient(url).record_event({"event_id": event_id, "voucher_id": voucher(code), "provider": provider,
                                         "date": day, "service": service, "units": units, "unit_price": price,
                                         "recorded_on": recorded_on})


def charges(app) -> dict[str, int]:
    def read(uow):
        return dict(session(uow).execute(select(TransferRow.id, TransferRow.amount).where(
            TransferRow.kind == "charge")).all())
    return app.run(ADMIN, read)


def verified(app) -> bool:
    result = app.run(ADMIN, statements.verify)
    assert result["ok"], result["problems"]
    return True


def booked_row(event_id, code, *, units=1, price=4500, day="2018-01-10", provider=PROVIDERS[0], service=HOME,
               status="booked"):
    row = {"event_id": event_id, "voucher_id": voucher(code, Period.of(dt.date.fromisoformat(day))),
           "client": code, "provider": provider, "date": day, "service": service, "units": units,
           "unit_price": price, "status": status, "recorded_on": day}
    if status == "booked":
        row["booked_on"] = "2018-01-20"
    return row


# --- vouchers ----------------------------------------------------------------------------


def test_the_split_is_proportional_to_own_prices_or_even_and_sums_to_the_budget():
    price = {HOME: 4500, PA: 2500}.get
    parts, how = backend.split(Money(100001), [(HOME, 10), (PA, 20)], price)
    assert parts == [(HOME, Money(47369)), (PA, Money(52632))] and "own-production" in how
    even, how = backend.split(Money(1000), [(DAYS, 2), (HOME, 10), (PA, 20)])
    assert [m.cents for _, m in even] == [334, 333, 333] and how == "evenly"
    for total in (1, 2, 99, 95000, 300000, 123457):
        for items in ([(HOME, 1)], [(HOME, 3), (PA, 7)], [(DAYS, 2), (HOME, 10), (PA, 120)]):
            got, _ = backend.split(Money(total), items, {HOME: 4500, PA: 2500, DAYS: 10000}.get)
            assert sum(m.cents for _, m in got) == total


def test_a_voucher_is_issued_per_client_at_period_open_with_values_summing_to_the_budget(papp, sim):
    codes = populate(papp)
    allocations = {a.client_code: a.amount.cents
                   for a in papp.run(FINANCE, payments.period_allocations, PILOT, P)}
    assert allocations == {codes[0]: 95000, codes[1]: 100001}
    first = sim.store.voucher(voucher(codes[0]))
    assert [(line["service"], line["value"]) for line in first["lines"]] == [(HOME, 45000), (PA, 50000)]
    second = sim.store.voucher(voucher(codes[1]))
    assert second["value"] == 100001 and second["balance"] == 100001
    assert (second["valid_from"], second["valid_to"]) == ("2018-01-01", "2018-01-31")
    offers = {line["service"]: [p["provider"] for p in line["providers"]] for line in first["lines"]}
    assert offers == {HOME: sorted(PROVIDERS), PA: PROVIDERS[:1]}
    again = budget.open_period(papp, FINANCE, PILOT, P)  # idempotent: nothing changes
    assert again["backend"]["unchanged"] == 2 and again["backend"]["issued"] == 0


def test_a_client_without_a_plan_gets_no_voucher_and_is_named(papp, sim):
    codes = populate(papp, open_month=False)
    later = papp.run(ADMIN, people.enroll, pilot_id=PILOT, hetu=HETUS[3], name="Testi", worker_id=f"{PILOT}-01",
                     group_id="disabled")["code"]
    papp.run(Actor("worker", f"{PILOT}-01"), budget.grant, later, valid_from=dt.date(2018, 1, 1),
             valid_to=dt.date(2018, 12, 31), monthly_amount=Money(20000))
    result = budget.open_period(papp, FINANCE, PILOT, P)["backend"]
    assert result["issued"] == 2 and [p["client"] for p in result["problems"]] == [later]
    assert "no care and service plan" in result["problems"][0]["problem"]
    assert sim.store.voucher(voucher(codes[0]))["value"] == 95000


def test_period_open_with_psop_down_keeps_the_allocation_and_says_what_to_do(db_url, tmp_path):
    dead = Simulator.start()
    url = dead.url
    dead.stop()
    app = open_app(db_url, psop_pm())
    try:
        app.run(ADMIN, pilots.add_file, pilot_file(tmp_path, url))
        populate(app, open_month=False)
        with pytest.raises(PsopUnavailable, match="run `avain budget open-period` again"):
            budget.open_period(app, FINANCE, PILOT, P)
        assert len(app.run(FINANCE, payments.period_allocations, PILOT, P)) == 2
    finally:
        app.close()


# --- the simulator ---------------------------------------------------------------------


def issue_test_voucher(url: str) -> PsopClient:
    c = PsopClient(url)
    c.put_voucher("PT-2018-01-PT-E-01-001", {
        "client": "PT-E-01-001", "period": "2018-01", "valid_from": "2018-01-01", "valid_to": "2018-01-31",
        "lines": [{"service": HOME, "value": 9000,
                   "providers": [{"provider": PROVIDERS[0], "from": "2018-01-01", "to": "2018-01-31"},
                                 {"provider": PROVIDERS[1], "from": "2018-01-01", "to": "2018-01-14"}]}]})
    return c


def test_the_simulator_refuses_each_kind_of_event_with_its_reason(sim):
    c = issue_test_voucher(sim.url)
    code = "PT-E-01-001"
    ok = record(sim, "e-ok", code, units=1)
    assert ok["status"] == "recorded"
    cases = {
        "e-much": ({"units": 2}, "beyond the remaining value of home-care: 90,00\u00a0€ asked, 45,00\u00a0€ left"),
        "e-late": ({"day": "2018-02-01"}, "2018-02-01 is outside the voucher's validity 2018-01-01–2018-01-31"),
        "e-svc": ({"service": PA, "price": 2500},
                  "personal-assistance is not on the voucher (its services: home-care)"),
        "e-prov": ({"provider": "0112038-9"}, "provider 0112038-9 is not approved for home-care on 2018-01-10"),
        "e-ended": ({"provider": PROVIDERS[1], "day": "2018-01-20"},
                    f"provider {PROVIDERS[1]} is not approved for home-care on 2018-01-20"),
    }
    for event_id, (kw, reason) in cases.items():
        got = record(sim, event_id, code, **kw)
        assert (got["status"], got["reason"]) == ("refused", reason), event_id
    assert record(sim, "e-ok", code, units=1) == ok  # the same event again: the same answer
    with pytest.raises(Conflict, match="other details"):
        record(sim, "e-ok", code, units=2)
    with pytest.raises(NotFound, match="no voucher"):
        c.record_event({"voucher_id": "PT-2018-01-NOBODY", "provider": PROVIDERS[0], "date": "2018-01-10",
                        "service": HOME, "units": 1, "unit_price": 100})
    line = c.voucher("PT-2018-01-PT-E-01-001")["lines"][0]
    assert (line["pending"], line["available"]) == (4500, 4500)  # refused events count for nothing


def test_the_daily_batch_books_events_only_from_the_next_days_run(sim):
    c = issue_test_voucher(sim.url)
    vid = "PT-2018-01-PT-E-01-001"
    record(sim, "e1", "PT-E-01-001", recorded_on="2018-01-15")
    assert c.run_batch(dt.date(2018, 1, 15))["booked"] == 0  # the same day's run: not yet
    assert c.voucher(vid)["balance"] == 9000
    assert [e["status"] for e in c.events_page(status="booked")["events"]] == []
    done = c.run_batch(dt.date(2018, 1, 16))
    assert (done["booked"], done["amount"]) == (1, 4500)
    v = c.voucher(vid)
    assert (v["balance"], v["lines"][0]["pending"]) == (4500, 0)
    [row] = c.events_page(status="booked")["events"]
    assert (row["event_id"], row["booked_on"]) == ("e1", "2018-01-16")
    assert events.parse(row).amount == 4500  # the export is a valid event row
    assert c.run_batch(dt.date(2018, 1, 17))["booked"] == 0  # booked once


def test_a_voucher_in_use_keeps_its_values(sim):
    c = issue_test_voucher(sim.url)
    record(sim, "e1", "PT-E-01-001")
    body = {"client": "PT-E-01-001", "period": "2018-01", "valid_from": "2018-01-01", "valid_to": "2018-01-31",
            "lines": [{"service": HOME, "value": 100}]}
    with pytest.raises(Conflict, match="in use cannot change"):
        c.put_voucher("PT-2018-01-PT-E-01-001", body)


# --- import ----------------------------------------------------------------------------


def test_booked_events_become_charges_and_importing_twice_changes_nothing(papp, sim):
    codes = populate(papp)
    record(sim, "k1", codes[0], units=2, recorded_on="2018-01-10")
    record(sim, "k2", codes[1], service=PA, units=4, price=2500, recorded_on="2018-01-10")
    record(sim, "k3", codes[0], recorded_on="2018-01-11")  # recorded, not booked by the run below
    PsopClient(sim.url).run_batch(dt.date(2018, 1, 11))
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    first = backend.import_from_service(papp, FINANCE, pilot, P)
    assert (first["fetched"], first["posted"], first["amount"], first["rejected_count"]) == (2, 2, 19000, 0)
    assert charges(papp) == {"psop:k1": 9000, "psop:k2": 10000}
    assert papp.run(ADMIN, statements.balance, codes[0])["available"] == 95000 - 9000
    audit_before = papp.run(ADMIN, lambda uow: session(uow).execute(select(func.count(AuditEventRow.id))).scalar())
    again = backend.import_from_service(papp, FINANCE, pilot, P)
    assert (again["posted"], again["unchanged"]) == (0, 2)
    assert charges(papp) == {"psop:k1": 9000, "psop:k2": 10000}
    assert papp.run(ADMIN, lambda uow: session(uow).execute(select(func.count(AuditEventRow.id))).scalar()) \
        == audit_before
    assert backend.reconcile(papp, pilot, P) == []
    # The one-by-one service and the bulk path post the same transfer: each replays the other.
    again = papp.run(FINANCE, payments.record_charge, backend="psop", external_id="k1", client_code=codes[0],
                     provider_id=PROVIDERS[0], amount=Money(9000), on_date=dt.date(2018, 1, 10))
    assert again["replayed"] is True
    assert verified(papp)


def test_the_same_file_imported_twice_changes_nothing(papp, sim, tmp_path):
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    path = tmp_path / "events.csv"
    events.write_csv([booked_row(f"f{i}", codes[i % 2], units=1 + i % 3) for i in range(7)], path)
    first = backend.import_file(papp, FINANCE, pilot, path, chunk=3)
    assert (first["posted"], first["unchanged"], first["rejected_count"]) == (7, 0, 0)
    before = charges(papp)
    second = backend.import_file(papp, FINANCE, pilot, path, chunk=3)
    assert (second["posted"], second["unchanged"], second["amount"]) == (0, 7, 0)
    assert charges(papp) == before and verified(papp)


@pytest.mark.parametrize("chunk", [4, 100])
def test_bad_rows_are_named_and_the_good_ones_posted(papp, sim, tmp_path, chunk):
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    rows = [
        json.dumps(booked_row("g1", codes[0])),                                      # line 1 good
        "{not json",                                                                  # line 2
        json.dumps({k: v for k, v in booked_row("b3", codes[0]).items() if k != "units"}),  # line 3
        json.dumps(booked_row("b4", codes[0], price=0)),                              # line 4
        json.dumps(booked_row("b5", "PT-E-09-999")),                                  # line 5 no client
        json.dumps(booked_row("b6", codes[0], day="2018-02-03")),                     # line 6 month not open
        json.dumps(booked_row("b7", codes[0], units=30)),                             # line 7 over budget
        json.dumps(booked_row("g1", codes[0], units=2)),                              # line 8 same id, other
        json.dumps({**booked_row("b9", codes[1]), "voucher_id": voucher(codes[0])}),  # line 9 wrong voucher
        "",
        json.dumps(booked_row("g2", codes[1], service=PA, units=3, price=2500)),     # line 11 good
        json.dumps(booked_row("r1", codes[1], status="recorded")),                    # line 12 not booked
        json.dumps(booked_row("g1", codes[0])),                                       # line 13 repeat: unchanged
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = backend.import_file(papp, FINANCE, pilot, path, chunk=chunk)
    assert (result["posted"], result["unchanged"], result["skipped"]["recorded"]) == (2, 1, 1)
    reasons = {r["where"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 8, 9)]
    assert reasons["line 2"].startswith("not valid JSON")
    assert reasons["line 3"] == "units: is required"
    assert reasons["line 4"] == "unit_price: 0 is less than the minimum of 1"
    assert reasons["line 5"] == "no client PT-E-09-999 in avain"
    assert reasons["line 6"] == f"{PILOT} 2018-02 is not open for spending"
    assert reasons["line 7"] == "not enough budget: 905,00\u00a0€ available, 1\u00a0350,00\u00a0€ needed"
    assert reasons["line 8"] == ("event g1 was posted before with other details" if chunk < 8 else
                                 "event g1 appears twice with other details")
    assert reasons["line 9"] == f"voucher {voucher(codes[0])} is not {codes[1]}'s voucher for 2018-01"
    assert charges(papp) == {"psop:g1": 4500, "psop:g2": 7500}
    assert verified(papp)


def test_a_crash_mid_import_leaves_whole_chunks_and_a_rerun_completes(papp, sim, tmp_path, monkeypatch):
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    path = tmp_path / "events.jsonl"
    events.write_jsonl([booked_row(f"c{i}", codes[i % 2]) for i in range(10)], path)
    real, calls = posting.post_chunk, []

    def crashing(uow, *args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(uow, *args)

    monkeypatch.setattr(posting, "post_chunk", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        backend.import_file(papp, FINANCE, pilot, path, chunk=3)
    assert len(charges(papp)) == 6 and verified(papp)
    monkeypatch.setattr(posting, "post_chunk", real)
    rerun = backend.import_file(papp, FINANCE, pilot, path, chunk=3)
    assert (rerun["posted"], rerun["unchanged"]) == (4, 6)
    assert len(charges(papp)) == 10 and verified(papp)


def test_replays_are_found_whatever_other_transfers_lie_between_a_chunks_ids(papp, sim, tmp_path):
    # On SQLite a chunk's posted ids are first looked for in one range of the primary key;
    # a range holding more rows than the chunk has events falls back to looking up each id.
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    first = tmp_path / "first.jsonl"
    events.write_jsonl([booked_row(f"x{i:03d}", codes[i % 2], price=100) for i in range(60)], first)
    assert backend.import_file(papp, FINANCE, pilot, first, chunk=100)["posted"] == 60
    again = tmp_path / "again.jsonl"
    events.write_jsonl([
        booked_row("x010", codes[0], price=100), booked_row("x012", codes[0], price=100),   # replays
        booked_row("x0115", codes[1], price=100),                                         # new, between them
        booked_row("x000", codes[0], price=100), booked_row("x059", codes[1], price=100),  # replays, far apart
        booked_row("x030", codes[0], price=200),                                          # replay, other amount
        booked_row("x0305", codes[1], price=100),                                         # new
    ], again)
    # chunks: x010…x012 (3 rows in that range: looked for there), x000…x059 (60 rows: looked up
    # one by one), x0305 (none)
    narrow = backend.import_file(papp, FINANCE, pilot, again, chunk=3)
    assert (narrow["posted"], narrow["unchanged"], narrow["rejected_count"]) == (2, 4, 1)
    assert narrow["rejected"][0] == {"where": "line 6", "event": "x030",
                                     "reason": "event x030 was posted before with other details"}
    third = tmp_path / "third.jsonl"
    events.write_jsonl([booked_row(f"x{i:03d}", codes[i % 2], price=100) for i in range(0, 60, 7)]
                       + [booked_row("x0595", codes[0], price=100)], third)
    wide = backend.import_file(papp, FINANCE, pilot, third, chunk=100)  # x000…x0595: 60 rows in range
    assert (wide["posted"], wide["unchanged"], wide["rejected_count"]) == (1, 9, 0)
    assert len(charges(papp)) == 63 and verified(papp)


def test_a_chunk_of_more_events_than_one_insert_takes_is_posted_whole(papp, sim, tmp_path):
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    n = 2 * ledger.ROWS_PER_INSERT + 3  # three INSERT statements, the last of 3 rows
    rows = [booked_row(f"m{i:04d}", codes[i % 2], units=1 + i % 3, price=10) for i in range(n)]
    rows[n - 2].update(units=1000, unit_price=100_000)  # 1 000 000 €: more than any budget
    path = tmp_path / "events.jsonl"
    events.write_jsonl(rows, path)
    result = backend.import_file(papp, FINANCE, pilot, path, chunk=5000)
    expected = {f"psop:{r['event_id']}": r["units"] * r["unit_price"] for r in rows}
    refused = f"psop:{rows[n - 2]['event_id']}"
    del expected[refused]
    assert (result["posted"], result["amount"], result["rejected_count"]) == (n - 1, sum(expected.values()), 1)
    assert result["rejected"][0]["where"] == f"line {n - 1}"
    assert charges(papp) == expected and verified(papp)


def test_psop_going_down_mid_import_posts_nothing_and_says_so(papp, sim, monkeypatch):
    codes = populate(papp)
    for i in range(7):
        record(sim, f"d{i}", codes[i % 2], recorded_on="2018-01-10")
    PsopClient(sim.url).run_batch(dt.date(2018, 1, 11))
    monkeypatch.setattr(client, "PAGE", 3)
    sim.die_after_pages = 1
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    with pytest.raises(PsopUnavailable) as caught:
        backend.import_from_service(papp, FINANCE, pilot, P)
    message = str(caught.value)
    assert f"PSOP at {sim.url} is unreachable" in message
    assert "3 events had arrived, none was posted: run the import again when PSOP is back" in message
    assert charges(papp) == {} and verified(papp)


def test_only_finance_imports(papp, sim, tmp_path):
    populate(papp, open_month=False)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    path = tmp_path / "e.jsonl"
    path.write_text("")
    with pytest.raises(PermissionDenied):
        backend.import_file(papp, ADMIN, pilot, path)


# --- reconciliation --------------------------------------------------------------------


def test_reconcile_is_empty_in_step_and_lists_each_difference(papp, sim):
    codes = populate(papp)
    pilot = papp.run(ADMIN, pilots.get, PILOT)
    for event_id, units in (("r1", 1), ("r2", 2), ("r3", 1)):
        record(sim, event_id, codes[0], units=units, recorded_on="2018-01-10")
    PsopClient(sim.url).run_batch(dt.date(2018, 1, 11))
    # r3 was charged by hand with another amount before the import
    papp.run(FINANCE, payments.record_charge, backend="psop", external_id="r3", client_code=codes[0],
             provider_id=PROVIDERS[0], amount=Money(4000), on_date=dt.date(2018, 1, 10))
    imported = backend.import_from_service(papp, FINANCE, pilot, P)
    assert imported["rejected"][0]["reason"] == "event r3 was posted before with other details"
    assert [d["difference"] for d in backend.reconcile(papp, pilot, P)] == [
        "amount 45,00\u00a0€ in PSOP, 40,00\u00a0€ in avain"]
    record(sim, "r4", codes[1], recorded_on="2018-01-11")
    PsopClient(sim.url).run_batch(dt.date(2018, 1, 12))
    papp.run(FINANCE, payments.record_charge, backend="psop", external_id="ghost", client_code=codes[1],
             provider_id=PROVIDERS[0], amount=Money(1000), on_date=dt.date(2018, 1, 12))
    diffs = {d["event"]: d for d in backend.reconcile(papp, pilot, P)}
    assert diffs["r4"]["difference"] == "booked in PSOP, not posted in avain"
    assert (diffs["r4"]["psop"], diffs["r4"]["ledger"]) == (4500, None)
    assert diffs["ghost"]["difference"] == "posted in avain, not booked in PSOP"
    assert sorted(diffs) == ["ghost", "r3", "r4"]
    papp.run(FINANCE, payments.cancel_charge, backend="psop", external_id="ghost", reason="not PSOP's")
    backend.import_from_service(papp, FINANCE, pilot, P)
    assert [d["event"] for d in backend.reconcile(papp, pilot, P)] == ["r3"]


# --- the event schema and the fast parser ----------------------------------------------

GOOD = {"event_id": "e-1", "voucher_id": "PS-2018-01-PS-E-01-001", "client": "PS-E-01-001",
        "provider": "1572860-0", "date": "2018-01-15", "service": "home-care", "units": 2,
        "unit_price": 4500, "status": "booked", "recorded_on": "2018-01-15", "booked_on": "2018-01-16"}
GOOD_ROWS = [
    GOOD,
    {k: v for k, v in GOOD.items() if k not in ("recorded_on",)},
    {**GOOD, "status": "recorded", "booked_on": "2018-01-16"},
    {k: v for k, v in {**GOOD, "status": "recorded"}.items() if k != "booked_on"},
    {**GOOD, "status": "refused", "reason": "beyond the remaining value"},
    {**GOOD, "units": 2.0},
    {**GOOD, "units": 1000, "unit_price": 1_000_000},
    {**GOOD, "event_id": "A" * 80, "date": "2016-02-29"},
    {**GOOD, "reason": "x" * 500},
]
BAD_ROWS = [
    "not an object", [GOOD], None,
    {k: v for k, v in GOOD.items() if k != "event_id"},
    {k: v for k, v in GOOD.items() if k != "booked_on"},
    {**GOOD, "status": "refused"},
    {**GOOD, "extra": 1},
    {**GOOD, "units": 0}, {**GOOD, "units": 1001}, {**GOOD, "units": "2"}, {**GOOD, "units": True},
    {**GOOD, "units": 2.5}, {**GOOD, "units": None},
    {**GOOD, "unit_price": 0}, {**GOOD, "unit_price": 1_000_001}, {**GOOD, "unit_price": float("nan")},
    {**GOOD, "date": "2018-02-30"}, {**GOOD, "date": "2018-1-15"}, {**GOOD, "date": "20180115"},
    {**GOOD, "date": "2018-01-15\n"}, {**GOOD, "date": "２０１８-01-15"}, {**GOOD, "booked_on": "tomorrow"},
    {**GOOD, "provider": "1572860"}, {**GOOD, "provider": "1572860-0\n"}, {**GOOD, "client": "ps-e-01-001"},
    {**GOOD, "service": "Home care"}, {**GOOD, "service": "home-care\n"}, {**GOOD, "event_id": "A" * 81},
    {**GOOD, "event_id": "-e"}, {**GOOD, "event_id": ""}, {**GOOD, "voucher_id": "x y"},
    {**GOOD, "status": "paid"}, {**GOOD, "status": None}, {**GOOD, "reason": ""}, {**GOOD, "reason": "x" * 501},
    {**GOOD, "reason": None}, {**GOOD, "recorded_on": None},
]


VALIDATOR = Draft202012Validator(events.schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_accepts(row) -> bool:
    return VALIDATOR.is_valid(row)


def parser_accepts(row) -> bool:
    try:
        events.parse(row)
    except ValidationError:
        return False
    return True


def test_the_schema_is_a_valid_draft_2020_12_schema_describing_every_field():
    Draft202012Validator.check_schema(events.schema())
    assert all(p.get("description") for p in events.schema()["properties"].values())


@pytest.mark.parametrize("row", GOOD_ROWS, ids=lambda r: "good")
def test_the_schema_and_the_parser_accept_the_same_good_rows(row):
    assert schema_accepts(row) and parser_accepts(row)
    assert events.parse(row).amount == int(row["units"]) * row["unit_price"]


@pytest.mark.parametrize("row", BAD_ROWS, ids=lambda r: "bad")
def test_the_schema_and_the_parser_refuse_the_same_bad_rows(row):
    assert not schema_accepts(row) and not parser_accepts(row)


ODD = st.one_of(st.none(), st.booleans(), st.integers(-5, 2_000_000), st.floats(allow_nan=False),
                st.text(max_size=90), st.sampled_from(["", "2018-01-31", "2018-13-01", "PS-E-01-001",
                                                       "1572860-0", "booked", "refused", "recorded"]),
                st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from([*events.FIELDS, "surprise"]), value=ODD, drop=st.booleans())
def test_the_schema_and_the_parser_agree_on_any_one_changed_field(field, value, drop):
    row = dict(GOOD)
    if drop:
        row.pop(field, None)
    else:
        row[field] = value
    assert schema_accepts(row) == parser_accepts(row), row


def parsed_line(line: str):
    try:
        return events.parse_line(line)
    except (ValidationError, json.JSONDecodeError) as exc:
        return type(exc)


def parsed_json(line: str):
    try:
        return events.parse(json.loads(line))
    except (ValidationError, json.JSONDecodeError) as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(events.FIELDS), value=ODD, drop=st.booleans(), indent=st.sampled_from([None, 1]))
def test_the_fast_line_path_reads_every_line_as_json_and_the_parser_do(field, value, drop, indent):
    row = dict(GOOD)
    if drop:
        row.pop(field, None)
    else:
        row[field] = value
    for line in (json.dumps(row), json.dumps(row) + "\n", json.dumps(row, ensure_ascii=False) + " \r\n",
                 json.dumps(row, indent=indent).replace("\n", "")):
        assert parsed_line(line) == parsed_json(line), line
    assert events._LINE(json.dumps(GOOD) + "\n")  # the export's own lines take the fast path


def test_csv_and_json_lines_give_the_same_events(tmp_path):
    rows = [GOOD, {**GOOD, "event_id": "e-2", "status": "refused", "reason": "no, café"},
            {**GOOD, "event_id": "e-3", "units": "x"}]
    events.write_csv(rows, tmp_path / "e.csv")
    events.write_jsonl(rows, tmp_path / "e.jsonl")
    from_csv = [(w, e if isinstance(e, events.Event) else str(e)) for w, e in events.read(tmp_path / "e.csv")]
    from_json = [(w, e if isinstance(e, events.Event) else str(e)) for w, e in events.read(tmp_path / "e.jsonl")]
    assert [e for _, e in from_csv] == [e for _, e in from_json]
    assert [n for n, _ in from_csv] == [2, 3, 4]
    assert from_json[2] == (3, "units: 'x' is not a whole number")


# --- registration and the command line -------------------------------------------------


def test_the_plugin_registers_its_backend_section_commands_and_pilot():
    pm = psop_pm()
    assert payments.backends(pm)["psop"].capabilities == {"load_period", "service_events", "reconcile"}
    pilot = pilots.check_file(pm, TOML)
    assert (pilot.id, pilot.code, [g.max_clients for g in pilot.groups]) == ("example-psop", "PS", [20, 25, 5])
    assert payments.backend_for(pm, pilot).name == "psop"
    assert backend.Settings.of(pilot).url == backend.DEFAULT_URL


@pytest.fixture
def run_cli(sqlite_url, sim, tmp_path, monkeypatch):
    """``avain …`` through CliRunner on a populated SQLite database."""
    monkeypatch.setattr(cli_state, "make_plugin_manager", psop_pm)
    app = open_app(sqlite_url, psop_pm())
    app.run(ADMIN, pilots.add_file, pilot_file(tmp_path, sim.url))
    codes = populate(app)
    app.close()
    runner = CliRunner()

    def invoke(*args, code=0, actor=str(FINANCE)):
        result = runner.invoke(cli, ["--db", sqlite_url, "--as", actor, *map(str, args)])
        assert "Traceback" not in result.output + result.stderr
        assert result.exit_code == code, result.stdout + result.stderr
        return result

    invoke.codes = codes
    return invoke


def test_cli_import_reconcile_and_batch(run_cli, sim, tmp_path):
    codes = run_cli.codes
    record(sim, "x1", codes[0], recorded_on="2018-01-10")
    booked = json.loads(run_cli("psop", "simulator", "batch", "--url", sim.url, "--date", "2018-01-11",
                                "--json").stdout)
    assert (booked["booked"], booked["amount"]) == (1, 4500)
    assert sim.store.voucher(voucher(codes[0]))["balance"] == 95000 - 4500
    differences = json.loads(run_cli("psop", "reconcile", "--pilot", PILOT, "--period", "2018-01", "--json",
                                     code=1).stdout)
    assert [d["event"] for d in differences["differences"]] == ["x1"]
    out = run_cli("psop", "import", "--pilot", PILOT, "--period", "2018-01").stdout
    assert "1 posted (45,00" in out and "0 rejected" in out
    assert "in step" in run_cli("psop", "reconcile", "--pilot", PILOT, "--period", "2018-01").stdout
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(booked_row("x2", codes[1])) + "\n" + json.dumps({**GOOD, "units": 0}) + "\n")
    result = run_cli("psop", "import", path, "--pilot", PILOT, code=1)
    assert "1 posted" in result.stdout
    assert f"{path}: line 2: units: 0 is less than the minimum of 1" in result.stdout
    again = json.loads(run_cli("psop", "import", path, "--pilot", PILOT, "--json", code=1).stdout)
    assert (again["posted"], again["unchanged"], again["rejected_count"]) == (0, 1, 1)
    refused = run_cli("psop", "import", path, "--pilot", PILOT, actor="admin", code=1)
    assert "admin is not allowed to invoice.record" in refused.stderr
    unnamed = run_cli("psop", "import", path, code=1)  # two pilots pay through PSOP here
    named = "--pilot: name the pilot (pilots paying through psop: example-psop, kainuu-voucher, psop-test)"
    assert named in unnamed.stderr


def test_cli_url_points_a_pilot_at_another_psop(run_cli, sim):
    down = run_cli("psop", "reconcile", "--pilot", "example-psop", "--period", "2018-01", code=1, actor="finance")
    assert "error: PSOP at http://127.0.0.1:8766 is unreachable" in down.stderr
    up = json.loads(run_cli("psop", "reconcile", "--pilot", "example-psop", "--period", "2018-01",
                            "--url", sim.url, "--json", actor="finance").stdout)
    assert up == {"pilot": "example-psop", "period": "2018-01", "in_step": True, "differences": []}
    bad = run_cli("psop", "import", "--pilot", "example-psop", "--url", "ftp://x", code=1)
    assert "--url: 'ftp://x' is not an http(s) address" in bad.stderr


def test_cli_pilot_check_accepts_the_shipped_pilot(monkeypatch):
    monkeypatch.setattr(cli_state, "make_plugin_manager", psop_pm)
    result = CliRunner().invoke(cli, ["pilot", "check", str(TOML)])
    assert result.exit_code == 0 and "pilot example-psop is valid" in result.stdout


def test_cli_simulator_serve_answers_on_its_port_and_stops():
    code = "import sys; from avain.plugins.payment_psop.cli import psop; psop(sys.argv[1:], prog_name='avain psop')"
    proc = subprocess.Popen([sys.executable, "-c", code, "simulator", "serve", "--port", "0", "--today", "2018-01-15"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("PSOP simulator on http://127.0.0.1:"), line
        url = line.split()[3]
        assert PsopClient(url).health() == {"ok": True, "today": "2018-01-15"}
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # TERM stops it cleanly
        proc.stderr.close()
