"""The plugin manager, and one ``test_hook_<name>`` per hook: what a user notices when a
plugin implements it.

Every test builds its own plugin manager (``make_plugin_manager(extra=[...])``) with small
plugin classes made for that test, so nothing registered here leaks into another test.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner
from conftest import open_app
from helpers import HETUS, OTHER_PILOT, add_team, enroll, finance_of
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core import plugins as plugins_mod
from avain.core.auth import Actor
from avain.core.cli import cli
from avain.core.cli import state as cli_state
from avain.core.domain import (
    ConfigSection,
    Money,
    PaymentBackend,
    Period,
    PilotSource,
    Service,
    WorkflowOptions,
)
from avain.core.errors import ConfigError, PluginError, Refused
from avain.core.hookspecs import hookimpl
from avain.core.models import ClientRow
from avain.core.plugins import collect, loaded_plugins, make_plugin_manager
from avain.core.services import audit_log, budget, people, pilots


@pytest.fixture(autouse=True)
def _no_plugin_selection(monkeypatch):
    """Tests here decide themselves which plugins load."""
    monkeypatch.delenv("AVAIN_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("AVAIN_DB", raising=False)


@pytest.fixture
def app_with(db_url):
    """``app_with(plugin, …)``: an App on a fresh database of each engine whose plugin
    manager has the given plugins besides the usual ones, with the example team."""
    opened = []

    def make(*extra, team=True):
        app = open_app(db_url, make_plugin_manager(extra=extra))
        opened.append(app)
        app.team = add_team(app) if team else None
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture
def avain(monkeypatch, db_url):
    """``avain(*args, plugins=[…])``: run the command line on a fresh database of each
    engine, with extra plugins in its plugin manager."""
    runner = CliRunner()

    def run(*args, plugins=()):
        monkeypatch.setattr(cli_state, "make_plugin_manager",
                            lambda: make_plugin_manager(extra=list(plugins)))
        return runner.invoke(cli, ["--db", db_url, *args])

    init = run("init", "--json")
    assert init.exit_code == 0, init.output
    return run


def client_count(app) -> int:
    with Session(app.engine) as s:
        return s.execute(select(func.count()).select_from(ClientRow)).scalar_one()


def names(pm) -> list[str]:
    return [p.name for p in loaded_plugins(pm)]


# --- the plugin manager -----------------------------------------------------------


def test_a_misspelt_hook_fails_at_start_up():
    class Misspelt:
        @hookimpl
        def avain_client_codez(self, pilot):
            return "X"

    with pytest.raises(PluginError, match="unknown hook.*avain_client_codez"):
        make_plugin_manager(extra=[Misspelt()])


def test_a_misspelt_hook_argument_fails_at_start_up_as_a_plugin_error():
    class WrongArgument:
        @hookimpl
        def avain_client_code(self, pilot, clinet):
            return "X"

    with pytest.raises(PluginError, match="clinet"):
        make_plugin_manager(extra=[WrongArgument()])


def test_each_manager_is_fresh():
    class Once:
        @hookimpl
        def avain_client_code(self):
            return "ONCE"

    with_plugin = make_plugin_manager(extra=[Once()])
    without = make_plugin_manager()
    assert len(names(with_plugin)) == len(names(without)) + 1
    assert with_plugin.hook is not without.hook


def test_core_and_built_in_plugins_load_by_default():
    loaded = {p.name: p for p in loaded_plugins(make_plugin_manager())}
    assert loaded["defaults"].source == "core"
    assert loaded["example_pilot"].source == "built-in"
    assert loaded["example_pilot"].module == "avain.plugins.example_pilot"
    assert "avain_pilots" in loaded["example_pilot"].hooks
    assert names(make_plugin_manager())[0] == "defaults"


def test_avain_load_plugins_empty_loads_only_the_core(monkeypatch):
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", "")
    pm = make_plugin_manager()
    assert names(pm) == ["defaults"]
    assert collect(pm, "avain_pilots") == []


def test_avain_load_plugins_names_the_plugins_to_load(monkeypatch):
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", " example_pilot , ")
    assert names(make_plugin_manager()) == ["defaults", "example_pilot"]
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", "something_else")
    assert names(make_plugin_manager()) == ["defaults"]


class FakeEntryPoint:
    """What importlib.metadata.entry_points() yields, as far as avain looks."""

    def __init__(self, name, plugin, *, dist=("avain-fake", "1.2.3"), error=None):
        self.name = name
        self.value = f"{name.replace('-', '_')}_module"
        self.group = "avain"
        self.dist = SimpleNamespace(name=dist[0], version=dist[1]) if dist else None
        self._plugin, self._error = plugin, error

    def load(self):
        if self._error:
            raise self._error
        return self._plugin


def fake_entry_points(monkeypatch, *eps):
    def entry_points(**kwargs):
        assert kwargs == {"group": "avain"}
        return list(eps)

    monkeypatch.setattr(plugins_mod, "entry_points", entry_points)


class ShortCodes:
    @hookimpl
    def avain_client_code(self, worker, ordinal):
        return f"S{worker.code}{ordinal:02d}"


def test_an_entry_point_plugin_is_loaded_and_says_where_from(monkeypatch):
    fake_entry_points(monkeypatch, FakeEntryPoint("short_codes", ShortCodes()))
    loaded = {p.name: p for p in loaded_plugins(make_plugin_manager())}
    assert loaded["short_codes"].source == "entry point avain-fake 1.2.3"
    assert loaded["short_codes"].hooks == ("avain_client_code",)
    monkeypatch.setattr(cli_state, "make_plugin_manager", make_plugin_manager)
    result = CliRunner().invoke(cli, ["plugin", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["short_codes"]["source"] == "entry point avain-fake 1.2.3"


def test_avain_load_plugins_filters_entry_points_too(monkeypatch):
    fake_entry_points(monkeypatch, FakeEntryPoint("short_codes", ShortCodes()))
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", "example_pilot")
    assert "short_codes" not in names(make_plugin_manager())
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", "short_codes")
    assert names(make_plugin_manager()) == ["defaults", "short_codes"]


def test_a_broken_entry_point_is_a_plugin_error(monkeypatch):
    fake_entry_points(monkeypatch, FakeEntryPoint("broken", None, error=ImportError("no module x")))
    with pytest.raises(PluginError, match="plugin broken .*cannot be loaded: no module x"):
        make_plugin_manager()


def test_an_entry_point_cannot_take_a_built_in_name(monkeypatch):
    fake_entry_points(monkeypatch, FakeEntryPoint("example_pilot", ShortCodes()))
    with pytest.raises(PluginError, match="'example_pilot' is used twice"):
        make_plugin_manager()


def test_two_plugins_registering_one_pilot_name_are_refused(tmp_path):
    toml = tmp_path / "pilot.toml"
    toml.write_text(OTHER_PILOT)

    class First:
        @hookimpl
        def avain_pilots(self):
            return [PilotSource("twin", str(toml))]

    class Second:
        @hookimpl
        def avain_pilots(self):
            return [PilotSource("twin", str(toml))]

    pm = make_plugin_manager(extra=[First(), Second()])
    with pytest.raises(PluginError, match="avain_pilots: two plugins register the name 'twin'"):
        collect(pm, "avain_pilots")


# --- registration hooks -------------------------------------------------------------


def test_hook_avain_pilots(app_with, tmp_path):
    toml = tmp_path / "other.toml"
    toml.write_text(OTHER_PILOT)

    class ShipsAPilot:
        @hookimpl
        def avain_pilots(self):
            return [PilotSource("other_plugin", str(toml))]

    app = app_with(ShipsAPilot())
    listed = {p["id"]: p for p in app.run(Actor("admin"), pilots.list_pilots)}
    assert listed["other"]["source"] == "plugin other_plugin"
    assert listed["example"]["source"] == "plugin example"
    assert app.run(Actor("admin"), pilots.show, "other")["name"] == "Another pilot"
    # A changed pilot.toml is loaded on the next sync, and the change is audited.
    toml.write_text(OTHER_PILOT.replace("Another pilot", "Renamed pilot"))
    assert app.run(Actor("admin"), pilots.sync_plugin_pilots) == ["other"]
    assert app.run(Actor("admin"), pilots.show, "other")["name"] == "Renamed pilot"
    events = app.run(Actor("admin"), audit_log.log, subject="other")
    assert [e["action"] for e in events] == ["pilot.added", "pilot.updated"]
    assert app.run(Actor("admin"), pilots.sync_plugin_pilots) == []


def test_hook_avain_config_sections(avain, tmp_path):
    class Reminders:
        @hookimpl
        def avain_config_sections(self):
            return [ConfigSection("reminders", {
                "type": "object", "additionalProperties": False,
                "properties": {"days": {"type": "integer", "minimum": 1,
                                        "description": "Days before expiry."}},
            })]

    toml = tmp_path / "pilot.toml"
    toml.write_text(OTHER_PILOT + "\n[plugins.reminders]\ndays = 0\n")
    refused = avain("pilot", "check", str(toml), plugins=[Reminders()])
    assert refused.exit_code == 1
    (line,) = refused.stderr.splitlines()
    assert line.endswith(f"{toml}: plugins.reminders.days: 0 is less than the minimum of 1")

    toml.write_text(OTHER_PILOT + "\n[plugins.reminders]\ndays = 3\n")
    ok = avain("pilot", "add", str(toml), "--json", plugins=[Reminders()])
    assert ok.exit_code == 0, ok.output
    shown = json.loads(avain("pilot", "show", "other", "--json", plugins=[Reminders()]).stdout)
    assert shown["config"]["plugins"] == {"reminders": {"days": 3}}

    # Without the plugin, its section is refused, naming the plugin to install.
    unknown = avain("pilot", "check", str(toml))
    assert unknown.exit_code == 1
    assert "plugins.reminders: no loaded plugin reads [plugins.reminders]: install the plugin reminders" in (
        unknown.stderr)


def test_hook_avain_services(db_url, monkeypatch):
    class SnowWork:
        @hookimpl
        def avain_services(self):
            return [Service("snow-ploughing", "Lumityöt", "support", "hour", name_en="Snow ploughing")]

    runner = CliRunner()
    monkeypatch.setattr(cli_state, "make_plugin_manager", lambda: make_plugin_manager(extra=[SnowWork()]))
    assert runner.invoke(cli, ["--db", db_url, "init", "--json"]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["--db", db_url, "catalogue", "services", "--json"]).stdout)
    snow = next(s for s in listed if s["code"] == "snow-ploughing")
    assert (snow["name_fi"], snow["name_en"], snow["unit"]) == ("Lumityöt", "Snow ploughing", "hour")
    assert any(s["code"] == "cleaning" for s in listed)  # the built-in catalogue is still there

    class AnotherCleaning:
        @hookimpl
        def avain_services(self):
            return [Service("cleaning", "Siivous", "support", "hour")]

    monkeypatch.setattr(cli_state, "make_plugin_manager", lambda: make_plugin_manager(extra=[AnotherCleaning()]))
    clash = runner.invoke(cli, ["--db", db_url, "init"])
    assert clash.exit_code == 1
    assert "avain_services: two plugins register the name 'cleaning'" in clash.stderr


def test_hook_avain_payment_backends(app_with, tmp_path):
    loads = []

    def load(app, pilot, period, allocations):
        loads.append((pilot.id, str(period), [(a.client_code, a.amount.cents) for a in allocations]))
        return {"loaded": len(allocations)}

    class Wallet:
        @hookimpl
        def avain_payment_backends(self):
            return [PaymentBackend("wallet", "A test e-wallet", {"load_period"}, load_period=load)]

    app = app_with(Wallet())
    admin = Actor("admin")
    toml = tmp_path / "wallet.toml"
    toml.write_text(OTHER_PILOT + '\n[payment]\nbackend = "wallet"\n')
    app.run(admin, pilots.add_file, toml)
    app.run(admin, people.add_worker, pilot_id="other", code="01", name="W", role="worker")
    code = app.run(admin, people.enroll, pilot_id="other", hetu=HETUS[0], name="N",
                   worker_id="other-01")["code"]
    app.run(Actor("worker", "other-01"), budget.grant, code, valid_from=dt.date(2018, 1, 1),
            valid_to=dt.date(2018, 12, 31), monthly_amount=Money(12000))
    opened = budget.open_period(app, finance_of(app, "other"), "other", Period(2018, 1))
    # The pilot's backend loaded the month's budgets after the allocation committed.
    assert loads == [("other", "2018-01", [(code, 12000)])]
    assert opened["backend"] == {"name": "wallet", "loaded": 1}
    # A pilot without [payment] pays by commitments and invoices only: no backend runs.
    budget.open_period(app, finance_of(app, "example"), "example", Period(2018, 1))
    assert len(loads) == 1

    # Without the plugin, a pilot naming the backend is refused with what is loaded.
    plain = app_with(team=False)  # the same database, without the Wallet plugin
    with pytest.raises(ConfigError, match="payment.backend 'wallet' is not a loaded backend"):
        budget.open_period(plain, finance_of(app, "other"), "other", Period(2018, 1))


def test_hook_avain_commands(avain):
    @click.command("hello")
    @click.option("--to", default="world")
    def hello(to):
        """Say hello."""
        click.echo(f"hello {to}")

    class Greeter:
        @hookimpl
        def avain_commands(self):
            return [hello]

    result = avain("hello", "--to", "pilot", plugins=[Greeter()])
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello pilot\n"
    assert "hello" in avain("--help", plugins=[Greeter()]).stdout
    assert avain("hello").exit_code == 2  # without the plugin: no such command

    class AnotherGreeter:
        @hookimpl
        def avain_commands(self):
            return [hello]

    clash = avain("hello", plugins=[Greeter(), AnotherGreeter()])
    assert clash.exit_code == 1
    assert "two plugins register the name 'hello'" in clash.stderr
    assert "Traceback" not in clash.output


def test_a_plugin_command_cannot_shadow_a_core_command(avain):
    @click.command("pilot")
    def pilot():
        click.echo("the plugin's pilot command")

    class Shadow:
        @hookimpl
        def avain_commands(self):
            return [pilot]

    result = avain("pilot", "list", plugins=[Shadow()])
    assert result.exit_code == 1
    assert "pilot" in result.stderr and "core" in result.stderr


# --- decision hooks -----------------------------------------------------------------


def test_hook_avain_client_code(avain):
    for code, name, role in (("02", "S", "supervisor"), ("01", "W", "worker")):
        assert avain("worker", "add", "--pilot", "example", "--code", code, "--name", name,
                     "--role", role).exit_code == 0
    enrol = ("client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
             "--group", "family", "--assess", "carer_contract=yes")

    seen = []

    class Codes:
        @hookimpl
        def avain_client_code(self, pilot, client, worker, ordinal):
            seen.append((pilot.id, client.group_id, worker.code, ordinal))
            return f"{pilot.code}{worker.code}{ordinal:02d}" if pilot.id == "example" else None

    result = avain(*enrol, "--hetu", HETUS[0], plugins=[Codes()])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "EX0101"
    assert seen == [("example", "family", "01", 1)]

    class Defers:
        @hookimpl
        def avain_client_code(self):
            return None

    # A plugin that returns None leaves the choice to the core: the default scheme,
    # with the worker's ordinal counting on from the client above.
    result = avain(*enrol, "--hetu", HETUS[1], plugins=[Defers()])
    assert result.stdout.strip() == "EX-F-01-002"
    listed = json.loads(avain("client", "list", "--json").stdout)
    assert {c["code"] for c in listed} == {"EX-F-01-002", "EX0101"}


# --- checks -------------------------------------------------------------------------


def test_hook_avain_check_eligibility(app_with):
    calls = []

    class NeedsAReferral:
        @hookimpl
        def avain_check_eligibility(self, pilot, client, assessment):
            calls.append((client.control, dict(assessment)))
            if assessment.get("referral") != "yes":
                return ["a referral from the service-need assessment is required"]
            return []

    class NoObjection:
        @hookimpl
        def avain_check_eligibility(self):
            return None

    app = app_with(NeedsAReferral(), NoObjection())
    worker = app.team["worker"]
    with pytest.raises(Refused) as err:
        enroll(app, hetu=HETUS[0], worker=worker)
    assert str(err.value) == ("cannot enroll in example: a referral from the service-need "
                              "assessment is required")
    assert err.value.reasons == ["a referral from the service-need assessment is required"]
    # Controls are checked too: they must be comparable clients.
    with pytest.raises(Refused):
        enroll(app, hetu=HETUS[1], worker=worker, control=True)
    assert client_count(app) == 0
    # Every plugin's reasons are gathered: the example pilot's own rule joins in.
    with pytest.raises(Refused) as err:
        enroll(app, hetu=HETUS[0], worker=worker, assessment={})
    assert len(err.value.reasons) == 2
    assert "family-carer contract" in str(err.value) and "referral" in str(err.value)

    code = enroll(app, hetu=HETUS[0], worker=worker,
                  assessment={"carer_contract": "yes", "referral": "yes"})
    assert code == "EX-F-01-001"
    assert calls[0] == (False, {"carer_contract": "yes"})
    assert calls[1][0] is True


def test_hook_avain_check_intake(app_with):
    calls = []

    class OneAtATime:
        @hookimpl
        def avain_check_intake(self, pilot, client, on_date, enrolled):
            calls.append((client.group_id, on_date, dict(enrolled)))
            if enrolled["*"] >= 1:
                return ["the pilot takes one client at a time"]

    app = app_with(OneAtATime())
    worker = app.team["worker"]
    first = enroll(app, hetu=HETUS[0], worker=worker)
    with pytest.raises(Refused, match="cannot enroll in example: the pilot takes one client at a time"):
        enroll(app, hetu=HETUS[1], worker=worker, group="elderly")
    assert client_count(app) == 1
    assert calls[0][2] == {"*": 0}
    assert calls[1][0] == "elderly" and calls[1][2] == {"family": 1, "*": 1}
    # Controls are not checked (and not counted).
    enroll(app, hetu=HETUS[2], worker=worker, control=True)
    assert len(calls) == 2
    # An ended client no longer counts.
    app.run(Actor("admin"), people.end, first)
    enroll(app, hetu=HETUS[3], worker=worker)
    assert calls[-1][2] == {"*": 0}
    assert client_count(app) == 3


# --- policy -------------------------------------------------------------------------


def test_hook_avain_pilot_rules(avain):
    class Describes:
        @hookimpl
        def avain_pilot_rules(self, pilot):
            return ["clients are numbered by the moon"] if pilot.id == "example" else None

    plain = json.loads(avain("pilot", "show", "example", "--json").stdout)["rules"]
    shown = json.loads(avain("pilot", "show", "example", "--json", plugins=[Describes()]).stdout)["rules"]
    assert shown == [*plain, "clients are numbered by the moon"]
    assert "clients are numbered by the moon" in avain("pilot", "show", "example", plugins=[Describes()]).stdout
    other = json.loads(avain("pilot", "show", "example-psop", "--json", plugins=[Describes()]).stdout)["rules"]
    assert "clients are numbered by the moon" not in other


def test_hook_avain_workflow_options(avain):
    class ReceiptsAndWorkers:
        @hookimpl
        def avain_workflow_options(self, pilot):
            if pilot.id == "example":
                return WorkflowOptions(confirm_receipt=True, invoice_approver="worker",
                                       commitment_days=30)

    default = json.loads(avain("pilot", "show", "example", "--json").stdout)
    assert default["workflow"] == {"confirm_receipt": False, "invoice_approver": "supervisor",
                                   "commitment_days": 60}

    shown = avain("pilot", "show", "example", "--json", plugins=[ReceiptsAndWorkers()])
    assert json.loads(shown.stdout)["workflow"] == {
        "confirm_receipt": True, "invoice_approver": "worker", "commitment_days": 30}
    text = avain("pilot", "show", "example", plugins=[ReceiptsAndWorkers()]).stdout
    assert "the client confirms receipt of a service" in text
    assert "invoices approved by the worker" in text
    assert "payment commitments valid 30 days" in text


# --- events -------------------------------------------------------------------------


class EnrolmentRecorder:
    """Records each avain_client_enrolled call, and whether the enrolment was committed
    by then (a separate session sees the client)."""

    def __init__(self):
        self.calls = []
        self.app = None

    @hookimpl
    def avain_client_enrolled(self, pilot, client):
        with Session(self.app.engine) as s:
            committed = s.get(ClientRow, client.code) is not None
        self.calls.append((pilot.id, client.code, client.control, committed))


class FailingHandler:
    @hookimpl
    def avain_client_enrolled(self):
        raise RuntimeError("the welcome letter service is down")


def test_hook_avain_client_enrolled(app_with):
    recorder = EnrolmentRecorder()
    app = app_with(recorder)
    recorder.app = app
    worker = app.team["worker"]
    code = enroll(app, hetu=HETUS[0], worker=worker)
    control = enroll(app, hetu=HETUS[1], worker=worker, control=True)
    assert recorder.calls == [("example", code, False, True), ("example", control, True, True)]
    # A refused enrolment is no event.
    with pytest.raises(Refused):
        enroll(app, hetu=HETUS[2], worker=worker, assessment={})
    assert len(recorder.calls) == 2


def test_a_failing_event_handler_is_logged_and_undoes_nothing(app_with, caplog):
    app = app_with(FailingHandler())
    with caplog.at_level(logging.ERROR, logger="avain.core.uow"):
        code = enroll(app, hetu=HETUS[0], worker=app.team["worker"])
    assert "event hook avain_client_enrolled failed" in caplog.text
    assert "welcome letter service is down" in caplog.text
    assert client_count(app) == 1
    events = app.run(Actor("admin"), audit_log.log, subject=code)
    assert [e["action"] for e in events] == ["client.enrolled"]


def test_a_failing_event_handler_does_not_silence_the_others(app_with):
    recorder = EnrolmentRecorder()
    app = app_with(recorder, FailingHandler())  # pluggy calls the last registered first
    recorder.app = app
    code = enroll(app, hetu=HETUS[0], worker=app.team["worker"])
    assert recorder.calls == [("example", code, False, True)]
