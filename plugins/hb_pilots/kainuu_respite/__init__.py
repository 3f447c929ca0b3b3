"""The pilot ``kainuu-respite``: ``pilot.toml`` holds its data and eligibility settings; the
hookimpls add what data can't express — Kainuu's client numbers, formed from the worker
codes 01–09. README.md gives the rules and the assumptions behind them."""

from __future__ import annotations

from pathlib import Path

from ..rules import WorkerNumberedPilot

plugin = WorkerNumberedPilot(__name__, "kainuu-respite", "kainuu_respite",
                             str(Path(__file__).with_name("pilot.toml")),
                             "Kainuu family-care trial: who may join (child under 18, care contract, AVAIN status)")
