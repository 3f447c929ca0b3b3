"""The ePassi rail on a local simulator, for ``avain demo`` and training.

:func:`simulation` starts the simulator on a free port with its file in a work folder and
yields a :class:`~avain.core.domain.RailSimulation`: the settings that point a pilot at it,
and a month played as providers would play it — charges by phone number after an
identity check (now and then forgotten), some refused for want of money, a same-day
cancellation now and then — then finance's import of the month's report and the
reconciliation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from avain.core.app import App
from avain.core.auth import Actor
from avain.core.domain import Money, Period, Pilot, RailSimulation
from avain.core.errors import Refused

from . import backend, settings
from .simulator import Simulator
from .wallets import HELSINKI

#: What providers charge for one visit, in cents: a cleaning, a meal service, an escort…
PRICES = (1800, 2500, 3500, 4200, 5500, 7000, 9500)


@contextmanager
def simulation(workdir: str | Path, period: Period) -> Iterator[RailSimulation]:
    """The simulator, serving until the block ends. Its clock stands on the day being played."""
    day = [period.first_day]
    tick = itertools.count()  # each request a second later, from 8 o'clock on the day played
    sim = Simulator(Path(workdir) / "epassi-simulator.db",
                    clock=lambda: dt.datetime.combine(day[0], dt.time(8, 0), tzinfo=HELSINKI)
                    + dt.timedelta(seconds=next(tick) % 36000))
    sim.start()
    try:
        def play(app: App, pilot: Pilot, period: Period, *, clients: list[str], providers: list[str],
                 finance: Actor, rng: random.Random) -> dict[str, Any]:
            return play_month(app, pilot, period, sim_day=day, clients=clients, providers=providers,
                              finance=finance, rng=rng)

        yield RailSimulation(settings={settings.NAME: {"url": sim.url}}, play_month=play)
    finally:
        sim.stop()


def play_month(app: App, pilot: Pilot, period: Period, *, sim_day: list[dt.date], clients: list[str],
               providers: list[str], finance: Actor, rng: random.Random) -> dict[str, Any]:
    """Providers charge the wallets of ``clients`` through the month; finance imports the
    report and reconciles. The phone numbers come from the wallets, as a provider reads
    them off the client: nothing in avain is read for them."""
    _, client = backend.connect(pilot)
    phones = {w["client_ref"]: w["phone"] for w in client.wallets() if w.get("period") == str(period)}
    charges: list[tuple[dt.date, str]] = []
    for code in clients:
        if code in phones:
            charges += [(period.first_day + dt.timedelta(days=rng.randint(0, period.last_day.day - 1)), code)
                        for _ in range(rng.randint(2, 6))]
    refused: Counter[str] = Counter()
    made = cancelled = 0
    for day, code in sorted(charges):
        sim_day[0] = day
        try:
            tx = backend.charge(pilot, phone=phones[code], provider=rng.choice(providers),
                                amount=Money(rng.choice(PRICES)), identity_checked=rng.random() > 0.05)
        except Refused as exc:
            refused[exc.reasons[0] if exc.reasons else str(exc)] += 1
            continue
        made += 1
        if rng.random() < 0.08:  # the provider charged by mistake and cancels the same day
            backend.cancel(pilot, tx["id"])
            cancelled += 1
    sim_day[0] = period.last_day
    imported = backend.import_period(app, finance, pilot, period)
    differences = backend.reconcile(app, pilot, period, actor=finance)
    return {"rail": settings.BACKEND, "charges": made, "cancelled": cancelled, "refused": dict(sorted(refused.items())),
            "imported": {k: imported[k] for k in ("charges", "cancellations", "replayed")},
            "differences": differences}

