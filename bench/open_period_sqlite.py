"""``open_period`` for N clients on SQLite: seconds, clients/s and peak RSS.

For each size a fresh, migrated SQLite file gets the fixture bulk-loaded with plain SQL
(executemany): the example pilot (``avain init``), one personal worker per 1 000 clients,
N clients, one decision in force per client (the whole of 2017–2019, with a monthly amount
written on it; every fifth above the pilot's cap), N client budget accounts. Then a fresh
process opens the file and times the real service call

    budget.open_period(app, Actor("admin"), "example", Period(2018, 1))

and reports its wall time and the process's peak RSS (``ru_maxrss``; the RSS after the
imports and App.open is reported too, so the growth due to open_period is visible).
Afterwards the books are checked with cheap SQL: N allocation transfers, their sum equals
the expected budgets, the run's totals and the funding/budget account totals agree.

The ratio of 1M to 100k seconds is ~10 when the run is linear.

    python bench/open_period_sqlite.py                      # 100000 and 1000000
    python bench/open_period_sqlite.py --clients 10000      # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PILOT,
    current_rss_mb,
    emit,
    log,
    machine,
    migrated_app,
    peak_rss_mb,
    run_child,
    sqlite_back_to_wal,
    sqlite_fast_load,
)

PER_WORKER = 1000
PERIOD = (2018, 1)
MONTHLY_CAP = 30000  # the example pilot's monthly_cap


def monthly_amount(i: int) -> int:
    """What decision ``i`` writes (an amount on the decision wins over the pilot's budget
    calculator); every fifth is above the pilot's monthly cap, so the cap applies."""
    return 35000 if i % 5 == 0 else 10000 + (i % 200) * 100


def client_code(i: int) -> tuple[str, str, int, str]:
    """(code, worker id, ordinal, group) of client ``i``, as the default code hook makes
    them: ``EX-<group>-<worker code>-<ordinal>``."""
    w, o = divmod(i, PER_WORKER)
    group, g = ("family", "F") if i % 2 == 0 else ("elderly", "E")
    return f"EX-{g}-{w:04d}-{o + 1:03d}", f"{PILOT}-{w:04d}", o + 1, group


