"""Balance lookup latency (p50/p99) with millions of transfers, on SQLite and PostgreSQL.

A fresh, migrated database gets ~100 000 clients with a budget account each, 100
provider payables, a funding account, and 10 million transfers spread over the budgets
(round r of every budget: an allocation, a pending commitment, or the post of the previous
round's commitment), bulk-loaded with SQL: ``INSERT … SELECT`` from a recursive CTE on
SQLite, psycopg's ``COPY`` on PostgreSQL. The account totals are set from the same
arithmetic and checked against the transfers (global sums per kind, the books balance,
and a sample of accounts folded from their transfers through the indexes).

Then, for a few thousand random client codes (warm cache, one process), four ways to get
one client's balance are timed, interleaved:

- ``service``: ``app.read(Actor("admin"), statements.balance, code)`` — what
  ``avain ledger balance`` does (a read-only unit of work, Session, role check, and one
  statement joining the client, the worker and the budget account's totals).
- ``service_sql_replayed``: the very SQL the service sends for one lookup (captured with
  ``before_cursor_execute``, plus the pool pre-ping and SQLite's ``BEGIN IMMEDIATE``),
  replayed on a plain driver connection, with the same transaction boundaries.
- ``bare_sql``: one statement on a plain driver connection, in autocommit: the client's
  pilot and its budget account's totals (client LEFT JOIN account on the unique key).
- ``service_select1``: ``app.read`` of a function that only runs ``SELECT 1``: the fixed
  cost of one read-only service-layer transaction.

    python bench/balance_latency.py                                  # 10M, both engines
    python bench/balance_latency.py --transfers 200000 --lookups 1000  # quick
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PILOT,
    emit,
    latency_summary,
    log,
    machine,
    migrated_app,
    pg_conninfo,
    pg_database,
    pg_sa_url,
    sqlite_back_to_wal,
    sqlite_fast_load,
)

PER_WORKER = 1000
PROVIDERS = 100
ALLOC, COMMIT = 30000, 1000
FUNDING_ID = 1
PAYABLE0 = 2  # payable p has id PAYABLE0 + p


def budget_id(a: int) -> int:
    return PAYABLE0 + PROVIDERS + a


def code_of(a: int) -> str:
    w, o = divmod(a, PER_WORKER)
    return f"EX-{'F' if a % 2 == 0 else 'E'}-{w:04d}-{o + 1:03d}"


def expected_totals(accounts: int, transfers: int) -> dict[int, tuple[int, int, int, int]]:
    """(debits_posted, debits_pending, credits_posted, credits_pending) by account id.
    Transfer i belongs to budget a = i % A in round r = i // A: r % 3 == 0 an allocation
    from funding, 1 a pending commitment to payable a % P, 2 the post of round r-1's."""
    tot: dict[int, list[int]] = {FUNDING_ID: [0, 0, 0, 0]}
    for p in range(PROVIDERS):
        tot[PAYABLE0 + p] = [0, 0, 0, 0]
    for a in range(accounts):
        rounds = (transfers - a + accounts - 1) // accounts if a < transfers else 0
        n_alloc, n_commit, n_post = (rounds + 2) // 3, (rounds + 1) // 3, rounds // 3
        tot[budget_id(a)] = [COMMIT * n_post, COMMIT * (n_commit - n_post), ALLOC * n_alloc, 0]
        tot[FUNDING_ID][0] += ALLOC * n_alloc
        pay = tot[PAYABLE0 + a % PROVIDERS]
        pay[2] += COMMIT * n_post
        pay[3] += COMMIT * (n_commit - n_post)
    return {k: tuple(v) for k, v in tot.items()}


def account_rows(accounts: int, totals) -> list[tuple]:
    rows = [(FUNDING_ID, PILOT, "funding", "", False, *totals[FUNDING_ID])]
    rows += [(PAYABLE0 + p, PILOT, "payable", f"{1000000 + p:07d}-0", False,
              *totals[PAYABLE0 + p]) for p in range(PROVIDERS)]
    rows += [(budget_id(a), PILOT, "budget", code_of(a), True, *totals[budget_id(a)])
             for a in range(accounts)]
    return rows


# --- SQLite ---------------------------------------------------------------------------

