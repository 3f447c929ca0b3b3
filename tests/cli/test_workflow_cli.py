"""The budget and purchase commands, and `avain demo`, through click's CliRunner."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from avain.core.cli import cli

HETU = "010594Y123W"


@pytest.fixture
def run(tmp_path):
    db = f"sqlite:///{tmp_path / 'avain.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a database

    def invoke(*args, actor=None, ok=True):
        argv = ["--db", db] + (["--as", actor] if actor else []) + [str(a) for a in args]
        result = runner.invoke(cli, argv)
        assert "Traceback" not in result.output + result.stderr
        if ok is True:
            assert result.exit_code == 0, result.stderr + result.output
        elif ok is not None:
            assert result.exit_code == ok, result.stderr + result.output
        return result

    def js(*args, actor=None):
        return json.loads(invoke(*args, "--json", actor=actor).stdout)

    invoke.json = js
    invoke.tmp = tmp_path
    return invoke


def setup_month(run):
    run("worker", "add", "--pilot", "example", "--code", "02", "--name", "S", "--role", "supervisor")
    run("worker", "add", "--pilot", "example", "--code", "01", "--name", "W", "--supervisor", "example-02")
    run("worker", "add", "--pilot", "example", "--code", "04", "--name", "F", "--role", "finance")
    run("provider", "add", "--ytunnus", "1572860-0", "--name", "Siivous Oy", "--iban", "FI2112345600000785",
        "--area", "Kajaani")
    checks = [a for c in ("prepayment_register", "provider_register", "service_level", "liability_insurance",
                          "hb_training") for a in ("--check", f"{c}=document seen@2017-12-01")]
    run("provider", "approve", "1572860-0", "--pilot", "example", "--service", "cleaning", "--service", "meals",
        "--from", "2017-12-01", *checks)
    prices = Path(run.tmp) / "prices.csv"
    prices.write_text("provider,service,price,valid_from\n1572860-0,cleaning,\"50,00\",2017-01-01\n"
                      "1572860-0,meals,9.50,2017-01-01\n")
    run("catalogue", "import", prices)
    code = run.json("client", "enroll", "--pilot", "example", "--hetu", HETU, "--name", "N",
                    "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes",
                    "--date", "2017-12-01")["code"]
    run("plan", "set", code, "--from", "2018-01-01", "--item", "cleaning=4", "--item", "meals=10",
        actor="worker:example-01")
    run("decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31", actor="worker:example-01")
    opened = run.json("budget", "open-period", "--pilot", "example", "2018-01", actor="finance:example-04")
    # 4 × 35,00 + 10 × 8,50 = 225,00 € by the example pilot's own-production prices
    assert opened["clients"] == 1 and opened["amount"] == 22500
    return code


def test_the_workflow_through_the_commands(run):
    code = setup_month(run)
    p = run.json("proposal", "create", code, "--service", "cleaning", "--provider", "1572860-0",
                 "--amount", "45,50", "--date", "2018-01-12", "--text", "kotisiivous", actor=f"client:{code}")
    assert p["amount"] == 4550
    approved = run.json("proposal", "approve", p["id"], actor="worker:example-01")
    ref = approved["commitment"]["reference_rf"]
    assert run.json("ledger", "balance", code, actor=f"client:{code}")["available"] == 22500 - 4550
    inv = run.json("invoice", "record", "--provider", "1572860-0", "--number", "A-1", "--amount",
                   "40", "--ref", ref, "--date", "2018-01-20", "--final", actor="finance:example-04")
    run("invoice", "approve", inv["id"], actor="supervisor:example-02")
    out = Path(run.tmp) / "pain001.xml"
    batch = run.json("pay", "batch", "--pilot", "example", "--date", "2018-01-31", "--out", out,
                     actor="finance:example-04")
    assert batch["count"] == 1 and b"pain.001.001.09" in out.read_bytes()
    assert run.json("invoice", "list", "--status", "batched")[0]["id"] == inv["id"]
    run("pay", "confirm", batch["id"], actor="finance:example-04")
    assert run.json("invoice", "list", "--status", "paid")[0]["id"] == inv["id"]
    statement = run.json("ledger", "statement", code, "--period", "2018-01")
    assert statement["totals"]["spent"] == 4000 and statement["totals"]["released"] == 550
    assert "spent" in run("ledger", "statement", code).stdout
    closed = run.json("budget", "close-period", "--pilot", "example", "2018-01", actor="finance:example-04")
    assert closed["amount"] == 22500 - 4000
    assert run.json("ledger", "verify")["ok"]
    assert [r["status"] for r in run.json("budget", "show", "--pilot", "example")] == ["closed"]


@pytest.mark.parametrize("amount", ["-5", "0", "12,345", "1e3", "99999999"])
def test_bad_amounts_are_bad_usage_exit_2_and_write_nothing(run, amount):
    code = setup_month(run)
    r = run("proposal", "create", code, "--service", "cleaning", "--provider", "1572860-0",
            "--amount", amount, "--date", "2018-01-12", actor=f"client:{code}", ok=2)
    assert "Invalid value for '--amount': " in r.stderr
    assert run.json("proposal", "list") == []


def test_out_of_order_and_other_workers_are_refused(run):
    code = setup_month(run)
    run("worker", "add", "--pilot", "example", "--code", "03", "--name", "O")
    p = run.json("proposal", "create", code, "--service", "meals", "--provider", "1572860-0",
                 "--amount", "20", "--date", "2018-01-12", actor=f"client:{code}")
    r = run("proposal", "approve", p["id"], actor="worker:example-03", ok=1)
    assert "not allowed" in r.stderr or "may not" in r.stderr
    r = run("pay", "confirm", "1", actor="finance:example-04", ok=1)
    assert r.stderr == "error: no payment batch 1\n"
    run("proposal", "reject", p["id"], "--reason", "not in the plan", actor="worker:example-01")
    r = run("proposal", "approve", p["id"], actor="worker:example-01", ok=1)
    assert "rejected" in r.stderr
    r = run("ledger", "balance", "EX-F-09-999", ok=1)
    assert "no client" in r.stderr


def test_demo_runs_a_month_and_refuses_a_database_with_data(run):
    three = ["--pilot", "example", "--pilot", "example-epassi", "--pilot", "example-psop", "--clients", "3"]
    summary = run.json("demo", *three)
    pilot, wallet, vouchers = summary["pilots"]
    assert [pilot["pilot"], wallet["pilot"], vouchers["pilot"]] == ["example", "example-epassi", "example-psop"]
    assert pilot["clients"] == 6 and pilot["controls"] == 6  # two groups, 3 HB clients and 3 controls each
    assert pilot["workflow"]["paid"] > 0 and pilot["workflow"]["rejected"] > 0
    assert wallet["rail"]["differences"] == [] and vouchers["rail"]["differences"] == []
    assert summary["ledger"]["ok"]
    r = run("demo", ok=1)
    assert "--reset" in r.stderr
    again = run.json("demo", "--reset", *three)
    # Same seed, same month, on every rail.
    assert [p.get("workflow") or p["rail"] for p in again["pilots"]] == [
        pilot["workflow"], wallet["rail"], vouchers["rail"]]
    assert run.json("ledger", "verify")["ok"]
    assert run.json("audit", "verify")["ok"]
    text = run("demo", "--reset", *three).stdout
    assert "ledger verify: ok" in text and "Statements" in text and "evaluation: " in text
    assert "epassi simulator: " in text and "epassi and the ledger: in step" in text
    assert "psop simulator: " in text and "psop and the ledger: in step" in text
    one = run.json("demo", "--reset", "--pilot", "example-psop", "--clients", "2")
    assert [p["pilot"] for p in one["pilots"]] == ["example-psop"] and one["ledger"]["ok"]
