"""Durable commitment-and-post throughput on PostgreSQL, service layer vs bare psycopg.

One *operation* is the ledger half of the purchase workflow as it really happens: two
transactions, as ``purchases.approve`` (a pending ``commitment`` transfer from a client
budget to a provider payable) and, later and separately, ``purchases.record_invoice``
(``resolve(kind="post")`` of that commitment) run them. Each transaction goes through
``App.run(actor, fn)`` (unit of work, retry wrapper, pool, Session, ORM) and calls
``ledger.transfer`` / ``ledger.resolve``; the workflow rows around them (proposal,
commitment, invoice, audit) are left out so this measures the ledger's write path.

Baseline: the very same SQL, captured with SQLAlchemy's ``before_cursor_execute`` (plus
the pool's pre-ping, which that event does not see) from one service-layer operation, and
replayed with plain psycopg — same statements, same parameters (ids swapped), same
transaction boundaries, same number of processes, same durability (synchronous_commit on).

Each worker is a separate process with its own engine (or psycopg connection) and its
own client budgets and its own provider payable, so the run measures throughput, not one
hot row. For reference, pgbench's TPC-B on the same server.

    python bench/commit_post_pg.py                       # full: 8 s per phase, 5 rounds
    python bench/commit_post_pg.py --seconds 3 --rounds 1 --no-pgbench   # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PILOT,
    emit,
    find_pg_tool,
    log,
    machine,
    pg_conninfo,
    pg_database,
    pg_sa_url,
    pg_settings,
)

AMOUNT = 1234  # cents per commitment; chosen so it is never mistaken for an account id
PERIOD = "2018-01"
CAPTURE_COMMIT, CAPTURE_POST = "CAPTURE-commit", "CAPTURE-post"


# --- the service-layer operation ------------------------------------------------------


def _commit_fn(uow, tid: str, budget: int, payable: int) -> None:
    from avain.core import ledger
    from avain.core.services.common import session

    ledger.transfer(session(uow), tid, kind="commitment", debit=budget, credit=payable,
                    amount=AMOUNT, pending=True, period=PERIOD, memo="bench service")


def _post_fn(uow, pid: str, tid: str) -> None:
    from avain.core import ledger
    from avain.core.services.common import session

    ledger.resolve(session(uow), pid, pending_id=tid, kind="post", amount=AMOUNT,
                   memo="bench invoice")


def _ids(tag: str, worker: int, n: int) -> tuple[str, str]:
    return f"commit:{tag}:{worker}:{n}", f"post:commit:{tag}:{worker}:{n}"


# --- setup ----------------------------------------------------------------------------


def setup_accounts(app, workers: int, budgets: int) -> dict[str, Any]:
    """Per worker: ``budgets`` client budget accounts, funded by one allocation each, and
    one provider payable. Plus one budget + payable used only to capture the SQL."""
    from avain.core import ledger
    from avain.core.auth import Actor
    from avain.core.services.common import session

    def fn(uow):
        s = session(uow)
        funding = ledger.account_id(s, PILOT, "funding")
        plan: dict[str, Any] = {"workers": []}
        alloc = []
        for w in range(workers):
            ids = [ledger.account_id(s, PILOT, "budget", f"EX-F-W{w}-{i:03d}")
                   for i in range(budgets)]
            payable = ledger.account_id(s, PILOT, "payable", f"P{w:07d}-0")
            plan["workers"].append({"budgets": ids, "payable": payable})
            alloc += [{"id": f"alloc:{a}", "kind": "allocation", "debit": funding, "credit": a,
                       "amount": 10**12} for a in ids]
        cb = ledger.account_id(s, PILOT, "budget", "EX-F-CAPTURE-001")
        cp = ledger.account_id(s, PILOT, "payable", "CAPTURE-0")
        alloc.append({"id": f"alloc:{cb}", "kind": "allocation", "debit": funding, "credit": cb,
                      "amount": 10**12})
        ledger.bulk_post(s, alloc)
        plan["capture"] = {"budget": cb, "payable": cp}
        return plan

    return app.run(Actor("admin"), fn)


def capture(app, budget: int, payable: int) -> list[list[tuple[str, dict]]]:
    """The SQL of one service-layer operation, per transaction: (statement, parameters).
    The pool's pre-ping (not seen by before_cursor_execute) is recorded as the statement the
    dialect pings with (``;`` for psycopg)."""
    from sqlalchemy import event

    from avain.core.auth import Actor

    txns: list[list[tuple[str, dict]]] = []
    current: list[tuple[str, dict]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        assert not executemany, "an executemany in the single-row write path"
        current.append((statement, dict(parameters or {})))

    dialect = app.engine.dialect
    real_ping = dialect.do_ping

    ping_sql = getattr(dialect, "_dialect_specific_select_one", "SELECT 1")

    def ping(dbapi_conn):
        current.append((ping_sql, {}))  # what DefaultDialect.do_ping sends
        return real_ping(dbapi_conn)

    event.listen(app.engine, "before_cursor_execute", before)
    dialect.do_ping = ping
    try:
        app.run(Actor("admin"), _commit_fn, CAPTURE_COMMIT, budget, payable)
        txns.append(current.copy())
        current.clear()
        app.run(Actor("admin"), _post_fn, CAPTURE_POST, CAPTURE_COMMIT)
        txns.append(current.copy())
        current.clear()
    finally:
        event.remove(app.engine, "before_cursor_execute", before)
        dialect.do_ping = real_ping
    return txns


def _kind(stmt: str) -> str:
    word = stmt.split(None, 1)[0].upper()
    return {"SELECT": "select", "UPDATE": "update", "INSERT": "insert", "SAVEPOINT": "savepoint",
            "RELEASE": "release savepoint"}.get(word, word.lower())


def describe(txns: list[list[tuple[str, dict]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = 0
    for name, txn in zip(("commitment_txn", "post_txn"), txns, strict=True):
        kinds: dict[str, int] = {}
        for i, (stmt, _) in enumerate(txn):
            k = "pool pre-ping" if i == 0 and stmt in (";", "SELECT 1") else _kind(stmt)
            kinds[k] = kinds.get(k, 0) + 1
        out[name] = {"statements": len(txn), "by_kind": kinds,
                     "plus": "implicit BEGIN and COMMIT",
                     "round_trips": len(txn) + 2}
        total += len(txn)
    out["statements_per_op"] = total
    out["round_trips_per_op"] = total + 4
    out["sql"] = [[re.sub(r"\s+", " ", s) for s, _ in txn] for txn in txns]
    return out


# --- workers ----------------------------------------------------------------------------


def _substitute(txns, mapping: dict[Any, Any], now: dt.datetime):
    out = []
    for txn in txns:
        stmts = []
        for stmt, params in txn:
            p = {}
            for k, v in params.items():
                if isinstance(v, dt.datetime):
                    p[k] = now
                elif isinstance(v, bool) or v is None:
                    p[k] = v
                else:
                    p[k] = mapping.get(v, v)
            stmts.append((stmt, p))
        out.append(stmts)
    return out


def _worker(mode: str, url: str, conninfo: str, tag: str, worker: int, budgets: list[int],
            payable: int, templ: dict[str, Any] | None, seconds: float, barrier, queue) -> None:
    """One process: runs operations for ``seconds`` after everyone is ready; reports
    (operations, elapsed, latencies)."""
    try:
        if mode == "service":
            from avain.core import db as dbmod
            from avain.core.app import App
            from avain.core.auth import Actor
            from avain.core.plugins import make_plugin_manager

            app = App(dbmod.make_engine(url), make_plugin_manager())
            actor = Actor("admin")

            def op(n: int, budget: int) -> None:
                tid, pid = _ids(tag, worker, n)
                app.run(actor, _commit_fn, tid, budget, payable)
                app.run(actor, _post_fn, pid, tid)

            # warm the pool and the statement caches
            for n in range(20):
                op(-1 - n, budgets[n % len(budgets)])
        else:
            import psycopg

            from avain.core.ledger import fingerprint as _request_hash

            conn = psycopg.connect(conninfo)
            txns = templ["txns"]
            cap_b, cap_p = templ["budget"], templ["payable"]

            def op(n: int, budget: int) -> None:
                tid, pid = _ids(tag, worker, n)
                mapping = {
                    CAPTURE_COMMIT: tid, CAPTURE_POST: pid, cap_b: budget, cap_p: payable,
                    templ["hash_commit"]: _request_hash("commitment", budget, payable, AMOUNT, True, PERIOD, None),
                    templ["hash_post"]: _request_hash("post", None, None, AMOUNT, False, None, None, tid),
                }
                for txn in _substitute(txns, mapping, dt.datetime.now(dt.UTC)):
                    with conn.cursor() as cur:
                        for stmt, params in txn:
                            cur.execute(stmt, params)
                            if cur.description is not None:
                                cur.fetchall()
                    conn.commit()

            for n in range(20):
                op(-1 - n, budgets[n % len(budgets)])
        barrier.wait()
        lat = []
        n = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while True:
            a = time.perf_counter()
            if a >= deadline:
                break
            op(n, budgets[n % len(budgets)])
            lat.append(time.perf_counter() - a)
            n += 1
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        queue.put((worker, n, elapsed, lat, cpu))
    except BaseException as exc:  # report, never hang the parent
        import traceback

        traceback.print_exc()
        try:
            barrier.abort()
        except Exception:
            pass
        queue.put((worker, -1, 0.0, [repr(exc)], 0.0))


def run_phase(mode: str, workers: int, seconds: float, plan, templ, url: str, conninfo: str,
              tag: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    queue = ctx.Queue()
    procs = []
    for w in range(workers):
        wp = plan["workers"][w]
        p = ctx.Process(target=_worker, args=(mode, url, conninfo, tag, w, wp["budgets"],
                                               wp["payable"], templ, seconds, barrier, queue))
        p.start()
        procs.append(p)
    results = [queue.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    if any(r[1] < 0 for r in results):
        raise RuntimeError(f"{mode} worker failed: {[r[3] for r in results if r[1] < 0]}")
    ops = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    lat = sorted(x for r in results for x in r[3])
    cpu = sum(r[4] for r in results)
    return {"mode": mode, "workers": workers, "ops": ops, "seconds": round(elapsed, 3),
            "ops_per_s": round(ops / elapsed, 1), "txn_per_s": round(2 * ops / elapsed, 1),
            "client_cpu_ms_per_op": round(cpu / ops * 1e3, 3),
            "op_latency_ms_p50": round(statistics.median(lat) * 1e3, 3),
            "op_latency_ms_p99": round(lat[int(0.99 * (len(lat) - 1))] * 1e3, 3)}


def checkpoint(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def pgbench(seconds: int) -> dict[str, Any]:
    exe = find_pg_tool("pgbench")
    if exe is None:
        return {"error": "pgbench not found"}
    from _common import pg_base_url
    from sqlalchemy.engine import make_url

    out: dict[str, Any] = {"pgbench": exe}
    with pg_database("pgbench") as name:
        u = make_url(pg_base_url())
        conn = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
        log("pgbench -i -s 1")
        subprocess.run([exe, *conn, "-i", "-s", "1", "-q", name], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c, j in ((1, 1), (4, 2)):
            log(f"pgbench -c {c} -j {j} -T {seconds}")
            proc = subprocess.run([exe, *conn, "-c", str(c), "-j", str(j), "-T", str(seconds), name],
                                  check=True, capture_output=True, text=True)
            m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
            lat = re.search(r"latency average = ([0-9.]+) ms", proc.stdout)
            out[f"c{c}_j{j}"] = {"tps": float(m.group(1)) if m else None,
                                 "latency_avg_ms": float(lat.group(1)) if lat else None,
                                 "command": f"pgbench -c {c} -j {j} -T {seconds}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,4", help="worker process counts (default 1,4)")
    ap.add_argument("--seconds", type=float, default=8, help="measured seconds per phase")
    ap.add_argument("--rounds", type=int, default=5,
                    help="repeat every phase, service and baseline alternating; medians reported")
    ap.add_argument("--budgets", type=int, default=50, help="client budgets per worker")
    ap.add_argument("--pgbench-seconds", type=int, default=10)
    ap.add_argument("--no-pgbench", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]

    doc: dict[str, Any] = {"benchmark": "commit_post_pg", "machine": machine(),
                           "loadavg_at_start": os.getloadavg(),
                           "operation": ("2 transactions through App.run: commitment "
                                         "(ledger.transfer pending) then post (ledger.resolve), "
                                         "as approve and record_invoice do"),
                           "args": vars(args)}
    with pg_database("commit_post", keep=args.keep) as name:
        url, conninfo = pg_sa_url(name), pg_conninfo(name)
        doc["server"] = pg_settings(conninfo, ["server_version", "synchronous_commit", "fsync",
                                               "wal_sync_method", "shared_buffers"])
        if doc["server"]["synchronous_commit"] != "on" or doc["server"]["fsync"] != "on":
            log("WARNING: the server is not durable:", doc["server"])
        from _common import migrated_app

        app = migrated_app(url)
        plan = setup_accounts(app, max(counts), args.budgets)
        txns = capture(app, plan["capture"]["budget"], plan["capture"]["payable"])
        doc["sql_per_op"] = describe(txns)
        hashes = [p["request_hash"] for txn in txns for s, p in txn if "request_hash" in p]
        cap = plan["capture"]
        assert not {cap["budget"], cap["payable"]} & {0, AMOUNT, -AMOUNT}
        templ = {"txns": txns, "budget": cap["budget"], "payable": cap["payable"],
                 "hash_commit": hashes[0], "hash_post": hashes[1]}
        app.close()

        phases = []
        for r in range(args.rounds):
            for w in counts:
                modes = ("service", "baseline") if r % 2 == 0 else ("baseline", "service")
                for mode in modes:
                    checkpoint(conninfo)
                    log(f"round {r + 1}: {mode}, {w} worker(s), {args.seconds:g} s")
                    res = run_phase(mode, w, args.seconds, plan, templ, url, conninfo,
                                    tag=f"{mode[0]}{w}r{r}")
                    log(f"  {res['ops_per_s']} ops/s ({res['txn_per_s']} txn/s)")
                    res["round"] = r + 1
                    phases.append(res)
        doc["phases"] = phases
        summary = {}
        for w in counts:
            def pick(mode, key, w=w):
                return [p[key] for p in phases if p["workers"] == w and p["mode"] == mode]

            svc = statistics.median(pick("service", "ops_per_s"))
            base = statistics.median(pick("baseline", "ops_per_s"))
            pairs = [a / b for a, b in zip(pick("service", "ops_per_s"),
                                           pick("baseline", "ops_per_s"), strict=True)]
            summary[f"{w}_workers"] = {
                "service_ops_per_s": svc, "baseline_ops_per_s": base,
                "ratio_service_to_baseline": round(svc / base, 3),
                "ratio_per_round": [round(x, 3) for x in pairs],
                "service_client_cpu_ms_per_op": statistics.median(
                    pick("service", "client_cpu_ms_per_op")),
                "baseline_client_cpu_ms_per_op": statistics.median(
                    pick("baseline", "client_cpu_ms_per_op")),
                "target_ratio": 0.7, "meets_target": svc / base >= 0.7}
        doc["summary"] = summary

        # the books must still balance
        from sqlalchemy import func, select
        from sqlmodel import Session

        from avain.core import db as dbmod
        from avain.core import ledger
        from avain.core.models import TransferRow

        engine = dbmod.make_engine(url)
        with Session(engine) as s:
            problems = ledger.verify(s)
            n = s.execute(select(func.count()).select_from(TransferRow)).scalar_one()
        engine.dispose()
        doc["check"] = {"transfers": n, "ledger_verify_problems": problems[:5],
                        "ok": not problems}
    if not args.no_pgbench:
        doc["pgbench_tpcb"] = pgbench(args.pgbench_seconds)
    doc["loadavg_at_end"] = os.getloadavg()
    emit(doc)


if __name__ == "__main__":
    main()
