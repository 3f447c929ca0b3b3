"""``avain eval report`` for N clients with three measurement points each, on SQLite:
seconds and peak memory, against a baseline measured in the same run.

For each size a fresh, migrated SQLite file gets the fixture bulk-loaded with plain SQL
(executemany): the example pilot (``avain init``), one personal worker per 1 000 clients,
N clients (half HB, half controls, in the pilot's two groups) with consent to the
evaluation, each with Osallisuustesti answered at the start, an interim point and the
end (scores computed by the instrument's own scoring, four scales each), and one
time-log entry each. Then, each in a fresh process:

* **report**: what ``avain eval report --pilot example --out DIR`` does — the figures
  (``figures.compute``) and the HTML, JSON and charts (``report.write``);
* **baseline**: one plain SQL scan that any report must at least do: every score row
  summed per instrument and scale (``sqlite3``, no avain code).

Each reports wall seconds and the process's peak RSS; the ratio report / baseline shows
what avain adds to reading the data once. Memory is flat when the peak RSS at 100 000
clients is close to the one at 10 000.

    python bench/eval_report.py                       # 10000 and 100000 clients
    python bench/eval_report.py --clients 2000        # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
    SQLITE_DT,
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
POINTS = (("start", "2018-01-10", 0.0), ("interim", "2018-08-01", 0.5), ("end", "2018-12-14", 1.0))


def build(path: Path, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    app = migrated_app(f"sqlite:///{path}")
    from avain.core.services.evaluation import registry_of

    inst = registry_of(app.pm)["osallisuustesti"]
    app.close()
    conn = sqlite_fast_load(path)
    rng = random.Random(n)
    stamp = dt.datetime(2018, 1, 1, 12, 0).strftime(SQLITE_DT)
    workers = (n + PER_WORKER - 1) // PER_WORKER
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO worker (id, pilot_id, code, name, role, supervisor_id) VALUES (?,?,?,?,?,NULL)",
                     ((f"{PILOT}-{w:04d}", PILOT, f"{w:04d}", f"Worker {w}", "worker") for w in range(workers)))

    def clients():
        for i in range(n):
            w, o = divmod(i, PER_WORKER)
            group, g = ("family", "F") if i % 2 == 0 else ("elderly", "E")
            yield f"EX-{g}-{w:04d}-{o + 1:03d}", group, f"{PILOT}-{w:04d}", o + 1, (i // 2) % 2

    rows = list(clients())
    conn.executemany("INSERT INTO client (code, pilot_id, group_id, worker_id, assistant_id, ordinal, control, "
                     "enrolled_on, ended_on) VALUES (?,?,?,?,NULL,?,?,'2018-01-01',NULL)",
                     ((code, PILOT, group, wid, o, control) for code, group, wid, o, control in rows))
    conn.executemany("INSERT INTO consent (client_code, purpose, given_on, withdrawn_on, recorded_by, recorded_at) "
                     "VALUES (?, 'evaluation', '2018-01-01', NULL, 'admin', ?)", ((r[0], stamp) for r in rows))
    response_id = 0
    responses, scores = [], []
    for code, _group, _wid, _o, control in rows:
        level = rng.uniform(1.5, 3.5)
        gain = rng.gauss(0.3 if control else 0.8, 0.4)
        for point, day, share in POINTS:
            answers = {f"item_{k:02d}": max(1, min(5, round(rng.gauss(level + gain * share, 0.7))))
                       for k in range(1, 15)}
            response_id += 1
            responses.append((response_id, code, PILOT, inst.name, inst.version, point, day,
                              json.dumps(answers, sort_keys=True), "bench", "admin", stamp))
            scores += [(response_id, scale, code, inst.name, point, value)
                       for scale, value in inst.score(answers).items()]
        if len(responses) >= 30000:
            _flush(conn, responses, scores)
    _flush(conn, responses, scores)
    conn.executemany("INSERT INTO time_log (client_code, pilot_id, who, person, activity, on_date, minutes, cost, "
                     "recorded_at) VALUES (?, ?, 'worker', ?, 'planning', '2018-01-15', ?, 0, ?)",
                     ((r[0], PILOT, f"worker:{r[2]}", rng.randint(30, 120), stamp) for r in rows))
    conn.execute("COMMIT")
    sqlite_back_to_wal(conn)
    return {"clients": n, "responses": response_id, "load_s": round(time.perf_counter() - t0, 2),
            "file_mb": round(path.stat().st_size / 2**20, 1)}


def _flush(conn: sqlite3.Connection, responses: list, scores: list) -> None:
    conn.executemany("INSERT INTO survey_response (id, client_code, pilot_id, instrument, version, point, "
                     "answered_on, answers, source, recorded_by, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     responses)
    conn.executemany("INSERT INTO survey_score (response_id, scale, client_code, instrument, point, value) "
                     "VALUES (?,?,?,?,?,?)", scores)
    responses.clear()
    scores.clear()


def run_report(path: Path, out: Path) -> dict[str, Any]:
    """In a fresh process: the figures and the written report, as the command does it."""
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.plugins.evaluation import figures, report

    app = App.open(f"sqlite:///{path}", create=False)
    rss_before = current_rss_mb()
    t0 = time.perf_counter()
    data = app.read(Actor("admin"), figures.compute, [PILOT])
    t1 = time.perf_counter()
    done = report.write(data, out)
    seconds = time.perf_counter() - t0
    app.close()
    change = next(o for o in data["pilots"][0]["outcomes"]
                  if o["instrument"] == "osallisuustesti" and o["scale"] == "participation" and o["group"] == "*")
    return {"seconds": round(seconds, 3), "figures_s": round(t1 - t0, 3), "write_s": round(seconds - (t1 - t0), 3),
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb(), "charts": done["charts"],
            "participation_change": {"hb": change["hb"]["change"], "control": change["control"]["change"]}}


def run_baseline(path: Path) -> dict[str, Any]:
    """In a fresh process: one plain scan of every score, summed per instrument and scale."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(str(path))
    rows = conn.execute("SELECT instrument, scale, count(*), sum(value), sum(value * value) FROM survey_score "
                        "GROUP BY instrument, scale").fetchall()
    conn.close()
    return {"seconds": round(time.perf_counter() - t0, 3), "peak_rss_mb": peak_rss_mb(),
            "score_rows": sum(r[2] for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="10000,100000", help="comma-separated sizes (default 10000,100000)")
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    ap.add_argument("--_build", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--_report", nargs=2, metavar=("PATH", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--_baseline", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._build:
        emit(build(Path(args._build[0]), int(args._build[1])))
        return
    if args._report:
        emit(run_report(Path(args._report[0]), Path(args._report[1])))
        return
    if args._baseline:
        emit(run_baseline(Path(args._baseline)))
        return

    sizes = [int(x) for x in args.clients.split(",")]
    doc: dict[str, Any] = {"benchmark": "eval_report", "machine": machine(),
                           "targets": {"100k_seconds": 30, "memory": "flat in the number of clients"}, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench_eval_report_", dir=args.dir) as tmp:
        for n in sizes:
            path = Path(tmp) / f"eval_{n}.db"
            log(f"{n} clients: building {path}")
            fixture = run_child([__file__, "--_build", str(path), str(n)], timeout=args.timeout)
            log(f"  loaded in {fixture['load_s']} s ({fixture['responses']} responses); baseline …")
            baseline = run_child([__file__, "--_baseline", str(path)], timeout=args.timeout)
            log(f"  baseline {baseline['seconds']} s; report …")
            result = run_child([__file__, "--_report", str(path), str(Path(tmp) / f"report_{n}")],
                               timeout=args.timeout)
            log(f"  report {result['seconds']} s, peak RSS {result['peak_rss_mb']} MB")
            doc["sizes"][str(n)] = {
                "clients": n, "measurement_points": len(POINTS), "fixture": fixture, "report": result,
                "baseline": baseline, "ratio_report_to_baseline": round(result["seconds"] / baseline["seconds"], 2),
                "meets_target": result["seconds"] < 30 if n >= 100_000 else None}
    if len(sizes) > 1:
        small, large = str(min(sizes)), str(max(sizes))
        doc["memory_growth_mb"] = round(doc["sizes"][large]["report"]["peak_rss_mb"]
                                        - doc["sizes"][small]["report"]["peak_rss_mb"], 1)
        doc["seconds_ratio"] = round(doc["sizes"][large]["report"]["seconds"]
                                     / doc["sizes"][small]["report"]["seconds"], 2)
    emit(doc)


if __name__ == "__main__":
    main()
