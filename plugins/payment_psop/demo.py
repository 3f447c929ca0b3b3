"""PSOP on a local simulator, for ``avain demo`` and training.

:func:`simulation` starts the simulator on a free port (storage in a work folder) and
yields a :class:`~avain.core.domain.RailSimulation`: the settings that point a pilot at it,
and a month played as providers play it — service events recorded on the clients'
vouchers day by day (now and then one PSOP refuses: beyond the remaining value, or by a
provider not approved for the service), PSOP's daily batch booking them by the next day —
then finance's import of the booked events and the reconciliation.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from avain.core.app import App
from avain.core.auth import Actor
from avain.core.domain import Period, Pilot, RailSimulation

from . import backend
from .simulator import Simulator


@contextmanager
def simulation(workdir: str | Path, period: Period) -> Iterator[RailSimulation]:
    """The simulator, serving until the block ends."""
    sim = Simulator.start(0, str(Path(workdir) / "psop-simulator.db"), today=period.first_day)
    try:
        def play(app: App, pilot: Pilot, period: Period, *, clients: list[str], providers: list[str],
                 finance: Actor, rng: random.Random) -> dict[str, Any]:
            return play_month(app, pilot, period, clients=clients, providers=providers, finance=finance, rng=rng)

        yield RailSimulation(settings={backend.SECTION: {"url": sim.url}}, play_month=play)
    finally:
        sim.stop()


def _reason_kind(reason: str) -> str:
    for kind in ("beyond the remaining value", "not approved", "not on the voucher", "outside the voucher's validity"):
        if kind in reason:
            return kind
    return reason


def play_month(app: App, pilot: Pilot, period: Period, *, clients: list[str], providers: list[str],
               finance: Actor, rng: random.Random) -> dict[str, Any]:
    """Providers record service events on the vouchers of ``clients``; the daily batch books
    each day's events the next day; finance imports the month and reconciles."""
    client = backend.Settings.of(pilot).client()
    price = backend.own_price(pilot, period.first_day)
    events: list[dict[str, Any]] = []
    for code in clients:
        voucher_id = f"{backend.voucher_prefix(pilot, period)}{code}"
        lines = client.voucher(voucher_id)["lines"]
        for n in range(rng.randint(2, 6)):
            line = rng.choice(lines)
            approved = [p["provider"] for p in line.get("providers", ())]
            # Now and then a provider records a service it is not approved for.
            provider = rng.choice(providers if not approved or rng.random() < 0.05 else approved)
            unit_price = (price(line["service"]) if price else None) or 3000
            day = period.first_day + dt.timedelta(days=rng.randint(0, period.last_day.day - 1))
            events.append({"event_id": f"demo-{voucher_id}-{n + 1}", "voucher_id": voucher_id, "provider": provider,
                           "date": day.isoformat(), "service": line["service"], "units": rng.randint(1, 4),
                           "unit_price": unit_price * rng.randint(90, 110) // 100, "recorded_on": day.isoformat()})
    recorded = 0
    refused: Counter[str] = Counter()
    day = period.first_day
    for event in sorted(events, key=lambda e: e["date"]):
        while day.isoformat() < event["date"]:  # PSOP's night run books the day before
            day += dt.timedelta(days=1)
            client.run_batch(day)
        answer = client.record_event(event)
        if answer["status"] == "refused":
            refused[_reason_kind(answer["reason"])] += 1
        else:
            recorded += 1
    while day <= period.last_day:  # the month's last nights
        day += dt.timedelta(days=1)
        client.run_batch(day)
    imported = backend.import_from_service(app, finance, pilot, period)
    differences = backend.reconcile(app, pilot, period, actor=finance)
    return {"rail": backend.NAME, "events": recorded, "refused": dict(sorted(refused.items())),
            "imported": {"posted": imported["posted"], "unchanged": imported["unchanged"],
                         "rejected": imported["rejected_count"]},
            "differences": differences}