SQLITE_TRANSFERS = """
INSERT INTO transfer (id, kind, debit_account_id, credit_account_id, amount, pending,
                      pending_id, reverses, period, memo, request_hash, created_at)
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :t)
SELECT printf('t%09d', i),
       CASE (i / :a) % 3 WHEN 0 THEN 'allocation' WHEN 1 THEN 'commitment' ELSE 'post' END,
       CASE (i / :a) % 3 WHEN 0 THEN :funding ELSE :b0 + i % :a END,
       CASE (i / :a) % 3 WHEN 0 THEN :b0 + i % :a ELSE :p0 + (i % :a) % :np END,
       CASE (i / :a) % 3 WHEN 0 THEN :alloc ELSE :commit END,
       (i / :a) % 3 = 1,
       CASE (i / :a) % 3 WHEN 2 THEN printf('t%09d', i - :a) END,
       NULL,
       printf('%04d-%02d', 2018 + (i / :a / 3) / 12, (i / :a / 3) % 12 + 1),
       NULL,
       printf('%064x', i),
       '2018-01-01 00:00:00.000000'
FROM s
"""


def load_sqlite(path: Path, accounts: int, transfers: int, totals) -> dict[str, Any]:
    t0 = time.perf_counter()
    migrated_app(f"sqlite:///{path}").close()
    conn = sqlite_fast_load(path)
    conn.execute("BEGIN")
    workers = (accounts + PER_WORKER - 1) // PER_WORKER
    conn.executemany("INSERT INTO worker (id, pilot_id, code, name, role) VALUES (?,?,?,?,?)",
                     [(f"{PILOT}-{w:04d}", PILOT, f"{w:04d}", f"Worker {w}", "worker")
                      for w in range(workers)])
    conn.executemany(
        "INSERT INTO client (code, pilot_id, group_id, worker_id, ordinal, control, enrolled_on) "
        "VALUES (?,?,?,?,?,0,'2017-06-01')",
        ((code_of(a), PILOT, "family" if a % 2 == 0 else "elderly",
          f"{PILOT}-{a // PER_WORKER:04d}", a % PER_WORKER + 1) for a in range(accounts)))
    conn.executemany(
        "INSERT INTO account (id, pilot_id, kind, owner, limited, debits_posted, debits_pending, "
        "credits_posted, credits_pending) VALUES (?,?,?,?,?,?,?,?,?)",
        account_rows(accounts, totals))
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'transfer' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute("COMMIT")
    log(f"sqlite: {transfers} transfers (INSERT … SELECT from a recursive CTE)")
    t1 = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(SQLITE_TRANSFERS, {"t": transfers, "a": accounts, "funding": FUNDING_ID,
                                    "b0": budget_id(0), "p0": PAYABLE0, "np": PROVIDERS,
                                    "alloc": ALLOC, "commit": COMMIT})
    conn.execute("COMMIT")
    t2 = time.perf_counter()
    log(f"sqlite: transfers in {t2 - t1:.1f} s; recreating {len(indexes)} indexes")
    for _, sql in indexes:
        conn.execute(sql)
    t3 = time.perf_counter()
    sqlite_back_to_wal(conn)
    return {"load_s": round(time.perf_counter() - t0, 1), "transfers_s": round(t2 - t1, 1),
            "indexes_s": round(t3 - t2, 1), "file_mb": round(path.stat().st_size / 2**20)}


# --- PostgreSQL -----------------------------------------------------------------------


def _copy(cur, table: str, cols: str, lines) -> None:
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
        buf = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 20000:
                cp.write("".join(buf))
                buf.clear()
        if buf:
            cp.write("".join(buf))


def _pg_transfer_lines(accounts: int, transfers: int):
    b0 = budget_id(0)
    for i in range(transfers):
        r, a = divmod(i, accounts)
        k = r % 3
        m = r // 3
        period = f"{2018 + m // 12}-{m % 12 + 1:02d}"
        h = f"{i:064x}"
        if k == 0:
            yield (f"t{i:09d}\tallocation\t{FUNDING_ID}\t{b0 + a}\t{ALLOC}\tf\t\\N\t\\N\t"
                   f"{period}\t\\N\t{h}\t2018-01-01 00:00:00+00\n")
        elif k == 1:
            yield (f"t{i:09d}\tcommitment\t{b0 + a}\t{PAYABLE0 + a % PROVIDERS}\t{COMMIT}\tt\t\\N\t"
                   f"\\N\t{period}\t\\N\t{h}\t2018-01-01 00:00:00+00\n")
        else:
            yield (f"t{i:09d}\tpost\t{b0 + a}\t{PAYABLE0 + a % PROVIDERS}\t{COMMIT}\tf\t"
                   f"t{i - accounts:09d}\t\\N\t{period}\t\\N\t{h}\t2018-01-01 00:00:00+00\n")