def build(path: Path, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    app = migrated_app(f"sqlite:///{path}")  # migrations + the example pilot
    app.close()
    conn = sqlite_fast_load(path)
    stamp = dt.datetime(2017, 12, 1, 12, 0, tzinfo=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    workers = (n + PER_WORKER - 1) // PER_WORKER
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO worker (id, pilot_id, code, name, role, supervisor_id) VALUES (?,?,?,?,?,NULL)",
        ((f"{PILOT}-{w:04d}", PILOT, f"{w:04d}", f"Worker {w}", "worker") for w in range(workers)))
    conn.executemany(
        "INSERT INTO client (code, pilot_id, group_id, worker_id, assistant_id, ordinal, control, "
        "enrolled_on, ended_on) VALUES (?,?,?,?,NULL,?,0,'2017-06-01',NULL)",
        ((code, PILOT, group, wid, o) for code, wid, o, group in map(client_code, range(n))))
    conn.executemany(
        "INSERT INTO decision (id, client_code, pilot_id, valid_from, valid_to, monthly_amount, "
        "inputs, decided_by, decided_at, revoked_on) "
        "VALUES (?,?,?,'2017-01-01','2019-12-31',?,'{}',?,?,NULL)",
        ((i + 1, client_code(i)[0], PILOT, monthly_amount(i), f"worker:{client_code(i)[1]}", stamp)
         for i in range(n)))
    conn.executemany(
        "INSERT INTO account (pilot_id, kind, owner, limited, debits_posted, debits_pending, "
        "credits_posted, credits_pending) VALUES (?, 'budget', ?, 1, 0, 0, 0, 0)",
        ((PILOT, client_code(i)[0]) for i in range(n)))
    conn.execute("COMMIT")
    sqlite_back_to_wal(conn)
    return {"clients": n, "workers": workers, "load_s": round(time.perf_counter() - t0, 2),
            "file_mb": round(path.stat().st_size / 2**20, 1)}


def run(path: Path) -> dict[str, Any]:
    """In a fresh process: open the file and time open_period through the service."""
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.domain import Period
    from avain.core.services import budget

    app = App.open(f"sqlite:///{path}", create=False)
    rss_before = current_rss_mb()
    marks: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        marks.append((time.perf_counter(), done))
        if len(marks) % 20 == 0:
            log(f"  {done}/{total}")

    t0 = time.perf_counter()
    summary = budget.open_period(app, Actor("admin"), PILOT, Period(*PERIOD), progress=progress)
    seconds = time.perf_counter() - t0
    app.close()
    chunks = [b[0] - a[0] for a, b in zip(marks, marks[1:], strict=False)]
    return {"seconds": round(seconds, 3), "summary": summary,
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
            "chunks": len(chunks),
            "first_chunk_s": round(chunks[0], 3) if chunks else None,
            "last_full_chunk_s": round(chunks[-2], 3) if len(chunks) > 1 else None,
            "slowest_chunk_s": round(max(chunks), 3) if chunks else None}


def verify(path: Path, n: int) -> dict[str, Any]:
    expected = sum(min(monthly_amount(i), MONTHLY_CAP) for i in range(n))
    conn = sqlite3.connect(str(path))
    period = f"{PERIOD[0]}-{PERIOD[1]:02d}"
    count, total = conn.execute(
        "SELECT count(*), coalesce(sum(amount), 0) FROM transfer WHERE kind = 'allocation' "
        "AND period = ?", (period,)).fetchone()
    distinct = conn.execute("SELECT count(DISTINCT credit_account_id) FROM transfer "
                            "WHERE kind = 'allocation'").fetchone()[0]
    run_alloc, run_cents, status = conn.execute(
        "SELECT allocated, allocated_cents, status FROM budget_period WHERE pilot_id = ? "
        "AND period = ?", (PILOT, period)).fetchone()
    funding = conn.execute("SELECT debits_posted FROM account WHERE pilot_id = ? AND kind = "
                           "'funding'", (PILOT,)).fetchone()[0]
    budgets = conn.execute("SELECT sum(credits_posted), sum(debits_posted + debits_pending) "
                           "FROM account WHERE kind = 'budget'").fetchone()
    books = conn.execute("SELECT sum(debits_posted), sum(credits_posted) FROM account").fetchone()
    conn.close()
    checks = {"allocations_equal_clients": count == n == distinct,
              "sum_equals_expected": total == expected,
              "run_totals_agree": run_alloc == n and run_cents == expected and status == "open",
              "funding_debits_agree": funding == expected,
              "budget_credits_agree": budgets[0] == expected and budgets[1] == 0,
              "books_balance": books[0] == books[1]}
    return {"allocation_transfers": count, "allocated_cents": total, "expected_cents": expected,
            "checks": checks, "ok": all(checks.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="100000,1000000",
                    help="comma-separated sizes (default 100000,1000000)")
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    ap.add_argument("--_build", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--_run", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._build:
        emit(build(Path(args._build[0]), int(args._build[1])))
        return
    if args._run:
        emit(run(Path(args._run)))
        return

    sizes = [int(x) for x in args.clients.split(",")]
    doc: dict[str, Any] = {"benchmark": "open_period_sqlite", "machine": machine(),
                           "targets": {"1M_seconds": 60, "peak_rss_mb": 500},
                           "batch": None, "sizes": {}}
    from avain.core.services.budget import DEFAULT_BATCH

    doc["batch"] = DEFAULT_BATCH
    with tempfile.TemporaryDirectory(prefix="bench_open_period_", dir=args.dir) as tmp:
        for n in sizes:
            path = Path(tmp) / f"open_period_{n}.db"
            log(f"{n} clients: building {path}")
            fixture = run_child([__file__, "--_build", str(path), str(n)], timeout=args.timeout)
            log(f"  loaded in {fixture['load_s']} s; open_period …")
            result = run_child([__file__, "--_run", str(path)], timeout=args.timeout)
            log(f"  open_period {result['seconds']} s, peak RSS {result['peak_rss_mb']} MB")
            check = verify(path, n)
            log(f"  check ok: {check['ok']}")
            doc["sizes"][str(n)] = {
                "clients": n, "seconds": result["seconds"],
                "clients_per_s": round(n / result["seconds"], 1),
                "peak_rss_mb": result["peak_rss_mb"], "rss_before_mb": result["rss_before_mb"],
                "chunks": result["chunks"], "first_chunk_s": result["first_chunk_s"],
                "last_full_chunk_s": result["last_full_chunk_s"],
                "slowest_chunk_s": result["slowest_chunk_s"],
                "fixture": fixture, "check": check,
                "meets_targets": {"peak_rss": result["peak_rss_mb"] < 500,
                                  **({"seconds": result["seconds"] < 60} if n >= 1_000_000 else {})},
            }
            path.unlink()
            for extra in ("-wal", "-shm"):
                Path(str(path) + extra).unlink(missing_ok=True)
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        doc["time_ratio"] = {
            "sizes": f"{hi}/{lo}",
            "ratio": round(doc["sizes"][str(hi)]["seconds"] / doc["sizes"][str(lo)]["seconds"], 2),
            "linear_would_be": round(hi / lo, 2)}
    emit(doc)


if __name__ == "__main__":
    main()
