"""Importing PSOP service events through the adapter on SQLite, against a raw
``executemany`` of the same rows into the same table, in the same run.

For each size a child process:

1. makes a fresh migrated SQLite file with a bench pilot paying through PSOP (the
   example-psop pilot.toml with no budget calculator and no cap, so each decision's
   amount is the budget), 10 approved providers and ``--clients`` clients, each with a
   plan and a decision, and opens January 2018 — which issues every voucher to a PSOP
   simulator started in-process;
2. writes N booked events to a temporary file (JSON lines, as the service exports them,
   or CSV with ``--format csv``), spread over the clients, providers and days of the month;
3. **raw**: inserts the same N transfer rows (ids ``raw:<event id>``, the same columns and
   values the adapter writes) into the ``transfer`` table with ``sqlite3`` ``executemany``,
   in chunks of the same size, each chunk one transaction; only the ``executemany`` and
   the commits are timed (the rows of a chunk are built beforehand), then the rows are
   deleted, untimed, so both phases start from the same table;
4. **adapter**: ``backend.import_file(app, finance, pilot, FILE)`` — the path of
   ``avain psop import FILE``: stream the file, parse each row with the typed parser,
   post chunks of charges (never beyond a budget) in one transaction each;
5. checks the books: N charges with the expected sum, ``ledger verify`` clean.

It reports events/s of both, their ratio (target ≥ 0.15, and ≥ 50 000 events/s), and
the child's peak RSS (``ru_maxrss``) with its RSS just before the import and the growth
during it: memory is flat in the file size when the growth is the same for 100 000 and
1 000 000 events. ``--cache-mb`` gives both sides a larger SQLite page cache (avain's
engine leaves SQLite's default of 2 MB).

    python bench/psop_import.py                         # 1 000 000 events (~1.5 min)
    python bench/psop_import.py --events 100000,1000000 # flatness of memory (~2 min)
    python bench/psop_import.py --events 50000          # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A made-up integrity key for the throwaway databases (the ledger signs every transfer).
os.environ.setdefault("AVAIN_INTEGRITY_KEY", "dGVzdC1vbmx5LWF2YWluLWludGVncml0eS1rZXktMzI")

PILOT = "bench-psop"
CODE = "BP"
PERIOD = (2018, 1)
SERVICES = (("home-care", 4500), ("personal-assistance", 2500))


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def hetu(i: int) -> str:
    """The i-th valid made-up henkilötunnus: born 1.1.1950 plus i // 800 days, individual
    numbers 002–801 (900–999 are temporary numbers, which the pilot refuses)."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=i // 800)
    number = 2 + i % 800
    digits = f"{born:%d%m%y}{number:03d}"
    return f"{born:%d%m%y}-{number:03d}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[int(digits) % 31]}"


def ytunnus(i: int) -> str:
    """The i-th valid Y-tunnus above 1 000 000 (check digits of remainder 1 do not exist)."""
    n = 1_000_000
    while True:
        body = f"{n:07d}"
        r = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
        if r != 1:
            if i == 0:
                return f"{body}-{0 if r == 0 else 11 - r}"
            i -= 1
        n += 1


def pilot_toml(url: str) -> str:
    return f"""
id = "{PILOT}"
name = "Benchmark PSOP pilot"
code = "{CODE}"
services = ["home-care", "carer-day-off", "personal-assistance"]

[[groups]]
id = "elderly"
code = "E"
name = "Elderly"

[payment]
backend = "psop"

[plugins.payment_psop]
url = "{url}"
"""


