"""Start-up time of the ``avain`` command line, in fresh processes.

Three commands are timed, each as the wall time of a whole process (interpreter start,
imports, plugin discovery, the command's work, exit):

- ``avain --version``: what every command pays before it looks at its arguments;
- ``avain pilot list --json`` and ``avain client list --json``: read commands on the
  database ``avain demo`` makes (all pilots, 5 clients and 5 controls per client group).

The baseline, measured in the same run and interleaved with the commands, is
``python -c "import click"``: the interpreter and the CLI library alone, which no change to
avain can make faster. Each ratio is a command's median over the baseline's median.

    python bench/cli_start.py                   # 7 runs of each, demo database made here
    python bench/cli_start.py --runs 3 --db avain.db   # an existing database instead

``--compare DIR`` also times another avain in the same run, interleaved: DIR holds
``avain/core`` and ``avain/plugins`` of that version (for example links into a checkout of
an older commit), put first on ``PYTHONPATH``; bench/README.md shows how.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, log  # noqa: E402

BASELINE = "python -c 'import click'"
COMMANDS = {
    "avain --version": ["--version"],
    "avain pilot list --json": ["pilot", "list", "--json"],
    "avain client list --json": ["client", "list", "--json"],
}


def avain_argv() -> list[str]:
    """The ``avain`` console script of this interpreter's environment, else the same entry
    point through ``-c``."""
    script = Path(sys.executable).with_name("avain")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from avain.core.cli import main; sys.argv[0] = 'avain'; main()"]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def make_demo(folder: Path, env: dict[str, str]) -> Path:
    db = folder / "avain.db"
    log("making the demo database (avain demo, ~40 s)")
    t0 = time.perf_counter()
    subprocess.run([*avain_argv(), "--db", str(db), "demo"], env=env, cwd=folder, check=True,
                   stdout=subprocess.DEVNULL)
    log(f"demo database ready in {time.perf_counter() - t0:.1f} s")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (the median is reported)")
    parser.add_argument("--db", type=Path, help="an existing database to read (default: a new demo database)")
    parser.add_argument("--dir", type=Path, help="folder for the demo database (default: a temporary one)")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="also time the avain under DIR/avain (first on PYTHONPATH), interleaved")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("AVAIN_")}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        db = args.db.resolve() if args.db else make_demo(folder, env)
        env["AVAIN_DB"] = str(db)
        avain = avain_argv()
        envs = {"": env}
        if args.compare:
            envs["compared: "] = {**env, "PYTHONPATH": os.pathsep.join(
                [str(args.compare.resolve()), *filter(None, [env.get("PYTHONPATH")])])}
        runs: dict[str, list[float]] = {BASELINE: []}
        for prefix, run_env in envs.items():
            for name, extra in COMMANDS.items():  # warm the page cache and the .pyc files once
                runs[prefix + name] = []
                timed([*avain, *extra], run_env, folder)
        for i in range(args.runs):
            runs[BASELINE].append(timed([sys.executable, "-c", "import click"], env, folder))
            for prefix, run_env in envs.items():
                for name, extra in COMMANDS.items():
                    runs[prefix + name].append(timed([*avain, *extra], run_env, folder))
            log(f"run {i + 1}/{args.runs}: " + ", ".join(f"{n} {v[-1]:.3f} s" for n, v in runs.items()))

    baseline = statistics.median(runs[BASELINE])
    doc = {
        "benchmark": "cli_start",
        "runs": args.runs,
        "database": str(args.db) if args.db else "avain demo (all pilots, 5 clients per group)",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "baseline": {"command": BASELINE, "median_s": round(baseline, 4),
                     "min_s": round(min(runs[BASELINE]), 4)},
        "commands": {
            name: {"median_s": round(statistics.median(values), 4), "min_s": round(min(values), 4),
                   "max_s": round(max(values), 4),
                   "ratio_to_baseline": round(statistics.median(values) / baseline, 2)}
            for name, values in runs.items() if name != BASELINE
        },
    }
    if args.compare:
        doc["compared"] = str(args.compare)
    emit(doc)


if __name__ == "__main__":
    main()
