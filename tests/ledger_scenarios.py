"""Building blocks of the ledger reliability tests (tests/integration/test_ledger_reliability.py).

Everything here goes through the services, except :func:`bulk_clients`, which writes
thousands of clients, decisions and budget accounts the way ``client enroll`` and
``decision grant`` would, straight into the tables (the services' intake caps and their
per-call cost make that many impractical). The functions run in spawned processes are
module-level so ``multiprocessing`` can import them by name.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import traceback
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlmodel import Session, SQLModel

from avain.core import db as dbmod
from avain.core import ledger
from avain.core.app import App
from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.models import AccountRow, BudgetPeriodRow, ClientRow, DecisionRow, TransferRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import budget, pilots, plans, providers, purchases, statements

PILOT = "example"
JAN = Period(2018, 1)
FEB = Period(2018, 2)
DAY = dt.date(2018, 1, 15)  # the service day of January purchases
PROVIDER = "1572860-0"
OTHER_PROVIDER = "0737546-2"
BUDGET = 30000  # the example pilot's default (and capped) monthly budget, in cents
FINANCE = Actor("finance", "example-04")
ADMIN = Actor("admin")


# --- databases ------------------------------------------------------------------------


def truncate_all(url: str) -> None:
    """Empty every table of a PostgreSQL database (as conftest's db_url fixture does)."""
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def open_app(url: str) -> App:
    """An App on ``url`` with the plugins' pilots loaded (the database is migrated)."""
    app = App(dbmod.make_engine(url), make_plugin_manager())
    app.run(ADMIN, pilots.sync_plugin_pilots)
    return app


def reader(url: str):
    """An engine for watching a database from outside the process that writes it: no
    transaction of its own (on SQLite the app's engine would take the write lock)."""
    return create_engine(url, isolation_level="AUTOCOMMIT")


def avain_command() -> list[str]:
    """How to start the ``avain`` console script from a test."""
    script = Path(sys.executable).with_name("avain")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from avain.core.cli import main; main()"]


# --- a pilot through the services -------------------------------------------------------


def add_providers(app: App) -> None:
    """Two providers approved for the plan's services, with catalogue prices."""
    from helpers import IBANS, approve_provider, set_prices

    app.run(ADMIN, providers.add, business_id=PROVIDER, name="Hoivapalvelu Oy", iban=IBANS[0])
    app.run(ADMIN, providers.add, business_id=OTHER_PROVIDER, name="Siivous Ky", iban=IBANS[1])
    for provider in (PROVIDER, OTHER_PROVIDER):
        approve_provider(app, provider)
    set_prices(app)


def set_up(app: App) -> dict[str, str]:
    """The example pilot's team and two providers. Returns the team by role."""
    from helpers import add_team

    team = add_team(app)
    add_providers(app)
    return team


def client_with_budget(app: App, team: dict[str, str], hetu: str, *,
                       valid_from: dt.date = dt.date(2018, 1, 1),
                       valid_to: dt.date = dt.date(2018, 12, 31),
                       monthly: int = BUDGET) -> str:
    """Enroll a client of the team's worker and grant HB of ``monthly`` cents a month
    (written on the decision, so no pilot rule computes another amount): the code."""
    from helpers import PLAN, enroll

    code = enroll(app, hetu=hetu, worker=team["worker"])
    app.run(Actor("worker", team["worker"]), plans.set_plan, code, valid_from=valid_from, items=dict(PLAN))
    app.run(Actor("worker", team["worker"]), budget.grant, code, valid_from=valid_from,
            valid_to=valid_to, monthly_amount=Money(monthly))
    return code


def open_month(app: App, period: Period = JAN, **kw) -> dict:
    return budget.open_period(app, FINANCE, PILOT, period, **kw)


def close_month(app: App, period: Period = JAN, **kw) -> dict:
    return budget.close_period(app, FINANCE, PILOT, period, **kw)


def propose(app: App, code: str, amount: int, *, day: dt.date = DAY,
            provider: str = PROVIDER, service: str = "cleaning") -> int:
    return app.run(Actor("client", code), purchases.propose, code, service=service,
                   provider_id=provider, amount=Money(amount), service_date=day)["id"]


def approve(app: App, team: dict[str, str], proposal_id: int, *, today: dt.date = DAY) -> dict:
    """The worker approves: returns the commitment."""
    return app.run(Actor("worker", team["worker"]), purchases.approve, proposal_id,
                   today=today)["commitment"]


def buy(app: App, team: dict[str, str], code: str, amount: int, **kw) -> dict:
    """Propose and approve: the commitment."""
    today = kw.pop("today", kw.get("day", DAY))
    return approve(app, team, propose(app, code, amount, **kw), today=today)


def invoice(app: App, commitment: dict, amount: int, number: str, *,
            on_date: dt.date = DAY, final: bool = False) -> dict:
    return app.run(FINANCE, purchases.record_invoice, provider_id=commitment["provider"],
                   number=number, amount=Money(amount), reference=commitment["reference"],
                   on_date=on_date, final=final)


def balance(app: App, code: str) -> dict:
    b = app.run(FINANCE, statements.balance, code)
    return {k: b[k] for k in ("credits", "posted", "reserved", "available")}


def verify(app: App) -> dict:
    return app.run(FINANCE, statements.verify)


def budget_account(app: App, code: str) -> int:
    with Session(app.engine) as s:
        return s.execute(select(AccountRow.id).where(
            AccountRow.pilot_id == PILOT, AccountRow.kind == "budget",
            AccountRow.owner == code)).scalar_one()


def accounts_snapshot(engine) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """Every account's totals, by (kind, owner)."""
    with engine.connect() as conn:
        rows = conn.execute(select(AccountRow.kind, AccountRow.owner, AccountRow.debits_posted,
                                   AccountRow.debits_pending, AccountRow.credits_posted,
                                   AccountRow.credits_pending)).all()
    return {(r[0], r[1]): tuple(int(x) for x in r[2:]) for r in rows}


def transfers_snapshot(engine) -> list[tuple]:
    """Every transfer as (id, kind, debit kind/owner, credit kind/owner, amount, period)."""
    with engine.connect() as conn:
        names = {r[0]: f"{r[1]}/{r[2]}" for r in conn.execute(
            select(AccountRow.id, AccountRow.kind, AccountRow.owner))}
        rows = conn.execute(select(TransferRow.id, TransferRow.kind, TransferRow.debit_account_id,
                                   TransferRow.credit_account_id, TransferRow.amount,
                                   TransferRow.pending_id, TransferRow.period)
                            .order_by(TransferRow.id)).all()
    return [(r[0], r[1], names[r[2]], names[r[3]], int(r[4]), r[5], r[6]) for r in rows]


def allocations(engine, period: Period = JAN) -> tuple[int, int, int]:
    """(number of allocation transfers, their sum, distinct budgets credited)."""
    with engine.connect() as conn:
        n, total, budgets = conn.execute(
            select(func.count(), func.coalesce(func.sum(TransferRow.amount), 0),
                   func.count(func.distinct(TransferRow.credit_account_id)))
            .where(TransferRow.kind == "allocation", TransferRow.period == str(period))).one()
    return int(n), int(total), int(budgets)


def period_run(engine, period: Period = JAN) -> dict | None:
    """The month's run row as another connection sees it (None before it exists)."""
    with engine.connect() as conn:
        row = conn.execute(select(BudgetPeriodRow.status, BudgetPeriodRow.cursor,
                                  BudgetPeriodRow.allocated, BudgetPeriodRow.allocated_cents)
                           .where(BudgetPeriodRow.pilot_id == PILOT,
                                  BudgetPeriodRow.period == str(period))).one_or_none()
    if row is None:
        return None
    return {"status": row[0], "cursor": row[1], "allocated": int(row[2]),
            "allocated_cents": int(row[3])}


# --- many clients at once ------------------------------------------------------------------


def bulk_clients(engine, worker_id: str, n: int, *, start: int = 1000) -> list[str]:
    """``n`` HB clients of ``worker_id``, each with a decision of 300 € a month in force
    all of 2018 and a budget account, written in one transaction. Returns their codes in code order."""
    now = dt.datetime.now(dt.UTC)
    codes = [f"EX-E-01-{start + i:05d}" for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(ClientRow.__table__), [
            {"code": c, "pilot_id": PILOT, "group_id": "elderly", "worker_id": worker_id,
             "assistant_id": None, "ordinal": start + i, "control": False,
             "enrolled_on": dt.date(2017, 12, 1), "ended_on": None}
            for i, c in enumerate(codes)])
        conn.execute(insert(DecisionRow.__table__), [
            {"client_code": c, "pilot_id": PILOT, "valid_from": dt.date(2018, 1, 1),
             "valid_to": dt.date(2018, 12, 31), "monthly_amount": BUDGET, "inputs": "{}",
             "decided_by": f"worker:{worker_id}", "decided_at": now, "revoked_on": None}
            for c in codes])
        conn.execute(insert(AccountRow.__table__), [
            {"pilot_id": PILOT, "kind": "budget", "owner": c, "limited": True,
             "debits_posted": 0, "debits_pending": 0, "credits_posted": 0, "credits_pending": 0}
            for c in codes])
    return sorted(codes)


# --- run in spawned processes ---------------------------------------------------------------


def approve_in_process(url: str, worker_id: str, proposals: list[tuple[int, int]], barrier,
                       results) -> None:
    """One of the racing workers: its own engine and App, waits for the others, then
    approves its proposals one by one. Puts (pid, outcomes) on ``results``; an outcome is
    (proposal id, amount, "ok" | "refused" | "error", exception class, message)."""
    outcomes = []
    try:
        app = App(dbmod.make_engine(url), make_plugin_manager())
        actor = Actor("worker", worker_id)
        with app.engine.connect():  # connected before the race starts
            pass
        barrier.wait(timeout=120)
        for pid, amount in proposals:
            try:
                app.run(actor, purchases.approve, pid, today=DAY)
            except ledger.InsufficientFunds as exc:
                outcomes.append((pid, amount, "refused", type(exc).__name__, str(exc)))
            except Exception as exc:  # anything else is what the test is looking for
                outcomes.append((pid, amount, "error", type(exc).__name__,
                                 "".join(traceback.format_exception_only(exc)).strip()))
            else:
                outcomes.append((pid, amount, "ok", "", ""))
        app.close()
    except BaseException as exc:  # pragma: no cover - reported to the test
        outcomes.append((None, 0, "error", type(exc).__name__, traceback.format_exc()))
    results.put((os.getpid(), outcomes))


def open_period_in_process(url: str, start_event, results) -> None:
    """``budget.open_period`` of January as finance, once ``start_event`` is set. Puts
    ("ok", summary) or ("error", exception class, message) on ``results``."""
    try:
        app = App(dbmod.make_engine(url), make_plugin_manager())
        with app.engine.connect():
            pass
        start_event.wait(timeout=120)
        try:
            summary = budget.open_period(app, FINANCE, PILOT, JAN)
        except Exception as exc:
            results.put(("error", type(exc).__name__,
                         "".join(traceback.format_exception_only(exc)).strip()[:500]))
        else:
            results.put(("ok", summary))
        app.close()
    except BaseException:  # pragma: no cover - reported to the test
        results.put(("error", "setup", traceback.format_exc()))


def wait_until_disconnected(engine, timeout: float = 30) -> None:
    """On PostgreSQL, wait until no session but ``engine``'s own is connected to its
    database: a killed client's backend has then finished (and rolled back) whatever it
    was doing. Nothing to wait for on SQLite."""
    if engine.dialect.name != "postgresql":
        return

    def alone() -> bool:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalar_one() == 0

    if not wait_for(alone, timeout, interval=0.02):
        raise AssertionError("a killed process's database session is still there")


def wait_for(predicate, timeout: float, interval: float = 0.005):
    """Poll ``predicate`` until it returns something true; that value, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


# --- one deterministic month-and-a-half, for comparing engines -----------------------------


def two_months(url: str) -> dict:
    """A fixed sequence of commands over January and February 2018: allocations, spending,
    partial and full invoices, a cancellation, a refusal, closing with lapse, an invoice
    and an expiry after the close. Returns what a user could see of the result."""
    from helpers import HETUS

    from avain.core.errors import AvainError

    app = open_app(url)
    try:
        team = set_up(app)
        worker, supervisor = Actor("worker", team["worker"]), Actor("supervisor", team["supervisor"])
        a = client_with_budget(app, team, HETUS[0])
        b = client_with_budget(app, team, HETUS[1], monthly=20000)
        c = client_with_budget(app, team, HETUS[2], valid_from=dt.date(2018, 2, 1))
        d = client_with_budget(app, team, HETUS[3], valid_to=dt.date(2018, 1, 31))
        refusals = []
        open_month(app, JAN, batch=2)
        p1 = buy(app, team, a, 12000)
        inv = invoice(app, p1, 10000, "A-1", final=True)  # 20,00 € of the reservation released
        p2 = buy(app, team, a, 5000, provider=OTHER_PROVIDER)
        app.run(worker, purchases.cancel, p2["id"])
        p3 = buy(app, team, a, 8000)  # still reserved when January closes
        full = invoice(app, buy(app, team, b, 20000), 20000, "B-1")
        try:
            buy(app, team, b, 1)
        except AvainError as exc:
            refusals.append(type(exc).__name__)
        buy(app, team, d, 3000)  # expires after January has closed
        for done in (inv, full):
            app.run(supervisor, purchases.approve_invoice, done["id"])
        from helpers import pay_approved

        pay_approved(app)
        close_month(app, JAN, batch=3)
        open_month(app, FEB, batch=3)
        invoice(app, p3, 6000, "A-2", on_date=dt.date(2018, 2, 20), final=True)  # the 20 € rest lapses
        buy(app, team, a, 1000, day=dt.date(2018, 2, 10))
        expired = app.run(FINANCE, purchases.expire, on_date=dt.date(2018, 3, 17))
        with Session(app.engine) as s:
            from avain.core.models import CommitmentRow, InvoiceRow

            commitments = [(r.id, r.client_code, r.amount, r.amount_posted, r.status,
                            r.expires_on.isoformat(), r.reference)
                           for r in s.execute(select(CommitmentRow).order_by(CommitmentRow.id)).scalars()]
            invoices = [(r.id, r.number, r.amount, r.status)
                        for r in s.execute(select(InvoiceRow).order_by(InvoiceRow.id)).scalars()]
        return {
            "balances": {code: balance(app, code) for code in (a, b, c, d)},
            "codes": (a, b, c, d),
            "refusals": refusals,
            "expired": expired["expired"],
            "periods": app.run(FINANCE, budget.periods, PILOT),
            "commitments": commitments,
            "invoices": invoices,
            "accounts": accounts_snapshot(app.engine),
            "transfers": transfers_snapshot(app.engine),
            "verify": verify(app),
        }
    finally:
        app.close()
