"""The pilot ``tampere``: ``pilot.toml`` holds its data and its eligibility settings,
which :class:`~avain.plugins.hb_pilots.rules.PilotPlugin` applies and describes; the
client code is the national evaluation's pilot–group–worker–ordinal scheme (the core's).
README.md gives the rules and the assumptions behind them."""

from __future__ import annotations

from pathlib import Path

from ..rules import PilotPlugin

plugin = PilotPlugin(__name__, "tampere", "tampere", str(Path(__file__).with_name("pilot.toml")),
                     "Tampere: who may join each group")
