"""``avain psop …``: import service events, reconcile, run the simulator."""

from __future__ import annotations

import datetime as dt
import re
import signal
from types import MappingProxyType

import attrs
import click

from avain.core.cli.output import emit, emit_reconciliation, json_option, notice, progress_bar
from avain.core.cli.params import DATE, PERIOD
from avain.core.cli.state import state
from avain.core.domain import Money, Period, Pilot
from avain.core.errors import ValidationError
from avain.core.services import pilots

from . import backend, posting
from .client import PsopClient
from .simulator import Simulator


@click.group("psop")
def psop() -> None:
    """PSOP balance vouchers (saldoseteli): service events, reconciliation, a local simulator."""


def _pilot(pilot_id: str | None) -> Pilot:
    """The named pilot, which must pay through PSOP; without a name, the only such pilot."""
    st = state()
    if pilot_id:
        pilot = st.run(pilots.get, pilot_id)
        used = pilot.raw.get("payment", {}).get("backend")
        if used != backend.NAME:
            raise ValidationError(f"--pilot: {pilot.id} pays through {used or 'commitments and invoices'}, "
                                  f"not {backend.NAME}")
        return pilot
    found = [p for p in (st.run(pilots.get, row["id"]) for row in st.run(pilots.list_pilots))
             if p.raw.get("payment", {}).get("backend") == backend.NAME]
    if len(found) != 1:
        names = ", ".join(p.id for p in found) or "none"
        raise ValidationError(f"--pilot: name the pilot (pilots paying through {backend.NAME}: {names})")
    return found[0]


URL_OPTION = click.option("--url", metavar="URL",
                          help="PSOP's address (default: the pilot's [plugins.payment_psop] url).")


def _with_url(pilot: Pilot, url: str | None) -> Pilot:
    """The pilot as the backend sees it, pointed at ``url`` when one is given."""
    if not url:
        return pilot
    if not re.fullmatch(backend.CONFIG_SCHEMA["properties"]["url"]["pattern"], url):
        raise ValidationError(f"--url: {url!r} is not an http(s) address like {backend.DEFAULT_URL}")
    sections = {**pilot.sections, backend.SECTION: {**(pilot.sections.get(backend.SECTION) or {}), "url": url}}
    return attrs.evolve(pilot, sections=MappingProxyType(sections))


@psop.command("import")
@click.argument("path", metavar="FILE", required=False, type=click.Path(dir_okay=False))
@click.option("--pilot", "pilot_id", help="Pilot (default: the one pilot whose payment backend is psop).")
@click.option("--period", type=PERIOD,
              help="Month. Without FILE: fetch its booked events from PSOP (default this month); "
                   "with FILE: only that month's rows.")
@click.option("--chunk", default=posting.DEFAULT_CHUNK, show_default=True, type=click.IntRange(1, 50_000),
              help="Events per transaction.")
@URL_OPTION
@json_option
def import_(path, pilot_id, period, chunk, url, as_json):
    """Post PSOP's booked service events as charges: from FILE (JSON lines or CSV) or from
    the service. Idempotent by event id; bad rows are named and the good ones posted."""
    st = state()
    pilot = _with_url(_pilot(pilot_id), url)
    with progress_bar("importing PSOP events") as progress:
        if path:
            data = backend.import_file(st.app(), st.actor, pilot, path, period=period, chunk=chunk,
                                       progress=progress)
        else:
            data = backend.import_from_service(st.app(), st.actor, pilot, period or Period.of(dt.date.today()),
                                               chunk=chunk, progress=progress)

    def render(c, d):
        skipped = d["skipped"]
        c.print(f"{d['source']}: {d['posted']} posted ({d['amount_fi']}), {d['unchanged']} unchanged, "
                f"{d['rejected_count']} rejected; skipped {skipped['recorded']} not yet booked, "
                f"{skipped['refused']} refused by PSOP, {skipped['other_month']} of other months")
        for r in d["rejected"]:
            c.print(f"  {d['source']}: {r['where']}: {r['reason']}", markup=False, highlight=False, soft_wrap=True)
        if d["rejected_count"] > len(d["rejected"]):
            c.print(f"  (+{d['rejected_count'] - len(d['rejected'])} more rejected rows)")

    emit(data, as_json, render)
    if data["rejected_count"]:
        click.get_current_context().exit(1)


@psop.command("reconcile")
@click.option("--pilot", "pilot_id", required=True)
@click.option("--period", type=PERIOD, required=True)
@URL_OPTION
@json_option
def reconcile(pilot_id, period, url, as_json):
    """Differences between PSOP's booked events and the ledger's charges; exit 1 when any."""
    st = state()
    pilot = _with_url(_pilot(pilot_id), url)
    diffs = backend.reconcile(st.app(), pilot, period, actor=st.actor)
    emit_reconciliation("PSOP", pilot.id, period, diffs, ["event", "client", "PSOP", "ledger", "difference"],
                        ["event", "client", "psop", "ledger", "difference"], as_json, money=["psop", "ledger"])


@psop.group("simulator")
def simulator() -> None:
    """A local stand-in for PSOP, over HTTP on 127.0.0.1, for trials and tests."""


@simulator.command("serve")
@click.option("--port", default=8766, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--data", "data", type=click.Path(dir_okay=False),
              help="SQLite file for vouchers and events (default: in memory, gone when it stops).")
@click.option("--today", type=DATE, help="The simulator's date (default: the real one).")
@click.option("--verbose", is_flag=True, help="Log every request on stderr.")
def serve(port, data, today, verbose):
    """Serve the PSOP API until interrupted (Ctrl-C)."""
    sim = Simulator(port, data or ":memory:", today=today, verbose=verbose)
    notice(f"PSOP simulator on {sim.url} (storage: {data or 'in memory'}); Ctrl-C stops it")

    def stop(_signum, _frame):  # a TERM stops it as cleanly as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


@simulator.command("batch")
@click.option("--url", default=backend.DEFAULT_URL, show_default=True, help="The simulator's address.")
@click.option("--date", "day", type=DATE, help="The batch's day: events recorded before it are booked.")
@json_option
def batch(url, day, as_json):
    """Run PSOP's daily batch: book the events recorded before the day into the balances."""
    data = PsopClient(url).run_batch(day)
    emit(data, as_json, lambda c, d: c.print(f"batch of {d['date']}: {d['booked']} events booked "
                                             f"({Money(d['amount'] or 0).fi()})"))
