"""``avain epassi …``: the simulator, importing transactions, reconciling, and a provider's
charge and cancellation for demos and operators."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import threading

import click
from rich.markup import escape

from avain.core.cli.output import emit, emit_reconciliation, json_option, notice, progress_bar
from avain.core.cli.params import DATE, MONEY, PERIOD
from avain.core.cli.state import state
from avain.core.domain import Money
from avain.core.errors import ConfigError, Conflict
from avain.core.services import people, pilots, providers

from . import backend
from .simulator import Simulator
from .wallets import HELSINKI


@click.group("epassi")
def epassi() -> None:
    """The ePassi e-wallet: import its transactions, reconcile them with the ledger."""


@epassi.group("simulator")
def simulator() -> None:
    """A local ePassi service for tests, demos and training."""


@simulator.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--data", type=click.Path(dir_okay=False), default="epassi-simulator.db", show_default=True,
              help="The simulator's own SQLite file (created when missing).")
@click.option("--today", type=DATE, help="The service's date (e.g. 2018-01-15, to play a pilot month); "
                                         "default: today.")
def serve(port, data, today):
    """Serve the simulator until Ctrl-C (or SIGTERM)."""
    sim = Simulator(data, port=port)
    if today is not None:
        sim.clock = lambda: dt.datetime.combine(today, dt.datetime.now(HELSINKI).timetz())
    # A supervisor (or `kill`) stops it with SIGTERM: as cleanly as Ctrl-C.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        sim.serve_forever(ready=lambda url: notice(f"ePassi simulator on {url} (data {data}); Ctrl-C stops it"))
    except KeyboardInterrupt:
        pass
    except sqlite3.Error as exc:
        raise ConfigError(f"--data: {data} cannot be used: {exc}") from exc
    except OSError as exc:
        raise Conflict(f"--port: {port} cannot be used: {exc.strerror or exc}") from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    notice("ePassi simulator stopped")


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _pilot(pilot_id: str):
    return state().read(pilots.get, pilot_id)


@epassi.command("import")
@click.argument("path", metavar="FILE", required=False, type=click.Path(dir_okay=False))
@click.option("--pilot", "pilot_id", required=True, help="Pilot id (its pilot.toml names the service).")
@click.option("--period", type=PERIOD, help="Fetch this month's report from the service instead of a FILE.")
@json_option
def import_(path, pilot_id, period, as_json):
    """Post the wallet's charges and cancellations to the ledger (idempotent)."""
    if (path is None) == (period is None):
        raise click.UsageError("give a report FILE or --period, not both")
    st = state()
    pilot = _pilot(pilot_id)
    with progress_bar("importing ePassi transactions") as progress:
        if path is not None:
            data = backend.import_file(st.app(), st.actor, pilot, path, progress)
        else:
            data = backend.import_period(st.app(), st.actor, pilot, period, progress)

    def render(console, d):
        console.print(escape(f"{d['source']}: {d['charges']} charges posted, {d['cancellations']} cancellations, "
                             f"{d['replayed']} already posted, {len(d['rejected'])} rejected"), soft_wrap=True)
        for r in d["skipped"]:
            console.print(escape(f"skipped {r['where']}: {r['reason']}"), soft_wrap=True)
        for r in d["rejected"]:
            console.print(escape(f"{r['where']}: {r['reason']}"), style="red", soft_wrap=True)

    emit(data, as_json, render)
    if data["rejected"]:
        click.get_current_context().exit(1)


@epassi.command("reconcile")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id.")
@click.option("--period", type=PERIOD, required=True, help="The month, YYYY-MM.")
@json_option
def reconcile_(pilot_id, period, as_json):
    """List every difference between the wallets and the ledger; exit 1 when there are any."""
    st = state()
    pilot = _pilot(pilot_id)
    found = backend.reconcile(st.app(), pilot, period, actor=st.actor)
    emit_reconciliation("ePassi", pilot.id, period, found, ["kind", "client", "transaction", "what differs"],
                        ["kind", "client", "transaction", "detail"], as_json)


def _shown(transaction: dict) -> dict:
    """The service's answer without the phone number: like a henkilötunnus, it is never
    printed (the wallet is named by its client code)."""
    return {k: v for k, v in transaction.items() if k != "phone"}


def _tx_line(d: dict) -> str:
    return (f"{d['type']} {d['id']}: {Money(d['amount']).fi()} on the wallet of {d['client_ref']}, "
            f"balance {Money(d['balance']).fi()}")


@epassi.command("charge")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id (its pilot.toml names the service).")
@click.option("--phone", required=True, help="The client's phone number: the wallet is found by it.")
@click.option("--provider", "provider_id", required=True, metavar="Y-TUNNUS", help="The provider charging.")
@click.option("--amount", type=MONEY, required=True, help="Euros, e.g. 45,50.")
@click.option("--identity-checked", is_flag=True, help="The provider checked the client's identity.")
@json_option
def charge(pilot_id, phone, provider_id, amount, identity_checked, as_json):
    """Charge a client's wallet as a provider would (demos and operators)."""
    pilot = _pilot(pilot_id)
    data = _shown(backend.charge(pilot, phone=people.validate_phone(phone),
                                 provider=providers.validate_business_id(provider_id, field_name="--provider"),
                                 amount=amount, identity_checked=identity_checked))
    emit(data, as_json, lambda c, d: c.print(_tx_line(d)))


@epassi.command("cancel")
@click.argument("transaction", metavar="TRANSACTION")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id.")
@json_option
def cancel(transaction, pilot_id, as_json):
    """Cancel a charge on the day it was made, as the provider would."""
    data = _shown(backend.cancel(_pilot(pilot_id), transaction))
    emit(data, as_json, lambda c, d: c.print(f"{_tx_line(d)} (cancels {d['cancels']})"))


COMMANDS = [epassi]
