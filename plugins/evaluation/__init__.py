"""The evaluation of the pilots (the national evaluation plan): instruments as data,
measurement points for HB clients and controls, consent, time and cost per client,
reports with charts, and the pseudonymous export for evaluators.

The plugin registers the shared instruments (Kykyviisari, Osallisuustesti, the
satisfaction survey's HB and control variants, the ESR start and end forms); a pilot
names the ones it uses in pilot.toml (``[evaluation] instruments``), and a pilot plugin
may bring its own (Hämeenlinna's Kompassi). Its commands are ``avain eval …``.
"""

from __future__ import annotations

from pathlib import Path

from avain.core.cli.lazy import LazyCommand
from avain.core.hookspecs import hookimpl

FOLDER = Path(__file__).with_name("instruments")


@hookimpl
def avain_evaluation_instruments():
    from . import instruments

    return instruments.load_dir(FOLDER)


@hookimpl
def avain_commands():
    # the commands' module (and the services it calls) is imported when `avain eval` runs
    return [LazyCommand("eval", "avain.plugins.evaluation.cli:evaluation",
                        "The evaluation: instruments and responses, time and cost, reports and the export.")]
