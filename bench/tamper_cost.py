"""What tamper evidence costs: purchases through the services on SQLite, with the keyed
chains and a signed, fsync'd checkpoint after every commit, against the same purchases with
the checkpoints left out (the file write replaced by nothing), to see their share.

Each purchase is two units of work: the client's proposal (an audit event) and the
worker's approval (a pending ledger transfer, audit events, a commitment). Prints one
JSON document: seconds per purchase with the checkpoints and without them (the baseline,
measured in the same run), their ratio, and the checkpoint file's size.

    python bench/tamper_cost.py --purchases 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("AVAIN_INTEGRITY_KEY", "dGVzdC1vbmx5LWF2YWluLWludGVncml0eS1rZXktMzI")
os.environ.setdefault("AVAIN_MESSAGE_KEY", "dGVzdC1vbmx5LWF2YWluLW1lc3NhZ2Uta2V5LTMyYnk")

from _common import emit, log, machine  # noqa: E402


def _run(purchases: int, with_checkpoints: bool) -> dict:
    """``purchases`` purchases on a new SQLite database; the checkpoints written after each
    commit, or (the baseline) left out."""
    from helpers import approve, month_ready, propose  # the tests' own scenario helpers

    from avain.core import checkpoints
    from avain.core import db as dbmod
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.plugins import make_plugin_manager
    from avain.core.services import pilots

    real = checkpoints.after_commit
    if not with_checkpoints:
        checkpoints.after_commit = lambda app, touched: None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tamper-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'avain.db'}"
            engine = dbmod.make_engine(url)
            dbmod.upgrade(engine)
            app = App(engine, make_plugin_manager())
            app.run(Actor("admin"), pilots.sync_plugin_pilots)
            team, codes = month_ready(app, clients=4)
            start = time.perf_counter()
            for i in range(purchases):
                code = codes[i % len(codes)]
                approve(app, team, propose(app, code, 100 + i % 50, day=dt.date(2018, 1, 15)))
            elapsed = time.perf_counter() - start
            cp = Path(tmp) / "avain.db.checkpoints"
            size = cp.stat().st_size if cp.exists() else 0
            app.close()
    finally:
        checkpoints.after_commit = real
    return {"seconds": round(elapsed, 3), "ms_per_purchase": round(elapsed / purchases * 1000, 3),
            "checkpoint_file_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=300)
    args = parser.parse_args()
    log("baseline: keyed chains, no checkpoint file")
    baseline = _run(args.purchases, with_checkpoints=False)
    log("with a signed, fsync'd checkpoint after every commit")
    measured = _run(args.purchases, with_checkpoints=True)
    emit({"benchmark": "tamper_cost", "machine": machine(), "purchases": args.purchases,
          "baseline_no_checkpoints": baseline, "with_checkpoints": measured,
          "ratio_with_to_without": round(measured["seconds"] / baseline["seconds"], 3),
          "checkpoint_bytes_per_purchase": round(measured["checkpoint_file_bytes"] / args.purchases)})


if __name__ == "__main__":
    main()
