"""What tamper evidence costs: purchases through the services on SQLite, with the keyed
chains and a signed, fsync'd checkpoint after every commit, and with the checkpoints
left out (``--no-checkpoints``: the file write replaced by nothing, to see its share).

Each purchase is two units of work: the client's proposal (an audit event) and the
worker's approval (a pending ledger transfer, audit events, a commitment). Prints one
JSON document: seconds per purchase, and the checkpoint file's size.

    python bench/tamper_cost.py --purchases 300
    python bench/tamper_cost.py --purchases 300 --no-checkpoints
    PYTHONPATH=<older checkout laid out as avain/…> python bench/tamper_cost.py   # before
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--no-checkpoints", action="store_true")
    args = parser.parse_args()

    from helpers import approve, month_ready, propose  # the tests' own scenario helpers

    from avain.core import db as dbmod
    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.plugins import make_plugin_manager
    from avain.core.services import pilots

    try:
        from avain.core import checkpoints
    except ImportError:  # a checkout from before checkpoints
        checkpoints = None
    if args.no_checkpoints and checkpoints is not None:
        checkpoints.after_commit = lambda app, touched: None

    with tempfile.TemporaryDirectory(prefix="bench-tamper-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'avain.db'}"
        engine = dbmod.make_engine(url)
        dbmod.upgrade(engine)
        app = App(engine, make_plugin_manager())
        app.run(Actor("admin"), pilots.sync_plugin_pilots)
        team, codes = month_ready(app, clients=4)
        log("set up; purchasing")
        start = time.perf_counter()
        for i in range(args.purchases):
            code = codes[i % len(codes)]
            approve(app, team, propose(app, code, 100 + i % 50, day=dt.date(2018, 1, 15)))
        elapsed = time.perf_counter() - start
        cp = Path(tmp) / "avain.db.checkpoints"
        emit({"benchmark": "tamper_cost", "machine": machine(), "purchases": args.purchases,
              "checkpoints": checkpoints is not None and not args.no_checkpoints,
              "keyed_chains": checkpoints is not None,
              "seconds": round(elapsed, 3), "ms_per_purchase": round(elapsed / args.purchases * 1000, 3),
              "checkpoint_file_bytes": cp.stat().st_size if cp.exists() else 0})
        app.close()


if __name__ == "__main__":
    main()
