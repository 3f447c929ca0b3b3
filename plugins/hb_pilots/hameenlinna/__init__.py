"""The pilot ``hameenlinna``: ``pilot.toml`` holds its data and its eligibility settings,
which :class:`~avain.plugins.hb_pilots.rules.PilotPlugin` applies and describes; the
client code is the national evaluation's pilot–group–worker–ordinal scheme (the core's).
Hämeenlinna measures well-being with its own Kompassi survey beside Kykyviisari: this
plugin registers it (``kompassi.json``). README.md gives the rules and the assumptions
behind them."""

from __future__ import annotations

from pathlib import Path

from avain.core.hookspecs import hookimpl

from ..rules import PilotPlugin

HERE = Path(__file__).parent


class Hameenlinna(PilotPlugin):
    @hookimpl
    def avain_evaluation_instruments(self):
        from avain.plugins.evaluation import instruments

        return [instruments.load(HERE / "kompassi.json", "kompassi")]


plugin = Hameenlinna(__name__, "hameenlinna", "hameenlinna", str(HERE / "pilot.toml"),
                     "Hämeenlinna: who may join (offered HB at the need assessment)")
