"""Invoices in parts, commitment close, due dates and provider corrections through the
commands (click's CliRunner)."""

import json

from test_workflow_cli import run, setup_month  # noqa: F401 - the fixture is used by name

PROVIDER = "1572860-0"


def commit(run, code, euros="50"):  # noqa: F811
    p = run.json("proposal", "create", code, "--service", "cleaning", "--provider", PROVIDER,
                 "--amount", euros, "--date", "2018-01-12", actor=f"client:{code}")
    return run.json("proposal", "approve", p["id"], actor="worker:example-01")["commitment"]


def bill(run, c, number, euros, *extra, ok=True):  # noqa: F811
    return run("invoice", "record", "--provider", PROVIDER, "--number", number, "--amount", euros,
               "--ref", c["reference_rf"], "--date", "2018-01-20", *extra, actor="finance:example-04", ok=ok)


def test_weekly_invoices_then_close_through_the_commands(run):  # noqa: F811
    code = setup_month(run)
    c = commit(run, code)
    first = json.loads(bill(run, c, "W-1", "12,50", "--due", "2018-02-10", "--json").stdout)
    assert (first["commitment_status"], first["commitment_left"], first["due_date"]) == ("pending", 3750, "2018-02-10")
    assert "still open" in bill(run, c, "W-2", "12,50", "--due", "2018-02-03").stdout
    over = bill(run, c, "W-3", "25,01", ok=1)
    assert "above the commitment's remaining 25,00" in over.stderr and "W-3" in over.stderr
    listed = run.json("invoice", "list")
    assert [i["number"] for i in listed] == ["W-2", "W-1"]  # the soonest due first
    assert "2018-02-03" in run("invoice", "list").stdout  # the due day (ISO in English output)
    row = run.json("commitment", "list", "--status", "pending")[0]
    assert (row["posted"], row["left"]) == (2500, 2500)
    closed = run.json("commitment", "close", c["id"], "--note", "service ended", actor="worker:example-01")
    assert (closed["status"], closed["released"]) == ("closed", 2500)
    again = run("commitment", "close", c["id"], actor="worker:example-01", ok=1)
    assert "closed" in again.stderr
    assert run.json("ledger", "balance", code)["available"] == 22500 - 2500
    assert run.json("ledger", "verify")["ok"]


def test_provider_update_and_the_missing_iban(run):  # noqa: F811
    setup_month(run)
    run("provider", "add", "--ytunnus", "0737546-2", "--name", "Ateria Oy")
    checks = [a for c in ("prepayment_register", "provider_register", "service_level", "liability_insurance",
                          "hb_training") for a in ("--check", f"{c}=seen@2017-12-01")]
    approved = run("provider", "approve", "0737546-2", "--pilot", "example", "--service", "meals",
                   "--from", "2017-12-01", *checks, "--json")
    assert "has no IBAN" in approved.stderr and "provider update 0737546-2 --iban" in approved.stderr
    assert json.loads(approved.stdout)["warnings"]
    bad = run("provider", "update", "0737546-2", "--iban", "FI00", ok=1)
    assert "--iban" in bad.stderr and "Traceback" not in bad.stderr
    done = run.json("provider", "update", "0737546-2", "--iban", "FI5542345670000081", "--bic", "NDEAFIHH")
    assert (done["iban"], done["bic"], done["changed"]) == ("FI5542345670000081", "NDEAFIHH", ["bic", "iban"])
    assert "updated iban" not in run("provider", "update", "0737546-2", "--bic", "NDEAFIHH").stdout
    log = run.json("audit", "log", "--subject", "0737546-2")
    assert any(e["action"] == "provider.updated" and e["before"]["iban"] is None for e in log)


def test_pay_import_reads_the_banks_answers(run, tmp_path):  # noqa: F811
    import bank_samples

    code = setup_month(run)
    c = commit(run, code)
    inv = json.loads(bill(run, c, "P-1", "50", "--json").stdout)
    run("invoice", "approve", inv["id"], actor="supervisor:example-02")
    batch = run.json("pay", "batch", "--pilot", "example", "--date", "2018-01-31", actor="finance:example-04")
    rejected = tmp_path / "pain002.xml"
    rejected.write_bytes(bank_samples.pain002(batch["message_id"], group_status="RJCT",
                                              group_reason=("AC04", "Tili on suljettu")))
    out = run("pay", "import", rejected, actor="finance:example-04")
    assert "1 rejected" in out.stdout and "AC04" in out.stdout
    listed = run("invoice", "list", "--status", "approved").stdout
    assert "AC04" in listed and "Tili on suljettu" in listed
    twice = run.json("pay", "import", rejected, actor="finance:example-04")
    assert twice["imported"][0]["already_applied"] is True
    assert "already applied" in run("pay", "import", rejected, actor="finance:example-04").stdout
    second = run.json("pay", "batch", "--pilot", "example", "--date", "2018-02-05", actor="finance:example-04")
    booked = tmp_path / "camt054.xml"
    booked.write_bytes(bank_samples.camt054([{"amount": 5000, "end_to_end": [(f"AVAIN-{inv['id']}", 5000)]}]))
    stray = tmp_path / "stray.xml"
    stray.write_bytes(bank_samples.camt054([{"amount": 100, "end_to_end": [("AVAIN-999", 100)]}],
                                           message_id="OTHER"))
    refused = run("pay", "import", booked, stray, actor="finance:example-04", ok=1)
    assert "stray.xml: Ntfctn[1]/Ntry[1]/TxDtls[1] (AVAIN-999)" in refused.stderr
    assert "1 paid" in refused.stdout  # the good file is applied all the same
    assert run.json("pay", "list")[-1]["status"] == "confirmed" and second["count"] == 1
    assert run.json("invoice", "list", "--status", "paid")[0]["id"] == inv["id"]
    assert run.json("ledger", "verify")["ok"]
