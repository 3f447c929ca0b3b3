"""The ledger keeps its promises when things go wrong: concurrent spending never overspends,
a monthly run killed half-way leaves whole chunks and re-runs to exactly once, replayed
operations have one effect, commitments expire neither early nor silently, and the same
commands give the same balances on SQLite and PostgreSQL (DESIGN.md, "The ledger in more
detail"). Building blocks are in tests/ledger_scenarios.py.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import random
import signal
import subprocess
import time

import ledger_scenarios as L
import pytest
from helpers import HETUS
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core import ledger
from avain.core.errors import Conflict, Refused
from avain.core.models import AccountRow, CommitmentRow, InvoiceRow, ProposalRow, TransferRow
from avain.core.services import audit_log, purchases

BATCH = 200
CLIENTS = 3000


def count(app, model, *where) -> int:
    with Session(app.engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def in_tx(app, fn, *args, **kwargs):
    """Run a ledger function in one transaction of its own (as a service would)."""
    return app.run(L.FINANCE, lambda uow: fn(uow.session, *args, **kwargs))


# --- 1. concurrent spending ------------------------------------------------------------------


@pytest.mark.postgres
def test_eight_processes_racing_for_one_budget_never_overspend_it(postgres_url):
    L.truncate_all(postgres_url)
    app = L.open_app(postgres_url)
    try:
        team = L.set_up(app)
        code = L.client_with_budget(app, team, HETUS[0])
        L.open_month(app)
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        # 8 × 8 proposals of 1–60 €: several times the 300 € budget between them. The
        # provider's payable account does not exist yet: the racers create it too.
        work = [[(L.propose(app, code, amount), amount)
                 for amount in (rng.randint(100, 6000) for _ in range(8))] for _ in range(8)]
    finally:
        app.close()

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(work)), ctx.Queue()
    procs = [ctx.Process(target=L.approve_in_process,
                         args=(postgres_url, team["worker"], mine, barrier, results))
             for mine in work]
    for p in procs:
        p.start()
    try:
        reports = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - only when a racer hangs
                p.kill()
                p.join()
    assert all(p.exitcode == 0 for p in procs)
    outcomes = [o for _, got in reports for o in got]
    ok = [o for o in outcomes if o[2] == "ok"]
    refused = [o for o in outcomes if o[2] == "refused"]
    errors = [o for o in outcomes if o[2] == "error"]
    attempts = sum(len(mine) for mine in work)
    why = f"(random seed {seed})"
    assert errors == [], why
    assert len(ok) + len(refused) == len(outcomes) == attempts, why
    assert {o[3] for o in refused} == {"InsufficientFunds"}, why
    assert all("not enough budget" in o[4] for o in refused), why
    assert ok and refused, f"the race should both spend and be refused {why}"

    app = L.open_app(postgres_url)
    try:
        spent = sum(o[1] for o in ok)
        b = L.balance(app, code)
        assert spent <= L.BUDGET, why
        assert b == {"credits": L.BUDGET, "posted": 0, "reserved": spent,
                     "available": L.BUDGET - spent}, why
        # Money only ever left the budget, so each refusal asked for more than what is
        # available even now: none was refused while the money was there.
        assert all(o[1] > b["available"] for o in refused), why
        # Exactly the approved proposals hold a commitment; the refused ones are untouched.
        assert count(app, CommitmentRow) == len(ok), why
        assert count(app, ProposalRow, ProposalRow.status == "approved") == len(ok), why
        assert count(app, ProposalRow, ProposalRow.status == "proposed") == len(refused), why
        assert count(app, TransferRow, TransferRow.kind == "commitment") == len(ok), why
        assert count(app, AccountRow, AccountRow.kind == "payable") == 1, why
        result = L.verify(app)
        assert result["ok"], result["problems"]
        assert app.run(L.ADMIN, audit_log.verify)["ok"]
    finally:
        app.close()


# --- 2. a monthly run killed half-way ---------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db(request, tmp_path, sqlite_template):
    """A function giving an empty, migrated database each time it is called."""
    import shutil

    made = []

    def make() -> str:
        if request.param == "sqlite":
            path = tmp_path / f"avain{len(made)}.db"
            shutil.copy(sqlite_template, path)
            url = f"sqlite:///{path}"
        else:
            url = request.getfixturevalue("postgres_url")
            L.truncate_all(url)
        made.append(url)
        return url

    return make


def avain(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*L.avain_command(), "--db", url, *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def open_then_kill(url: str, tmp_path) -> dict | None:
    """Start ``avain budget open-period`` and SIGKILL it once a few chunks (2–8, at random)
    are committed and more are to come, a moment later (0–30 ms, at random: inside the
    next chunk's transaction or its commit). The run row as it is after the kill, or None
    when the run finished before the kill landed."""
    chunks, delay = random.randint(2, 8), random.uniform(0, 0.03)
    watch = L.reader(url)
    log = (tmp_path / "open-period.log").open("w")
    proc = subprocess.Popen([*L.avain_command(), "--db", url, "budget", "open-period", "--pilot",
                             L.PILOT, str(L.JAN), "--batch", str(BATCH)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        def midway():
            run = L.period_run(watch)
            if proc.poll() is not None:
                return "ended"
            return run is not None and chunks * BATCH <= run["allocated"] < CLIENTS - BATCH

        seen = L.wait_for(midway, timeout=60, interval=0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # a no-op if it has ended (and been reaped)
        proc.wait(timeout=30)
        L.wait_until_disconnected(watch)  # PostgreSQL: its backend has rolled back
        log.close()
        output = (tmp_path / "open-period.log").read_text()
        assert seen, "open-period made no progress in 60 s: " + output
        assert seen != "ended" or proc.returncode == 0, output
        run = L.period_run(watch)
        return None if seen == "ended" or run["status"] == "open" else run
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
        log.close()
        watch.dispose()


def test_open_period_killed_midway_leaves_whole_chunks_and_reruns_exactly_once(fresh_db, tmp_path):
    for _attempt in range(3):  # the run is quick: should it finish before the kill, again
        url = fresh_db()
        app = L.open_app(url)
        try:
            team = L.set_up(app)
            codes = L.bulk_clients(app.engine, team["worker"], CLIENTS)
        finally:
            app.close()
        run = open_then_kill(url, tmp_path)
        if run is not None:
            break
    else:  # pragma: no cover
        pytest.fail("open-period finished three times before it could be killed")

    app = L.open_app(url)
    try:
        # Whole chunks only: what the run row counts is exactly what the ledger holds,
        # for exactly the first clients in code order, and nothing after the cursor.
        n = run["allocated"]
        assert run["status"] == "opening"
        assert n % BATCH == 0 and 0 < n < CLIENTS
        assert run["cursor"] == codes[n - 1]
        assert run["allocated_cents"] == n * L.BUDGET
        assert L.allocations(app.engine) == (n, n * L.BUDGET, n)
        with Session(app.engine) as s:
            credited = set(s.execute(select(AccountRow.owner).where(
                AccountRow.kind == "budget", AccountRow.credits_posted > 0)).scalars())
        assert credited == set(codes[:n])
        # The half-done books are consistent, and spending waits for the month to open.
        checked = avain(url, "ledger", "verify", "--json")
        assert json.loads(checked.stdout)["ok"] is True
        with pytest.raises(Refused, match="not open for spending"):
            L.buy(app, team, codes[0], 1000)

        # Re-running finishes the month: every client allocated exactly once.
        rerun = avain(url, "budget", "open-period", "--pilot", L.PILOT, str(L.JAN), "--batch",
                      str(BATCH), "--json")
        summary = json.loads(rerun.stdout)
        assert (summary["clients"], summary["amount"]) == (CLIENTS, CLIENTS * L.BUDGET)
        assert L.allocations(app.engine) == (CLIENTS, CLIENTS * L.BUDGET, CLIENTS)
        assert L.period_run(app.engine)["status"] == "open"
        with Session(app.engine) as s:
            credits = s.execute(select(func.min(AccountRow.credits_posted),
                                       func.max(AccountRow.credits_posted), func.count())
                                .where(AccountRow.kind == "budget")).one()
        assert tuple(credits) == (L.BUDGET, L.BUDGET, CLIENTS)

        # A third run changes nothing.
        accounts, transfers = L.accounts_snapshot(app.engine), count(app, TransferRow)
        again = L.open_month(app, batch=BATCH)
        assert (again["clients"], again["amount"]) == (CLIENTS, CLIENTS * L.BUDGET)
        assert L.accounts_snapshot(app.engine) == accounts
        assert count(app, TransferRow) == transfers
        result = L.verify(app)
        assert result["ok"], result["problems"]
    finally:
        app.close()


# --- 3. replays ----------------------------------------------------------------------------


def test_replaying_an_operation_with_the_same_id_has_one_effect(app, team):
    L.add_providers(app)
    code = L.client_with_budget(app, team, HETUS[0])
    first = L.open_month(app)
    assert L.open_month(app) == first  # opening the month again allocates nothing more
    assert L.allocations(app.engine) == (1, L.BUDGET, 1)
    assert L.balance(app, code)["credits"] == L.BUDGET

    budget = L.budget_account(app, code)
    payable = in_tx(app, ledger.account_id, L.PILOT, "payable", L.PROVIDER)
    other = in_tx(app, ledger.account_id, L.PILOT, "payable", L.OTHER_PROVIDER)

    def commit(tid, amount, credit=payable, **kw):
        return in_tx(app, ledger.transfer, tid, kind="commitment", pending=True, debit=budget,
                     credit=credit, amount=amount, period="2018-01", **kw)

    t1 = commit("t-1", 1000)
    assert not t1.replayed
    after_first = L.balance(app, code)
    assert after_first == {"credits": 30000, "posted": 0, "reserved": 1000, "available": 29000}
    again = commit("t-1", 1000, memo="sent twice")
    assert again.replayed and again.created_at == t1.created_at and again.amount == 1000
    assert L.balance(app, code) == after_first
    for changed in ({"amount": 1001}, {"credit": other}):
        with pytest.raises(Conflict, match="t-1 was used for a different transfer"):
            commit("t-1", **{"amount": 1000, **changed})
    with pytest.raises(Conflict):
        in_tx(app, ledger.transfer, "t-1", kind="lapse", debit=budget, credit=payable,
              amount=1000, period="2018-01")
    assert L.balance(app, code) == after_first

    # Spend the rest: a replay of the first request is still its first answer, not a refusal.
    commit("t-2", 29000)
    with pytest.raises(ledger.InsufficientFunds):
        commit("t-3", 1)
    assert commit("t-1", 1000).replayed
    assert L.balance(app, code) == {"credits": 30000, "posted": 0, "reserved": 30000,
                                    "available": 0}

    # Resolving: a replayed post or release has one effect; other content is refused.
    def resolve(tid, kind, amount, pending_id="t-1"):
        return in_tx(app, ledger.resolve, tid, pending_id=pending_id, kind=kind, amount=amount)

    assert not resolve("p-1", "post", 600).replayed
    posted = L.balance(app, code)
    assert posted == {"credits": 30000, "posted": 600, "reserved": 29400, "available": 0}
    assert resolve("p-1", "post", 600).replayed
    assert L.balance(app, code) == posted
    with pytest.raises(Conflict):
        resolve("p-1", "post", 700)
    with pytest.raises(Conflict):
        resolve("p-1", "release", 600)
    resolve("r-1", "release", 400)
    assert resolve("r-1", "release", 400).replayed
    assert L.balance(app, code) == {"credits": 30000, "posted": 600, "reserved": 29000,
                                    "available": 400}
    assert in_tx(app, ledger.resolved_amount, "t-1") == 1000

    # Through the services: approving or invoicing twice is refused and changes nothing.
    resolve("v-2", "void", 29000, pending_id="t-2")
    proposal = L.propose(app, code, 5000)
    commitment = L.approve(app, team, proposal)
    before = L.balance(app, code)
    with pytest.raises(Conflict, match="approved, not proposed"):
        L.approve(app, team, proposal)
    assert count(app, CommitmentRow) == 1 and L.balance(app, code) == before
    L.invoice(app, commitment, 5000, "INV-1")
    posted = L.balance(app, code)
    for number in ("INV-1", "INV-2"):  # the same invoice again, or another on the same commitment
        with pytest.raises(Conflict):
            L.invoice(app, commitment, 5000, number)
    assert count(app, InvoiceRow) == 1 and L.balance(app, code) == posted
    result = L.verify(app)
    assert result["ok"], result["problems"]


def test_resolving_more_than_is_still_reserved_is_refused_with_the_amounts(app, team):
    L.add_providers(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    budget = L.budget_account(app, code)
    payable = in_tx(app, ledger.account_id, L.PILOT, "payable", L.PROVIDER)
    in_tx(app, ledger.transfer, "t-1", kind="commitment", pending=True, debit=budget,
          credit=payable, amount=1000, period="2018-01")
    in_tx(app, ledger.resolve, "p-1", pending_id="t-1", kind="post", amount=600)
    accounts = L.accounts_snapshot(app.engine)
    with pytest.raises(Refused, match=r"post: 5,00\s€ is more than the 4,00\s€ still reserved by t-1"):
        in_tx(app, ledger.resolve, "p-2", pending_id="t-1", kind="post", amount=500)
    assert L.accounts_snapshot(app.engine) == accounts
    in_tx(app, ledger.resolve, "r-1", pending_id="t-1", kind="release", amount=400)
    with pytest.raises(Refused, match=r"void: 0,01\s€ is more than the 0,00\s€ still reserved"):
        in_tx(app, ledger.resolve, "v-1", pending_id="t-1", kind="void", amount=1)
    assert L.balance(app, code) == {"credits": 30000, "posted": 600, "reserved": 0,
                                    "available": 29400}


# --- 4. expiry ------------------------------------------------------------------------------


def test_commitments_never_expire_early_and_expired_ones_cannot_be_posted(app, team):
    L.add_providers(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    c = L.buy(app, team, code, 20000)
    last_day = dt.date.fromisoformat(c["expires_on"])
    assert last_day == L.DAY + dt.timedelta(days=60)  # the pilot's commitment_days
    with pytest.raises(ledger.InsufficientFunds):
        L.buy(app, team, code, 15000)

    for day in (L.DAY, last_day - dt.timedelta(days=1), last_day):
        result = app.run(L.FINANCE, purchases.expire, on_date=day)
        assert result == {"expired": 0, "amount": 0, "commitments": []}
    assert app.run(L.FINANCE, purchases.list_commitments)[0]["status"] == "pending"
    assert L.balance(app, code)["reserved"] == 20000

    result = app.run(L.FINANCE, purchases.expire, on_date=last_day + dt.timedelta(days=1))
    assert result == {"expired": 1, "amount": 20000, "commitments": [c["id"]]}
    assert L.balance(app, code) == {"credits": 30000, "posted": 0, "reserved": 0,
                                    "available": 30000}
    assert app.run(L.FINANCE, purchases.expire,
                   on_date=last_day + dt.timedelta(days=2))["expired"] == 0  # once only
    L.buy(app, team, code, 15000)  # the money is there again

    # An invoice for the expired commitment is refused and writes nothing.
    accounts, transfers = L.accounts_snapshot(app.engine), L.transfers_snapshot(app.engine)
    for on_date in (last_day, last_day + dt.timedelta(days=3)):
        with pytest.raises((Refused, Conflict), match="expired"):
            L.invoice(app, c, 20000, "LATE-1", on_date=on_date)
    assert count(app, InvoiceRow) == 0
    assert L.accounts_snapshot(app.engine) == accounts
    assert L.transfers_snapshot(app.engine) == transfers
    assert app.run(L.FINANCE, purchases.list_commitments)[0]["status"] == "expired"

    # Before the expiry job runs: posts on the last valid day, refused the day after.
    on_time, late = L.buy(app, team, code, 5000), L.buy(app, team, code, 4000)
    L.invoice(app, on_time, 5000, "ON-TIME", on_date=dt.date.fromisoformat(on_time["expires_on"]))
    with pytest.raises(Refused, match="expired on"):
        L.invoice(app, late, 4000, "LATE-2",
                  on_date=dt.date.fromisoformat(late["expires_on"]) + dt.timedelta(days=1))
    assert count(app, InvoiceRow) == 1
    assert L.balance(app, code) == {"credits": 30000, "posted": 5000, "reserved": 19000,
                                    "available": 6000}
    result = L.verify(app)
    assert result["ok"], result["problems"]


# --- 5. SQLite and PostgreSQL agree --------------------------------------------------------------


@pytest.mark.postgres
def test_the_same_commands_give_the_same_books_on_sqlite_and_postgresql(sqlite_url, postgres_url):
    L.truncate_all(postgres_url)
    lite, pg = L.two_months(sqlite_url), L.two_months(postgres_url)
    a, b, c, d = lite["codes"]
    # What the scenario should have done, so that agreeing is not agreeing on nothing.
    assert lite["balances"] == {
        a: {"credits": 60000, "posted": 30000, "reserved": 1000, "available": 29000},
        b: {"credits": 40000, "posted": 20000, "reserved": 0, "available": 20000},
        c: {"credits": 30000, "posted": 0, "reserved": 0, "available": 30000},
        d: {"credits": 30000, "posted": 30000, "reserved": 0, "available": 0},
    }
    assert lite["refusals"] == ["InsufficientFunds"] and lite["expired"] == 1
    assert lite["verify"]["ok"], lite["verify"]["problems"]
    for key in ("codes", "balances", "refusals", "expired", "periods", "commitments",
                "invoices", "accounts", "transfers", "verify"):
        assert pg[key] == lite[key], key


# --- found while writing these ---------------------------------------------------------------


@pytest.mark.postgres
def test_two_simultaneous_first_runs_of_a_month_allocate_once_without_a_database_error(postgres_url):
    from sqlalchemy import text

    L.truncate_all(postgres_url)
    app = L.open_app(postgres_url)
    try:
        team = L.set_up(app)
        codes = [L.client_with_budget(app, team, h) for h in HETUS[:3]]
    finally:
        app.close()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=L.open_period_in_process, args=(postgres_url, start, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    # Hold back inserts into budget_period (reads go on) until both runs are waiting to
    # insert the month's row: the moment two operators (or cron and one) start it together.
    from sqlalchemy import create_engine

    lock, watch = create_engine(postgres_url), L.reader(postgres_url)

    def both_waiting() -> bool:
        with watch.connect() as c:
            return c.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                  "AND relation = 'budget_period'::regclass")).scalar_one() == 2

    try:
        with lock.connect() as conn:
            conn.execute(text("LOCK TABLE budget_period IN SHARE ROW EXCLUSIVE MODE"))
            start.set()
            waiting = L.wait_for(both_waiting, timeout=30, interval=0.05)
            conn.commit()
    finally:
        lock.dispose()
        watch.dispose()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert waiting, "the two runs never met at the insert"
    app = L.open_app(postgres_url)
    try:
        assert L.allocations(app.engine) == (len(codes), len(codes) * L.BUDGET, len(codes))
        assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    finally:
        app.close()


def test_closing_a_month_leaves_the_next_open_months_budget_alone(app, team, monkeypatch):
    from avain.core.domain import Pilot, thaw
    from avain.core.services import pilots

    real = pilots.get

    def two_months_open(uow, pilot_id, **kw):
        p = real(uow, pilot_id, **kw)
        raw = thaw(p.raw)
        raw["budget"] = {**raw["budget"], "months_open": 2}
        return Pilot.from_config(raw)

    monkeypatch.setattr(pilots, "get", two_months_open)
    L.add_providers(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app, L.JAN)
    L.open_month(app, L.FEB)
    L.invoice(app, L.buy(app, team, code, 10000), 10000, "JAN-1")
    assert L.balance(app, code)["available"] == 50000  # 200 € left of January, 300 € of February
    L.close_month(app, L.JAN)
    # January's unused 200 € lapse; February's 300 € are still there to spend.
    assert L.balance(app, code)["available"] == 30000
    L.buy(app, team, code, 30000, day=dt.date(2018, 2, 10))


def test_nothing_is_committed_for_a_month_that_is_not_open(app, team):
    L.add_providers(app)
    code = L.client_with_budget(app, team, HETUS[0])
    with pytest.raises(Refused, match="2018-01 is not open for spending \\(not opened\\)"):
        L.buy(app, team, code, 1000)
    L.open_month(app)
    with pytest.raises(Refused, match="2018-02 is not open"):
        L.buy(app, team, code, 1000, day=dt.date(2018, 2, 1))
    L.close_month(app)
    with pytest.raises(Refused, match="2018-01 is not open for spending \\(closed\\)"):
        L.buy(app, team, code, 1000)
    assert count(app, CommitmentRow) == 0
    assert L.balance(app, code) == {"credits": 30000, "posted": 30000, "reserved": 0,
                                    "available": 0}  # January's 300 € lapsed at the close
