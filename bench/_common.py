"""Shared setup for the benchmarks in this folder (scripts, not tests).

Every benchmark prints ONE JSON document to stdout; progress goes to stderr. Databases
are made fresh for each run: SQLite files in a temporary folder, PostgreSQL databases
named ``bench_<something>_<pid>`` on the server of ``BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped at the end.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_ENV = "BENCH_PG_URL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"

PILOT = "example"


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def emit(doc: dict[str, Any]) -> None:
    """The one JSON document a benchmark prints."""
    json.dump(doc, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def machine() -> dict[str, Any]:
    import sqlalchemy

    info = {"python": platform.python_version(), "cpus": os.cpu_count(),
            "sqlalchemy": sqlalchemy.__version__, "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}
    try:
        import psycopg

        info["psycopg"] = psycopg.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")  # pragma: no cover


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency_summary(ns: Sequence[int]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of durations in nanoseconds."""
    s = sorted(ns)
    ms = 1e6
    return {"n": len(s), "p50_ms": round(percentile(s, 50) / ms, 4),
            "p90_ms": round(percentile(s, 90) / ms, 4),
            "p99_ms": round(percentile(s, 99) / ms, 4),
            "max_ms": round(s[-1] / ms, 4) if s else float("nan"),
            "mean_ms": round(sum(s) / len(s) / ms, 4) if s else float("nan")}


# --- PostgreSQL ---------------------------------------------------------------------


def pg_base_url() -> str:
    return os.environ.get(PG_ENV, PG_DEFAULT)


def pg_conninfo(dbname: str) -> str:
    """A libpq URL for psycopg (no SQLAlchemy driver suffix)."""
    from sqlalchemy.engine import make_url

    u = make_url(pg_base_url()).set(database=dbname)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_sa_url(dbname: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(pg_base_url()).set(database=dbname, drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def pg_admin_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def pg_create(name: str) -> None:
    assert name.startswith("bench_"), name
    pg_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_admin_exec(f'CREATE DATABASE "{name}"')


def pg_drop(name: str) -> None:
    assert name.startswith("bench_"), name
    pg_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_database(prefix: str, *, keep: bool = False):
    """A fresh PostgreSQL database ``bench_<prefix>_<pid>``, dropped afterwards."""
    name = f"bench_{prefix}_{os.getpid()}"
    pg_create(name)
    try:
        yield name
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            pg_drop(name)


def pg_settings(conninfo: str, names: Sequence[str]) -> dict[str, str]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def find_pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


# --- avain --------------------------------------------------------------------------


def migrated_app(url: str):
    """An App on a fresh database at ``url``: migrated to head, the plugins' pilots loaded
    (what ``avain init`` does)."""
    from avain.core import db as dbmod
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.plugins import make_plugin_manager
    from avain.core.services import pilots

    engine = dbmod.make_engine(url)
    dbmod.upgrade(engine)
    app = App(engine, make_plugin_manager())
    app.run(Actor("admin"), pilots.sync_plugin_pilots)
    return app


def sqlite_fast_load(path: str | Path) -> sqlite3.Connection:
    """A raw sqlite3 connection for bulk loading a fresh file: no journal, no fsync. The
    caller commits and then calls :func:`sqlite_back_to_wal`."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def sqlite_back_to_wal(conn: sqlite3.Connection) -> None:
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


SQLITE_DT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


def run_child(argv: Sequence[str], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python argv…`` in a fresh process; its stdout is one JSON document."""
    cmd = [sys.executable, *argv]
    log("child:", " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {' '.join(cmd)}")
    doc = json.loads(proc.stdout)
    doc.setdefault("wall_s", round(time.perf_counter() - t0, 2))
    return doc
