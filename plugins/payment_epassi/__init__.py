"""ePassi: the e-wallet a pilot can pay through (``[payment] backend = "epassi"``).

At period open each client's month is loaded to their wallet; providers charge the wallet
by the client's phone number; the wallet's transactions are imported to the ledger and
reconciled with it. A local simulator of the service ships with the plugin. README.md
describes the service's API as avain assumes it.
"""

from __future__ import annotations

from pathlib import Path

from avain.core.cli.lazy import LazyCommand
from avain.core.domain import ConfigSection, PilotSource
from avain.core.hookspecs import hookimpl

from . import settings

PILOT_ID = "example-epassi"


@hookimpl
def avain_payment_backends():
    from . import backend  # the services it calls: imported when a backend is asked for

    return [backend.payment_backend()]


@hookimpl
def avain_config_sections():
    return [ConfigSection(settings.NAME, settings.SCHEMA, "How avain reaches the pilot's ePassi service")]


@hookimpl
def avain_commands():
    return [LazyCommand("epassi", "avain.plugins.payment_epassi.cli:epassi",
                        "The ePassi e-wallet: import its transactions, reconcile them with the ledger.")]


@hookimpl
def avain_pilots():
    return [PilotSource(PILOT_ID, str(Path(__file__).with_name("pilot.toml")))]
