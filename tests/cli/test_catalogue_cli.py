"""Provider, catalogue, plan and decision-explain commands through CliRunner."""

import json

import pytest
from click.testing import CliRunner

from avain.core.cli import cli

CHECKS = [a for c in ("prepayment_register", "provider_register", "service_level", "liability_insurance",
                      "hb_training") for a in ("--check", f"{c}=extract seen@2017-12-01")]


@pytest.fixture
def run(tmp_path):
    db = f"sqlite:///{tmp_path / 'avain.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a database

    def invoke(*args, actor=None, code=0):
        argv = ["--db", db] + (["--as", actor] if actor else []) + [str(a) for a in args]
        result = runner.invoke(cli, argv)
        assert "Traceback" not in result.output + result.stderr
        assert result.exit_code == code, result.stderr + result.output
        return result

    return invoke


def test_register_approve_price_search_export(run, tmp_path):
    run("provider", "add", "--ytunnus", "1572860-0", "--name", "Kotiapu Oy", "--area", "Kajaani",
        "--iban", "FI2112345600000785", "--contact", "palvelu@kotiapu.invalid")
    r = run("provider", "approve", "1572860-0", "--pilot", "example", "--service", "cleaning",
            "--from", "2018-01-01", *CHECKS[:-2], code=1)
    assert "hb_training" in r.stderr
    approved = json.loads(run("provider", "approve", "1572860-0", "--pilot", "example", "--service", "cleaning",
                              "--from", "2018-01-01", *CHECKS, "--json").stdout)
    assert approved["valid_to"] == "2019-12-31"
    prices = tmp_path / "prices.csv"
    prices.write_text('provider,service,price,valid_from\n1572860-0,cleaning,"31,90",2018-01-01\n'
                      "1572860-0,cleaning,abc,2019-01-01\n")
    r = run("catalogue", "import", prices, code=1)
    assert "1 added, 0 unchanged, 1 rejected" in r.stdout
    assert f"{prices}: line 3: price: " in r.stdout
    again = json.loads(run("catalogue", "import", prices, "--json", code=1).stdout)
    assert (again["added"], again["unchanged"]) == (0, 1)
    found = json.loads(run("catalogue", "search", "--service", "cleaning", "--area", "Kajaani",
                           "--date", "2018-03-01", "--json").stdout)
    assert [(f["provider"], f["price"]) for f in found] == [("1572860-0", 3190)]
    out = tmp_path / "register"
    run("catalogue", "export", "--out", out, "--date", "2018-03-01")
    published = (out / "catalogue.json").read_text() + (out / "catalogue.csv").read_text()
    assert "Kotiapu Oy" in published and "31" in published
    assert "FI21" not in published and "palvelu@" not in published
    shown = json.loads(run("provider", "show", "1572860-0", "--json").stdout)
    assert shown["approvals"][0]["checklist"]["hb_training"]["evidence"] == "extract seen"
    revoked = json.loads(run("provider", "revoke", "1572860-0", "--pilot", "example", "--reason", "insurance",
                             "--date", "2018-06-01", "--json").stdout)
    assert revoked["revoked_on"] == "2018-06-01"
    assert json.loads(run("catalogue", "search", "--service", "cleaning", "--date", "2018-06-02",
                          "--json").stdout) == []


def test_bad_business_id_and_iban_name_the_field(run):
    r = run("provider", "add", "--ytunnus", "123", "--name", "X", code=1)
    assert r.stderr == "error: --ytunnus: '123' is not a valid Y-tunnus (e.g. 1572860-0)\n"
    r = run("provider", "add", "--ytunnus", "1572860-0", "--name", "X", "--iban", "FI00", code=1)
    assert r.stderr == "error: --iban: 'FI00' is not a valid IBAN\n"
    assert json.loads(run("provider", "list", "--json").stdout) == []


def test_plan_and_explain_in_words_and_json(run):
    run("worker", "add", "--pilot", "example", "--code", "01", "--name", "W")
    code = json.loads(run("client", "enroll", "--pilot", "example", "--hetu", "010594Y123W", "--name", "N",
                          "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes",
                          "--json").stdout)["code"]
    me = "worker:example-01"
    run("plan", "set", code, "--from", "2018-01-01", "--item", "cleaning=2", "--carer-days-off", actor=me)
    r = run("plan", "set", code, "--from", "2018-01-01", "--item", "cleaning=two", actor=me, code=2)
    assert "--item" in r.stderr
    run("decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31", actor=me)
    text = run("decision", "explain", code, "--period", "2018-01", actor=me).stdout
    assert "budget for 2018-01 is €270.00" in text  # English money: the CLI speaks English here
    assert "2 days a month × 100,00\u00a0€ = 200,00\u00a0€" in text
    data = json.loads(run("decision", "explain", code, "--period", "2018-01", "--json", actor=me).stdout)
    assert data["amount"] == 2 * 3500 + 2 * 10000
    assert data["parts"][0]["inputs"]["plan"]["carer_days_off"] is True
    plans = json.loads(run("plan", "show", code, "--json", actor=me).stdout)
    assert plans[0]["items"] == [{"service": "cleaning", "quantity": 2}]
