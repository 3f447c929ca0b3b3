"""PSOP, the voucher and purchased-service system, as a payment backend: a balance voucher
(saldoseteli) per client and month listing the services in the budget with a money value
each; providers record service events in PSOP; its daily batch books them into the
balance by the next day; avain imports the booked events as charges and reconciles.

The hookimpls only register things; the logic is in :mod:`.backend`, :mod:`.posting`,
:mod:`.events`, :mod:`.client` and :mod:`.simulator` (README.md documents the API).
"""

from __future__ import annotations

from pathlib import Path

from avain.core.cli.lazy import LazyCommand
from avain.core.domain import ConfigSection, PilotSource
from avain.core.hookspecs import hookimpl

PILOT_ID = "example-psop"


@hookimpl
def avain_payment_backends():
    from . import backend  # the services and the posting it calls: imported when a backend is asked for

    return [backend.BACKEND]


@hookimpl
def avain_commands():
    return [LazyCommand("psop", "avain.plugins.payment_psop.cli:psop",
                        "PSOP balance vouchers (saldoseteli): service events, reconciliation, a local simulator.")]


@hookimpl
def avain_config_sections():
    from . import backend

    return [ConfigSection(backend.SECTION, backend.CONFIG_SCHEMA, "Where the pilot's PSOP voucher service answers")]


@hookimpl
def avain_pilots():
    return [PilotSource(PILOT_ID, str(Path(__file__).with_name("pilot.toml")))]