def event(i: int, codes: list[str], providers: list[str]) -> tuple:
    """Event i: (id, voucher, client, provider, day, service, units, unit price)."""
    code = codes[i % len(codes)]
    service, price = SERVICES[i % 2]
    day = 1 + i % 28
    return (f"ev-{i:09d}", f"{CODE}-2018-01-{code}", code, providers[(i // 2) % len(providers)],
            day, service, 1 + i % 4, price)


def write_events(path: Path, n: int, codes: list[str], providers: list[str], fmt: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            fh.write("event_id,voucher_id,client,provider,date,service,units,unit_price,status,recorded_on,"
                     "booked_on\n")
        for i in range(n):
            eid, vid, code, prov, day, service, units, price = event(i, codes, providers)
            if fmt == "csv":
                fh.write(f"{eid},{vid},{code},{prov},2018-01-{day:02d},{service},{units},{price},booked,"
                         f"2018-01-{day:02d},2018-01-{day + 1:02d}\n")
            else:
                fh.write(json.dumps({
                    "event_id": eid, "voucher_id": vid, "client": code, "provider": prov,
                    "date": f"2018-01-{day:02d}", "service": service, "units": units, "unit_price": price,
                    "status": "booked", "recorded_on": f"2018-01-{day:02d}",
                    "booked_on": f"2018-01-{day + 1:02d}"}) + "\n")


def build(db_path: Path, work: Path, n_clients: int):
    from avain.core import db as dbmod
    from avain.core import ledger
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.domain import Money, Period
    from avain.core.plugins import make_plugin_manager
    from avain.core.services import budget, people, pilots, plans, providers
    from avain.core.services.common import session
    from avain.plugins import payment_psop
    from avain.plugins.payment_psop.simulator import Simulator

    pm = make_plugin_manager()  # the plugin comes in through its entry point once installed
    if not pm.is_registered(payment_psop):
        pm = make_plugin_manager(extra=[payment_psop])
    engine = dbmod.make_engine(f"sqlite:///{db_path}")
    dbmod.upgrade(engine)
    app = App(engine, pm)
    admin = Actor("admin")
    app.run(admin, pilots.sync_plugin_pilots)
    sim = Simulator.start(today=dt.date(2018, 1, 1))
    toml = work / "bench-psop.toml"
    toml.write_text(pilot_toml(sim.url), encoding="utf-8")
    app.run(admin, pilots.add_file, toml)
    provider_ids = [ytunnus(i) for i in range(10)]
    checks = {c: ("seen", dt.date(2017, 12, 1)) for c in providers.STATUTORY}
    for i, pid in enumerate(provider_ids):
        app.run(admin, providers.add, business_id=pid, name=f"Hoiva {i}")
        app.run(admin, providers.approve, pid, pilot_id=PILOT, services=[s for s, _ in SERVICES],
                checks=dict(checks), valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31))
    workers = [app.run(admin, people.add_worker, pilot_id=PILOT, code=f"{w:02d}", name=f"Worker {w}",
                       role="worker")["id"] for w in range(1 + n_clients // 500)]
    # Money moves under a named finance worker of the pilot.
    finance = Actor("finance", app.run(admin, people.add_worker, pilot_id=PILOT, code="99", name="Finance",
                                       role="finance")["id"])
    codes = []
    for i in range(n_clients):
        worker = workers[i // 500]
        code = app.run(admin, people.enroll, pilot_id=PILOT, hetu=hetu(i), name="Bench Client",
                       worker_id=worker, group_id="elderly", on_date=dt.date(2017, 12, 1))["code"]
        app.run(Actor("worker", worker), plans.set_plan, code, valid_from=dt.date(2018, 1, 1),
                items={"home-care": 10, "personal-assistance": 20})
        app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1),
                valid_to=dt.date(2018, 12, 31), monthly_amount=Money(900_000_000))
        codes.append(code)
    opened = budget.open_period(app, finance, PILOT, Period(*PERIOD))

    def payables(uow):  # the providers' payable accounts, as their first charge would make them
        return [ledger.account_id(session(uow), PILOT, "payable", pid) for pid in provider_ids]

    app.run(admin, payables)
    sim.stop()
    return app, finance, codes, provider_ids, opened


def raw_insert(db_path: Path, n: int, chunk: int, codes: list[str], providers: list[str],
               cache_mb: int | None) -> float:
    """Seconds spent in executemany + commit for n transfer rows like the adapter's."""
    from avain.core.ledger import fingerprint

    conn = sqlite3.connect(str(db_path), isolation_level=None)
    for pragma in ("foreign_keys = ON", "busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")  # what avain.core.db sets on every SQLite connection
    if cache_mb:
        conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
    budgets = dict(conn.execute("SELECT owner, id FROM account WHERE pilot_id = ? AND kind = 'budget'", (PILOT,)))
    payables = dict(conn.execute("SELECT owner, id FROM account WHERE pilot_id = ? AND kind = 'payable'", (PILOT,)))
    sql = ("INSERT INTO transfer (id, kind, debit_account_id, credit_account_id, amount, pending, pending_id, "
           "reverses, period, memo, request_hash, created_at, business_date, chain_seq, mac) "
           "VALUES (?, 'charge', ?, ?, ?, 0, NULL, NULL, ?, ?, ?, ?, ?, ?, ?)")
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    spent = 0.0
    seqs: dict[int, int] = {}
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            eid, _vid, code, prov, day, _service, units, price = event(i, codes, providers)
            debit, credit, amount = budgets[code], payables[prov], units * price
            h = fingerprint("charge", debit, credit, amount, False, "2018-01", None)
            seq = seqs[debit] = seqs.get(debit, 0) + 1  # a place and a mac as the ledger's (made untimed)
            rows.append((f"raw:{eid}", debit, credit, amount, "2018-01", f"psop charge {eid}", h, at,
                         f"2018-01-{day:02d}", seq, hashlib.sha256(h.encode()).hexdigest()))
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - t
    conn.execute("DELETE FROM transfer WHERE id >= 'raw:' AND id < 'raw;'")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return spent


def child(n: int, n_clients: int, chunk: int, fmt: str, keep: bool, cache_mb: int | None) -> dict[str, Any]:
    from sqlalchemy import func, select

    from avain.core.auth import Actor
    from avain.core.models import TransferRow
    from avain.core.services import pilots, statements
    from avain.core.services.common import session
    from avain.plugins.payment_psop import backend

    work = Path(tempfile.mkdtemp(prefix="bench_psop_"))
    db_path = work / "avain.db"
    t0 = time.perf_counter()
    app, finance, codes, provider_ids, opened = build(db_path, work, n_clients)
    fixture_s = time.perf_counter() - t0
    log(f"fixture: {n_clients} clients, {opened['backend']['issued']} vouchers issued ({fixture_s:.1f} s)")
    path = work / f"events.{'csv' if fmt == 'csv' else 'jsonl'}"
    t0 = time.perf_counter()
    write_events(path, n, codes, provider_ids, fmt)
    log(f"wrote {n} events, {path.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t0:.1f} s)")

    if cache_mb:  # both sides get the same page cache; avain's own default is SQLite's 2 MB
        from sqlalchemy import event as sa_event

        app.engine.dispose()
        sa_event.listen(app.engine, "connect",
                        lambda dbapi, _rec: dbapi.execute(f"PRAGMA cache_size = -{cache_mb * 1024}"))
    raw_s = raw_insert(db_path, n, chunk, codes, provider_ids, cache_mb)
    log(f"raw executemany: {raw_s:.2f} s ({n / raw_s:,.0f} rows/s)")

    pilot = app.run(Actor("admin"), pilots.get, PILOT)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    summary = backend.import_file(app, finance, pilot, path, chunk=chunk)
    adapter_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    log(f"adapter: {adapter_s:.2f} s ({n / adapter_s:,.0f} events/s); {summary['posted']} posted, "
        f"{summary['rejected_count']} rejected")

    expected = sum(e[6] * e[7] for e in (event(i, codes, provider_ids) for i in range(n)))

    def totals(uow):
        return session(uow).execute(select(func.count(), func.sum(TransferRow.amount))
                                    .where(TransferRow.kind == "charge")).one()

    count, amount = app.run(Actor("admin"), totals)
    t0 = time.perf_counter()
    verify = app.run(Actor("admin"), statements.verify)
    checks = {"charges": count, "charges_expected": n, "sum_ok": int(amount or 0) == expected,
              "ledger_verify_ok": verify["ok"], "verify_s": round(time.perf_counter() - t0, 1)}
    app.close()
    if not keep:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    ok = count == n and checks["sum_ok"] and verify["ok"] and summary["rejected_count"] == 0
    return {"events": n, "clients": n_clients, "chunk": chunk, "format": fmt, "sqlite_cache_mb": cache_mb or 2,
            "file_mb": round(path.stat().st_size / 1e6, 1) if keep else None,
            "adapter_s": round(adapter_s, 2), "adapter_events_per_s": round(n / adapter_s),
            "raw_s": round(raw_s, 2), "raw_rows_per_s": round(n / raw_s),
            "ratio_adapter_to_raw": round(raw_s / adapter_s, 3),
            "rss_before_import_mb": rss_before, "peak_rss_mb": peak,
            "import_rss_growth_mb": round(max(0.0, peak - rss_before), 1),
            "fixture_s": round(fixture_s, 1), "checks": checks, "ok": ok}


def main() -> None:
    from avain.plugins.payment_psop.posting import DEFAULT_CHUNK

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", default="1000000", help="comma-separated sizes (default 1000000)")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                    help="events per transaction (default: the adapter's, %(default)s)")
    ap.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--cache-mb", type=int, help="SQLite page cache for both sides (default: SQLite's 2 MB, "
                                                   "as avain.core.db leaves it)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.clients, args.chunk, args.format, args.keep, args.cache_mb)))
        return
    runs = []
    for n in (int(x) for x in args.events.split(",")):
        cmd = [sys.executable, __file__, "--child", str(n), "--clients", str(args.clients),
               "--chunk", str(args.chunk), "--format", args.format] + (["--keep"] if args.keep else []) + (
            ["--cache-mb", str(args.cache_mb)] if args.cache_mb else [])
        log(f"run: {n} events")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        runs.append(json.loads(proc.stdout))
    import sqlalchemy

    doc = {"benchmark": "psop_import", "engine": "sqlite",
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__},
           "targets": {"ratio_adapter_to_raw": 0.15, "adapter_events_per_s": 50_000},
           "runs": runs,
           "met": all(r["ok"] and r["ratio_adapter_to_raw"] >= 0.15 and r["adapter_events_per_s"] >= 50_000
                      for r in runs)}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
