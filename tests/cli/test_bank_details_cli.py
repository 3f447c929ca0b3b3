"""The redirected-payment attack through the commands: an invoice is approved, the
provider's IBAN is changed (by `provider update`, then by hand in the database), and
`pay batch` must not pay to the new account until a second person approves it."""

import json
import sqlite3

from test_invoices_cli import PROVIDER, commit
from test_workflow_cli import run, setup_month  # noqa: F401 - the fixture is used by name

NEW_IBAN = "FI1410093000123458"
ATTACKER_IBAN = "FI4950009420028730"


def approved_invoice(run, code, number="P-1"):  # noqa: F811
    c = commit(run, code)
    inv = run.json("invoice", "record", "--provider", PROVIDER, "--number", number, "--amount", "8,40",
                   "--ref", c["reference_rf"], "--date", "2018-01-20", actor="finance:example-04")
    run("invoice", "approve", inv["id"], actor="supervisor:example-02")
    return inv


def test_a_changed_iban_is_paid_only_after_a_second_person_approves_it(run):  # noqa: F811
    code = setup_month(run)
    run("worker", "add", "--pilot", "example", "--code", "07", "--name", "A", "--role", "admin")
    approved_invoice(run, code)
    changed = run("provider", "update", PROVIDER, "--iban", NEW_IBAN, actor="admin:example-07")
    assert f"avain provider approve-bank {PROVIDER}" in changed.stdout
    refused = run("pay", "batch", "--pilot", "example", "--date", "2018-01-31", actor="finance:example-04", ok=None)
    assert refused.exit_code != 0
    assert "wait for a second person's approval" in refused.stderr
    assert f"avain provider approve-bank {PROVIDER}" in refused.stderr
    shown = run("provider", "show", PROVIDER).stdout
    assert NEW_IBAN in shown and "waiting for a second approval" in shown

    same = run("provider", "approve-bank", PROVIDER, actor="admin:example-07", ok=None)
    assert same.exit_code != 0 and "a second person must approve it" in same.stderr
    nameless = run("provider", "approve-bank", PROVIDER, actor="finance", ok=None)
    assert nameless.exit_code != 0 and "--as finance:ID" in nameless.stderr
    ok = run("provider", "approve-bank", PROVIDER, actor="finance:example-04")
    assert f"{PROVIDER}: bank details {NEW_IBAN} approved (changed by admin:example-07)" in ok.stdout

    out = run.tmp / "pain001.xml"
    batch = run.json("pay", "batch", "--pilot", "example", "--date", "2018-01-31", "--out", out,
                     actor="finance:example-04")
    assert batch["count"] == 1 and NEW_IBAN.encode() in out.read_bytes()
    log = run.json("audit", "log", "--subject", PROVIDER)
    assert [e["after"]["changed_by"] for e in log if e["action"] == "provider.bank_approved"] == ["admin:example-07"]


def test_an_iban_written_into_the_database_is_not_paid(run):  # noqa: F811
    code = setup_month(run)
    inv = approved_invoice(run, code)
    with sqlite3.connect(run.tmp / "avain.db") as db:
        db.execute("UPDATE provider SET iban = ? WHERE id = ?", (ATTACKER_IBAN, PROVIDER))
    refused = run("pay", "batch", "--pilot", "example", "--date", "2018-01-31", actor="finance:example-04", ok=None)
    assert refused.exit_code != 0 and "not the ones approved in avain" in refused.stderr
    assert f"avain provider update {PROVIDER} --iban IBAN" in refused.stderr
    assert run.json("invoice", "list", "--status", "approved")[0]["id"] == inv["id"]
    assert "not approved" in run("provider", "show", PROVIDER).stdout
    # Entered again through avain, by one person and approved by another, it is paid.
    run("provider", "update", PROVIDER, "--iban", ATTACKER_IBAN)
    run("provider", "approve-bank", PROVIDER, actor="finance:example-04")
    paid = run.json("pay", "batch", "--pilot", "example", "--date", "2018-01-31", actor="finance:example-04")
    assert paid["count"] == 1


def test_ledger_verify_reports_an_invoice_multiplied_by_100(run):  # noqa: F811
    code = setup_month(run)
    inv = approved_invoice(run, code)
    assert run.json("ledger", "verify")["ok"]
    with sqlite3.connect(run.tmp / "avain.db") as db:
        db.execute("UPDATE invoice SET amount = amount * 100 WHERE id = ?", (inv["id"],))
    problems = json.loads(run("ledger", "verify", "--json", ok=1).stdout)["problems"]
    assert any(f"commitment {inv['commitment']}: its 1 invoice(s) total 840,00" in p for p in problems)
    refused = run("pay", "batch", "--pilot", "example", "--date", "2018-01-31", actor="finance:example-04", ok=None)
    assert refused.exit_code != 0
    assert f"invoice {inv['id']}: its amount 840,00" in refused.stderr and "changed outside avain" in refused.stderr


def test_invoice_import_refuses_a_file_above_the_limit_naming_it(run):  # noqa: F811
    import finvoice_samples

    setup_month(run)  # finance records invoices under their own id, a worker of the pilot
    huge = run.tmp / "huge.xml"
    with huge.open("wb") as fh:
        fh.write(finvoice_samples.make())
        fh.truncate(3 * 1024 * 1024)
    out = run("invoice", "import", huge, actor="finance:example-04", ok=1)
    assert "huge.xml: refused: the file is 3.0 MiB (3145728 bytes), more than the 2.0 MiB" in out.stderr
    assert "AVAIN_FINVOICE_MAX_BYTES" in out.stderr
