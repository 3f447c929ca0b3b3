"""``avain demo`` on both engines: every shipped pilot's month, the rails through their
simulators, and a rail without a simulator skipped by name."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from conftest import open_app
from helpers import EXAMPLE_TOML

from avain.core import demo
from avain.core.auth import Actor
from avain.core.domain import PaymentBackend, PilotSource
from avain.core.hookspecs import hookimpl
from avain.core.plugins import make_plugin_manager
from avain.core.services import pilots, statements


def _spent(app, code: str) -> int:
    return sum(line["amount"] for line in app.read(Actor("admin"), statements.statement, code)["lines"]
               if line["what"] == "spent")


def test_the_demo_month_runs_every_shipped_pilot_and_each_rail_agrees_with_the_ledger(app):
    summary = demo.run(app, pilot_ids=["example", "example-epassi", "example-psop"], clients_per_group=2)
    by = {p["pilot"]: p for p in summary["pilots"]}
    assert sorted(by) == ["example", "example-epassi", "example-psop"] and summary["skipped"] == []
    assert summary["ledger"]["ok"], summary["ledger"]["problems"]
    assert by["example"]["workflow"]["paid"] > 0

    wallet = by["example-epassi"]["rail"]
    assert wallet["rail"] == "epassi" and wallet["charges"] > 0
    assert (wallet["imported"]["charges"], wallet["imported"]["cancellations"]) == (wallet["charges"],
                                                                                    wallet["cancelled"])
    assert wallet["differences"] == []

    vouchers = by["example-psop"]["rail"]
    assert vouchers["rail"] == "psop" and vouchers["events"] > 0 and sum(vouchers["refused"].values()) > 0
    assert (vouchers["imported"]["posted"], vouchers["imported"]["rejected"]) == (vouchers["events"], 0)
    assert vouchers["differences"] == []

    for pid in ("example-epassi", "example-psop"):
        codes = [row["client"] for row in by[pid]["statements"]]
        assert sum(_spent(app, code) for code in codes) > 0, f"{pid}: the rail's charges are not spent"
        # The month closed: nothing is left on the budgets, what was not spent lapsed.
        assert all(app.read(Actor("admin"), statements.balance, c)["available"] == 0 for c in codes)


class RailWithoutSimulator:
    """A pilot on a rail that loads budgets into an outside service and ships no simulator."""

    def __init__(self, tmp_path: Path):
        text = EXAMPLE_TOML.read_text(encoding="utf-8")
        for old, new in [('id = "example"', 'id = "outside"'), ('code = "EX"', 'code = "OU"'),
                         ("[payment]\n", '[payment]\nbackend = "outside"\n')]:
            assert old in text, "the example pilot.toml changed: update this test"
            text = text.replace(old, new, 1)
        self.path = tmp_path / "outside.toml"
        self.path.write_text(text, encoding="utf-8")

    @hookimpl
    def avain_pilots(self):
        return [PilotSource("outside", str(self.path))]

    @hookimpl
    def avain_payment_backends(self):
        return [PaymentBackend("outside", "A service with no stand-in", {"load_period"},
                               load_period=lambda app, pilot, period, allocations: {})]


def test_a_pilot_on_a_rail_without_a_simulator_is_skipped_and_named(db_url, tmp_path):
    app = open_app(db_url, make_plugin_manager(extra=[RailWithoutSimulator(tmp_path)]))
    try:
        summary = demo.run(app, pilot_ids=["outside", "example"], clients_per_group=1)
    finally:
        app.close()
    assert [p["pilot"] for p in summary["pilots"]] == ["example"]
    assert summary["skipped"] == [{"pilot": "outside", "backend": "outside",
                                   "why": "needs the outside service, and its plugin has no simulator"}]
    assert summary["ledger"]["ok"] and summary["period"] == str(dt.date(2018, 1, 1))[:7]


def test_the_demo_runs_every_pilot_on_one_database_each_with_its_own_rules(app):
    summary = demo.run(app, clients_per_group=3)
    by = {p["pilot"]: p for p in summary["pilots"]}
    assert len(by) == 10 and summary["skipped"] == [] and summary["ledger"]["ok"]
    for pid, month in by.items():
        pilot = app.read(Actor("admin"), pilots.get, pid)
        codes = [row["client"] for row in month["statements"]]
        assert len(codes) == 3 * len(pilot.groups) and month["enrolment_refusals"] == [], (pid, month)
        assert month["controls"] == len(codes)  # as many controls, matched by pilot and group
        assert all(c.startswith(f"{pilot.code}-") for c in codes), (pid, codes)
    # Kainuu numbers clients by worker code and ordinal; the others by pilot-group-worker-ordinal.
    assert [r["client"] for r in by["kainuu-respite"]["statements"]] == ["KO-0101", "KO-0201", "KO-0102"]
    assert by["kainuu-respite"]["rail"]["rail"] == "epassi" and by["kainuu-voucher"]["rail"]["rail"] == "psop"
    assert by["pori"]["workflow"]["proposed"] > 0
    assert "every client: the need assessment gives avain_status = yes" in by["kainuu-respite"]["pilot_rules"]
    assert by["example-psop"]["pilot_rules"] == []  # no plugin of its own rules


def test_the_demo_writes_a_dialogue_for_every_pilot(app):
    """Each pilot's month has its dialogue: questions answered mostly by the next working
    day (as in Kainuu), workflow steps in the threads, consents, and notifications."""
    from avain.core.services import consent, messages

    summary = demo.run(app, pilot_ids=["example", "example-epassi"], clients_per_group=2)
    by = {p["pilot"]: p for p in summary["pilots"]}
    for pid, month in by.items():
        d = month["dialogue"]
        assert d["messages"] > d["questions"] > 0, pid
        assert d["answered_by_next_working_day"] + d["late_or_unanswered"] + d["not_yet_due"] == d["questions"]
        assert 0.7 <= d["share_by_next_working_day"] <= 1.0 and d["median_hours_to_answer"] > 0, (pid, d)
    code = by["example"]["statements"][1]["client"]
    thread = app.run(Actor("client", code), messages.thread, code)["messages"]
    events = {m["event"] for m in thread}
    assert {None, "proposal.made"} <= events and events & {"proposal.approved", "proposal.rejected"}
    stamps = [m["sent_at"] for m in thread]
    assert stamps == sorted(stamps) and all(s.startswith("2018-0") for s in stamps)  # the month's own time
    # every HB client consented to the dialogue's use; the evaluators' copy names no one
    assert set(app.read(Actor("admin"), consent.consented, "dialogue")) >= {
        r["client"] for m in by.values() for r in m["statements"]}
    # the clients wrote first names, phone numbers and e-mail addresses; the evaluators'
    # copies hold none of them
    raw = docs = ""
    for c in [r["client"] for r in by["example"]["statements"]]:
        raw += " ".join(m["text"] for m in app.run(Actor("client", c), messages.thread, c)["messages"])
        doc = app.run(Actor("evaluator", "example-92"), messages.dialogue_document, c)
        docs += " ".join(m["text"] for m in doc["messages"])
    assert "@example.fi" in raw and "@" not in docs and not re.search(r"040 \d{3} \d{4}", docs)
    assert "[client]" in docs or "[HB assistant]" in docs or "[personal worker]" in docs
    assert summary["message_key"]["where"] == "AVAIN_MESSAGE_KEY"  # the tests' key; no key file made