def load_pg(dbname: str, accounts: int, transfers: int, totals) -> dict[str, Any]:
    import psycopg

    t0 = time.perf_counter()
    migrated_app(pg_sa_url(dbname)).close()
    with psycopg.connect(pg_conninfo(dbname)) as conn:
        cur = conn.cursor()
        cur.execute("SET session_replication_role = replica")  # no FK triggers while loading
        cur.execute("SET maintenance_work_mem = '1GB'")
        workers = (accounts + PER_WORKER - 1) // PER_WORKER
        _copy(cur, "worker", "id, pilot_id, code, name, role",
              (f"{PILOT}-{w:04d}\t{PILOT}\t{w:04d}\tWorker {w}\tworker\n" for w in range(workers)))
        _copy(cur, "client", "code, pilot_id, group_id, worker_id, ordinal, control, enrolled_on",
              (f"{code_of(a)}\t{PILOT}\t{'family' if a % 2 == 0 else 'elderly'}\t"
               f"{PILOT}-{a // PER_WORKER:04d}\t{a % PER_WORKER + 1}\tf\t2017-06-01\n"
               for a in range(accounts)))
        _copy(cur, "account", "id, pilot_id, kind, owner, limited, debits_posted, debits_pending, "
              "credits_posted, credits_pending",
              ("\t".join("t" if v is True else "f" if v is False else str(v) for v in row) + "\n"
               for row in account_rows(accounts, totals)))
        cur.execute("SELECT setval(pg_get_serial_sequence('account', 'id'), max(id)) FROM account")
        idx = cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transfer' "
                          "AND indexname <> 'transfer_pkey'").fetchall()
        for name, _ in idx:
            cur.execute(f"DROP INDEX {name}")
        conn.commit()
        log(f"postgres: {transfers} transfers (COPY)")
        t1 = time.perf_counter()
        _copy(cur, "transfer", "id, kind, debit_account_id, credit_account_id, amount, pending, "
              "pending_id, reverses, period, memo, request_hash, created_at",
              _pg_transfer_lines(accounts, transfers))
        conn.commit()
        t2 = time.perf_counter()
        log(f"postgres: transfers in {t2 - t1:.1f} s; recreating {len(idx)} indexes")
        for _, ddl in idx:
            cur.execute(ddl)
        conn.commit()
        t3 = time.perf_counter()
    with psycopg.connect(pg_conninfo(dbname), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE account")
        conn.execute("VACUUM ANALYZE client")
        conn.execute("ANALYZE transfer")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"load_s": round(time.perf_counter() - t0, 1), "transfers_s": round(t2 - t1, 1),
            "indexes_s": round(t3 - t2, 1), "database_mb": round(size / 2**20)}


# --- checks ---------------------------------------------------------------------------


