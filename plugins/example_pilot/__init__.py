"""The example pilot: a small family-care trial used by the tests and the demo.

Shows the two halves of a pilot: data (``pilot.toml``) and the rules data can't express
(the hookimpls below, with their logic in :mod:`.rules`).
"""

from __future__ import annotations

from pathlib import Path

from avain.core.domain import ConfigSection, PilotSource
from avain.core.hookspecs import hookimpl

from . import rules

PILOT_ID = "example"


@hookimpl
def avain_pilots():
    return [PilotSource(PILOT_ID, str(Path(__file__).with_name("pilot.toml")))]


@hookimpl
def avain_config_sections():
    return [ConfigSection("example_pilot", rules.SCHEMA, "Eligibility settings of the example pilot")]


@hookimpl
def avain_check_eligibility(pilot, client, assessment):
    if pilot.id != PILOT_ID:
        return None
    return rules.eligibility(pilot, client, assessment)
