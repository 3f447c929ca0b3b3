"""The pilot ``kainuu-voucher``: ``pilot.toml`` holds its data and eligibility settings; the
hookimpls add what data can't express — Kainuu's client numbers, formed from the worker
codes 01–09. README.md gives the rules and the assumptions behind them."""

from __future__ import annotations

from pathlib import Path

from ..rules import WorkerNumberedPilot

plugin = WorkerNumberedPilot(__name__, "kainuu-voucher", "kainuu_voucher",
                             str(Path(__file__).with_name("pilot.toml")),
                             "Kainuu voucher trial: who may join (a continuous, wide need; able to plan purchases)")