def check(execute, accounts: int, transfers: int, totals, sample: int = 20) -> dict[str, Any]:
    """``execute(sql, params) -> rows`` with ``?``-style parameters."""
    rounds_alloc = sum((((transfers - a + accounts - 1) // accounts) + 2) // 3
                       for a in range(min(accounts, transfers)))
    by_kind = {k: (int(n), int(s)) for k, n, s in execute(
        "SELECT kind, count(*), sum(amount) FROM transfer GROUP BY kind", ())}
    n_commit = sum(((transfers - a + accounts - 1) // accounts + 1) // 3
                   for a in range(min(accounts, transfers)))
    n_post = transfers - rounds_alloc - n_commit
    want_kinds = {"allocation": (rounds_alloc, ALLOC * rounds_alloc),
                  "commitment": (n_commit, COMMIT * n_commit), "post": (n_post, COMMIT * n_post)}
    want_kinds = {k: v for k, v in want_kinds.items() if v[0]}
    books = execute("SELECT sum(debits_posted), sum(credits_posted), sum(debits_pending), "
                    "sum(credits_pending), count(*) FROM account", ())[0]
    overspent = execute("SELECT count(*) FROM account WHERE limited AND debits_posted + "
                        "debits_pending > credits_posted", ())[0][0]
    rng = random.Random(7)
    ids = [FUNDING_ID, PAYABLE0] + [budget_id(rng.randrange(accounts)) for _ in range(sample)]
    mismatched = []
    for acc in ids[2:]:  # budgets: fold their transfers through the indexes
        dp, dq = execute(
            "SELECT coalesce(sum(CASE WHEN pending OR kind IN ('void', 'release') THEN 0 "
            "ELSE amount END), 0), coalesce(sum(CASE WHEN pending THEN amount WHEN kind IN "
            "('post', 'void', 'release') THEN -amount ELSE 0 END), 0) FROM transfer "
            "WHERE debit_account_id = ?", (acc,))[0]
        cp = execute("SELECT coalesce(sum(amount), 0) FROM transfer WHERE credit_account_id = ?",
                     (acc,))[0][0]
        cached = execute("SELECT debits_posted, debits_pending, credits_posted, credits_pending "
                         "FROM account WHERE id = ?", (acc,))[0]
        if (int(dp), int(dq), int(cp), 0) != tuple(cached) or tuple(cached) != totals[acc]:
            mismatched.append(acc)
    checks = {"transfers_by_kind": by_kind == want_kinds,
              "books_balance": books[0] == books[1] and books[2] == books[3],
              "no_budget_overspent": overspent == 0,
              "sampled_accounts_equal_their_transfers": not mismatched,
              "accounts": books[4] == accounts + PROVIDERS + 1}
    return {"checks": checks, "ok": all(checks.values()), "transfers": sum(
        n for n, _ in by_kind.values()), "by_kind": by_kind, "mismatched": mismatched[:5]}


# --- lookups --------------------------------------------------------------------------


def capture_lookup(app, code: str) -> list[tuple[str, Any]]:
    """The SQL one service lookup sends, including what before_cursor_execute does not
    see: the pool's pre-ping (PostgreSQL)."""
    from sqlalchemy import event

    from avain.core.auth import Actor
    from avain.core.services import statements

    stmts: list[tuple[str, Any]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        stmts.append((statement, parameters))

    dialect = app.engine.dialect
    real_ping = dialect.do_ping
    ping_sql = getattr(dialect, "_dialect_specific_select_one", "SELECT 1")

    def ping(dbapi_conn):
        stmts.append((ping_sql, None))
        return real_ping(dbapi_conn)

    event.listen(app.engine, "before_cursor_execute", before)
    dialect.do_ping = ping
    try:
        app.read(Actor("admin"), statements.balance, code)
    finally:
        event.remove(app.engine, "before_cursor_execute", before)
        dialect.do_ping = real_ping
    return stmts


def _swap(params, old: str, new: str):
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: (new if v == old else v) for k, v in params.items()}
    return tuple(new if v == old else v for v in params)


def measure(engine_name: str, url: str, raw_connect, accounts: int, lookups: int,
            warmup: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import text

    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.services import statements
    from avain.core.services.common import session

    app = App.open(url, create=False)
    actor = Actor("admin")
    rng = random.Random(seed)
    codes = [code_of(rng.randrange(accounts)) for _ in range(lookups + warmup)]
    captured = capture_lookup(app, codes[0])
    template_code = codes[0]
    raw_tx = raw_connect(autocommit=False)
    raw_auto = raw_connect(autocommit=True)
    is_pg = engine_name == "postgres"
    bare_sql = ("SELECT c.pilot_id, a.credits_posted, a.debits_posted, a.debits_pending "
                "FROM client c LEFT JOIN account a ON a.pilot_id = c.pilot_id AND "
                "a.kind = 'budget' AND a.owner = c.code WHERE c.code = ")
    bare_sql += "%s" if is_pg else "?"

    def service(code):
        r = app.read(actor, statements.balance, code)
        assert r["client"] == code

    def replayed(code):
        cur = raw_tx.cursor()
        for stmt, params in captured:
            cur.execute(stmt, _swap(params, template_code, code) or ())
            if cur.description is not None:
                cur.fetchall()
        raw_tx.commit()
        cur.close()

    def bare(code):
        cur = raw_auto.cursor()
        cur.execute(bare_sql, (code,))
        row = cur.fetchone()
        assert row is not None
        cur.close()

    def select1(code):
        app.read(actor, lambda uow: session(uow).execute(text("SELECT 1")).all())

    # a check that the replay reads what the service reads
    got = app.read(actor, statements.balance, codes[1])
    cur = raw_auto.cursor()
    cur.execute(bare_sql, (codes[1],))
    row = cur.fetchone()
    assert (got["credits"], got["posted"], got["reserved"]) == tuple(int(x) for x in row[1:]), (got, row)
    cur.close()

    methods = {"service": service, "service_sql_replayed": replayed, "bare_sql": bare,
               "service_select1": select1}
    names = list(methods)
    for code in codes[:warmup]:
        for name in names:
            methods[name](code)
    samples: dict[str, list[int]] = {n: [] for n in names}
    clock = time.perf_counter_ns
    for i, code in enumerate(codes[warmup:]):
        k = i % len(names)
        for name in names[k:] + names[:k]:  # rotate the order
            f = methods[name]
            t = clock()
            f(code)
            samples[name].append(clock() - t)
    app.close()
    raw_tx.close()
    raw_auto.close()
    stats = {n: latency_summary(v) for n, v in samples.items()}
    kinds = []
    for stmt, _ in captured:
        kinds.append(" ".join(stmt.split())[:80])
    return {"latency": stats, "service_statements": kinds,
            "service_round_trips": len(captured) + 1 + (1 if is_pg else 0),
            "service_overhead_p50_ms": round(stats["service"]["p50_ms"]
                                             - stats["service_sql_replayed"]["p50_ms"], 4),
            "target_p99_ms": 1.0,
            "meets_target": {n: stats[n]["p99_ms"] < 1.0 for n in names}}


def run_sqlite(args, totals, tmp: str) -> dict[str, Any]:
    path = Path(tmp) / "balance.db"
    load = load_sqlite(path, args.accounts, args.transfers, totals)
    log(f"sqlite: loaded {load}")
    conn = sqlite3.connect(str(path))
    verified = check(lambda sql, p: conn.execute(sql, p).fetchall(), args.accounts,
                     args.transfers, totals)
    conn.close()
    log(f"sqlite: check ok {verified['ok']}")

    def raw_connect(autocommit: bool):
        c = sqlite3.connect(str(path), isolation_level=None)
        c.execute("PRAGMA busy_timeout = 30000")
        return c

    # warm the OS cache for the tables a lookup reads
    c = raw_connect(True)
    c.execute("SELECT count(*), sum(credits_posted) FROM account").fetchall()
    c.execute("SELECT count(*) FROM client").fetchall()
    c.close()
    res = measure("sqlite", f"sqlite:///{path}", raw_connect, args.accounts, args.lookups,
                  args.warmup, args.seed)
    res.update(load=load, check=verified)
    return res


def run_pg(args, totals) -> dict[str, Any]:
    import psycopg

    with pg_database("balance", keep=args.keep) as name:
        load = load_pg(name, args.accounts, args.transfers, totals)
        log(f"postgres: loaded {load}")
        with psycopg.connect(pg_conninfo(name)) as conn:
            verified = check(lambda sql, p: conn.execute(sql.replace("?", "%s"), p).fetchall(),
                             args.accounts, args.transfers, totals)
        log(f"postgres: check ok {verified['ok']}")

        def raw_connect(autocommit: bool):
            return psycopg.connect(pg_conninfo(name), autocommit=autocommit)

        with raw_connect(True) as c:
            c.execute("SELECT count(*), sum(credits_posted) FROM account").fetchall()
            c.execute("SELECT count(*) FROM client").fetchall()
        res = measure("postgres", pg_sa_url(name), raw_connect, args.accounts, args.lookups,
                      args.warmup, args.seed)
        res.update(load=load, check=verified)
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="sqlite,postgres")
    ap.add_argument("--accounts", type=int, default=100_000, help="clients with a budget")
    ap.add_argument("--transfers", type=int, default=10_000_000)
    ap.add_argument("--lookups", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default=None, help="folder for the SQLite file (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = ap.parse_args()
    doc: dict[str, Any] = {"benchmark": "balance_latency", "machine": machine(),
                           "args": vars(args), "engines": {}}
    t = time.perf_counter()
    totals = expected_totals(args.accounts, args.transfers)
    log(f"expected totals in {time.perf_counter() - t:.1f} s")
    for engine in args.engines.split(","):
        t0 = time.perf_counter()
        if engine == "sqlite":
            with tempfile.TemporaryDirectory(prefix="bench_balance_", dir=args.dir) as tmp:
                doc["engines"]["sqlite"] = run_sqlite(args, totals, tmp)
        elif engine == "postgres":
            doc["engines"]["postgres"] = run_pg(args, totals)
        else:
            ap.error(f"--engines: unknown {engine!r}")
        doc["engines"][engine]["wall_s"] = round(time.perf_counter() - t0, 1)
        lat = doc["engines"][engine]["latency"]
        log(f"{engine}: " + ", ".join(f"{k} p50 {v['p50_ms']} p99 {v['p99_ms']} ms"
                                      for k, v in lat.items()))
    emit(doc)


if __name__ == "__main__":
    main()
