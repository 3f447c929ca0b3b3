"""Master data on the command line: the henkilötunnus kept out of argv, finding a client,
need assessments, deactivating a worker, pilot versions and checks, and a pilot whose
plugins are missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLE_TOML, HETUS, OTHER_PILOT

from avain.core.cli import cli

RUNNER = CliRunner(env={"AVAIN_DB": None, "AVAIN_LOAD_PLUGINS": None})
MINE = "EX-F-01-001"


def avain(db, *args, input=None, env=None):
    return RUNNER.invoke(cli, ["--db", str(db), *args], input=input, env=env)


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def refused(result, *needles, exit_code=1):
    assert result.exit_code == exit_code, f"exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output and result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in {result.stderr!r}"
    return result.stderr


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "avain.db"
    ok(avain(path, "init", "--json"))
    for code, role in (("01", "worker"), ("03", "worker"), ("04", "finance"), ("05", "evaluator"),
                       ("06", "assistant")):
        ok(avain(path, "worker", "add", "--pilot", "example", "--code", code, "--name", f"W {code}",
                 "--role", role))
    ok(avain(path, "client", "enroll", "--pilot", "example", "--hetu", "-", "--name", "Testi Asiakas",
             "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes",
             "--date", "2018-01-02", input=HETUS[0] + "\n"))
    return path


# --- the henkilötunnus off the command line, and finding a client ---------------------------


def test_enroll_reads_the_henkilotunnus_from_standard_input_or_asks_for_it(db):
    result = ok(avain(db, "client", "enroll", "--pilot", "example", "--hetu", "-", "--name", "Toinen",
                      "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes",
                      "--json", input=HETUS[2] + "\n"))
    assert json.loads(result.stdout)["code"] == "EX-F-01-002"
    assert HETUS[2] not in result.output
    # Not a terminal and no --hetu: a usage error that says how, not a silent wait.
    refused(avain(db, "client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
                  "--group", "family"), "--hetu -", exit_code=2)
    refused(avain(db, "client", "enroll", "--pilot", "example", "--hetu", "-", "--name", "N", "--worker",
                  "example-01", "--group", "family", input=""), "standard input held no henkilötunnus",
            exit_code=2)


def test_client_find_by_henkilotunnus_or_name_is_an_audited_identity_read(db):
    found = json.loads(ok(avain(db, "--as", "worker:example-01", "client", "find", "--hetu", "-",
                                "--reason", "phone call", "--json", input=HETUS[0] + "\n")).stdout)
    assert [(c["code"], c["name"], c["hetu"]) for c in found] == [(MINE, "Testi Asiakas", HETUS[0])]
    by_name = json.loads(ok(avain(db, "client", "find", "--name", "asiak", "--reason", "letter", "--json")).stdout)
    assert [c["code"] for c in by_name] == [MINE]
    log = json.loads(ok(avain(db, "audit", "log", "--json")).stdout)
    reads = [e for e in log if e["action"] == "client.identity_read" and e["subject"] == MINE]
    assert [e["purpose"] for e in reads][-2:] == ["phone call", "letter"]
    assert HETUS[0] not in json.dumps(log) and "Testi" not in json.dumps(log)


def test_client_find_never_echoes_the_number_and_is_for_roles_that_may_identify(db):
    err = refused(avain(db, "client", "find", "--hetu", "-", "--reason", "x", input=HETUS[3] + "\n"),
                  "no client with that henkilötunnus")
    assert HETUS[3] not in err
    # Another worker's client is outside their scope: not found, like no client at all.
    refused(avain(db, "--as", "worker:example-03", "client", "find", "--hetu", "-", "--reason", "x",
                  input=HETUS[0] + "\n"), "no client with that henkilötunnus")
    refused(avain(db, "--as", "evaluator", "client", "find", "--name", "testi", "--reason", "x"),
            "evaluator is not allowed to client.identify")
    refused(avain(db, "client", "find", "--hetu", "-", "--reason", "x", input="010594Y123X\n"),
            "--hetu: not a valid henkilötunnus")
    refused(avain(db, "client", "find", "--hetu", HETUS[0], "--name", "te", "--reason", "x"), "not both",
            exit_code=2)


# --- need assessments ------------------------------------------------------------------------


def test_need_assessment_is_kept_versioned_and_shown(db):
    shown = json.loads(ok(avain(db, "client", "show", MINE, "--json")).stdout)
    assert shown["assessments"] == 1
    assert shown["assessment"]["facts"] == {"carer_contract": "yes"}
    assert (shown["assessment"]["version"], shown["assessment"]["assessed_on"]) == (1, "2018-01-02")
    result = ok(avain(db, "--as", "worker:example-01", "client", "assess", MINE, "--assess", "carer_contract=no",
                      "--assess", "hours=12", "--date", "2018-06-01"))
    assert "need assessment version 2 of 2018-06-01 recorded" in result.stdout
    assert "note:" in result.stdout  # the example pilot's eligibility needs a carer contract
    shown = json.loads(ok(avain(db, "--as", "worker:example-01", "client", "show", MINE, "--json")).stdout)
    assert shown["assessments"] == 2
    assert shown["assessment"] == {"version": 2, "assessed_on": "2018-06-01", "assessed_by": "worker:example-01",
                                   "facts": {"carer_contract": "no", "hours": "12"}}
    assert "version 2 of 2018-06-01" in ok(avain(db, "client", "show", MINE)).stdout
    refused(avain(db, "--as", "worker:example-03", "client", "assess", MINE, "--assess", "x=1"), "may not")


# --- worker deactivation ----------------------------------------------------------------------


def test_worker_deactivation_reassigns_the_clients_and_stops_the_worker(db):
    refused(avain(db, "worker", "deactivate", "example-01"), "--reassign-to", "still has 1 client")
    refused(avain(db, "worker", "deactivate", "example-01", "--reassign-to", "example-06"),
            "--reassign-to: example-06 is not another worker or supervisor of pilot example")
    data = json.loads(ok(avain(db, "worker", "deactivate", "example-01", "--reassign-to", "example-03",
                               "--date", "2018-03-01", "--json")).stdout)
    assert data["reassigned"] == [MINE] and data["status"] == "deactivated 2018-03-01"
    workers = {w["id"]: w["status"] for w in json.loads(ok(avain(db, "worker", "list", "--json")).stdout)}
    assert workers["example-01"] == "deactivated 2018-03-01" and workers["example-03"] == "active"
    assert "deactivated 2018-03-01" in ok(avain(db, "worker", "list")).stdout
    refused(avain(db, "--as", "worker:example-01", "client", "list"), "--as: worker example-01 was deactivated")
    refused(avain(db, "client", "enroll", "--pilot", "example", "--hetu", "-", "--name", "N", "--worker",
                  "example-01", "--group", "family", input=HETUS[2] + "\n"),
            "--worker: worker example-01 was deactivated")
    mine = json.loads(ok(avain(db, "--as", "worker:example-03", "client", "list", "--json")).stdout)
    assert [c["code"] for c in mine] == [MINE]
    # example-03's next client gets a fresh code, the moved client keeps theirs.
    new = json.loads(ok(avain(db, "client", "enroll", "--pilot", "example", "--hetu", "-", "--name", "N",
                              "--worker", "example-03", "--group", "family", "--assess", "carer_contract=yes",
                              "--json", input=HETUS[2] + "\n")).stdout)
    assert new["code"] == "EX-F-03-002"
    refused(avain(db, "worker", "deactivate", "example-01"), "deactivated on 2018-03-01 already")


# --- pilots: check, update, versions, missing plugins ------------------------------------------


def test_pilot_check_json_lists_every_error_with_its_path_and_exits_1(tmp_path, db):
    """Regression: a float monthly_cap was reported alone, without a path, and `--json`
    printed nothing."""
    bad = tmp_path / "bad.toml"
    bad.write_text('services = ["unicorn-rides"]\n' + OTHER_PILOT + '\n[budget]\nmonthly_cap = 400.0\n'
                   '[payment]\ndebtor_iban = "FI2112345600000786"\n', encoding="utf-8")
    result = avain(db, "pilot", "check", str(bad), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [e["path"] for e in data["errors"]] == ["budget.monthly_cap", "payment.debtor_iban", "services.0"]
    text = refused(avain(db, "pilot", "check", str(bad)))
    assert f"{bad}: budget.monthly_cap: 400.0 is not of type 'integer'" in text.splitlines()
    assert len(text.splitlines()) == 3


def test_pilot_update_and_its_versions(tmp_path, db):
    other = tmp_path / "other.toml"
    other.write_text(OTHER_PILOT, encoding="utf-8")
    ok(avain(db, "pilot", "add", str(other)))
    other.write_text(OTHER_PILOT + "\n[budget]\nmonthly_cap = 50000\n", encoding="utf-8")
    assert ok(avain(db, "pilot", "update", str(other))).stdout.strip() == "pilot other is now at version 2"
    assert "unchanged (version 2)" in ok(avain(db, "pilot", "update", str(other))).stdout
    assert "configuration version 2" in ok(avain(db, "pilot", "show", "other")).stdout
    old = json.loads(ok(avain(db, "pilot", "show", "other", "--version", "1", "--json")).stdout)
    assert (old["version"], old["current_version"]) == (1, 2) and "budget" not in old["config"]
    history = json.loads(ok(avain(db, "pilot", "show", "other", "--history", "--json")).stdout)
    assert [(v["version"], v["source"]) for v in history] == [(1, "file other.toml"), (2, "file other.toml")]
    other.write_text(OTHER_PILOT + "\n[budget]\nmonthly_cap = -1\n", encoding="utf-8")
    refused(avain(db, "pilot", "update", str(other)), "budget.monthly_cap: -1 is less than the minimum of 0")
    refused(avain(db, "pilot", "update", str(EXAMPLE_TOML)), "comes from plugin example")


def test_a_pilot_whose_plugins_are_not_loaded_is_refused_and_reported(db):
    """Regression: with AVAIN_LOAD_PLUGINS=catalogue_fi the example pilot's month was
    allocated with the default budget instead of the calculator's, without a word."""
    ok(avain(db, "--as", "worker:example-01", "decision", "grant", MINE, "--from", "2018-01-01", "--to",
             "2018-12-31"))
    only = {"AVAIN_LOAD_PLUGINS": "catalogue_fi"}
    err = refused(avain(db, "--as", "finance:example-04", "budget", "open-period", "--pilot", "example", "2018-01",
                       env=only),
                  "pilot example", "[plugins.budget_calculator]", "install the plugin budget_calculator")
    assert len(err.strip().splitlines()) == 1
    shown = ok(avain(db, "pilot", "show", "example", env=only)).stdout
    assert "warning: plugins.budget_calculator: no loaded plugin reads" in shown
    data = json.loads(ok(avain(db, "pilot", "show", "example", "--json", env=only)).stdout)
    assert data["missing_plugins"] == ["budget_calculator", "example_pilot"]
    check = json.loads(avain(db, "pilot", "check", str(EXAMPLE_TOML), "--json", env=only).stdout)
    assert "plugins.budget_calculator" in [e["path"] for e in check["errors"]]
    # With its plugins loaded, the same month opens.
    opened = json.loads(ok(avain(db, "--as", "finance:example-04", "budget", "open-period", "--pilot", "example",
                                 "2018-01", "--json")).stdout)
    assert (opened["pilot"], opened["period"]) == ("example", "2018-01")


def test_on_a_terminal_the_henkilotunnus_is_asked_for_with_hidden_input(monkeypatch):
    import io

    from avain.core.cli import people_cmds

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    asked = {}

    def prompt(text, **kwargs):
        asked.update(kwargs, text=text)
        return f" {HETUS[0]} "

    monkeypatch.setattr(people_cmds.sys, "stdin", Terminal())
    monkeypatch.setattr(people_cmds.click, "prompt", prompt)
    assert people_cmds.read_hetu(None) == HETUS[0]
    assert asked == {"text": "Henkilötunnus", "hide_input": True, "err": True}
