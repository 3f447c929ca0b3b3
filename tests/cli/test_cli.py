"""The ``avain`` command line through click's CliRunner, on a temporary SQLite file given
with ``--db``: what people type and what they see (stdout, stderr, exit code), and that a
refused command writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from importlib.metadata import version
from pathlib import Path

import bank_samples
import click
import finvoice_samples
import pytest
from click.testing import CliRunner
from helpers import EXAMPLE_TOML, HETUS, OTHER_PILOT

from avain.core import db as dbmod
from avain.core import integrity_key
from avain.core.cli import cli
from avain.core.message_keys import MessageKey

ROOT = Path(__file__).resolve().parents[2]

BAD_PILOT = """\
id = "Bad Id"
name = "x"
code = "x1"

[[groups]]
id = "a"
code = "A"
name = "A"

[budget]
monthly_cap = -5
surprise = 1
"""

#: Clients of the populated database (see ``populated_template``).
MINE = "EX-F-01-001"  # example-01's client, supervised by example-02
THEIRS = "EX-E-03-001"  # example-03's client

RUNNER = CliRunner(env={"AVAIN_DB": None, "AVAIN_LOAD_PLUGINS": None})


def avain(db: Path | str | None, *args: str, env: dict | None = None):
    prefix = ["--db", str(db)] if db is not None else []
    return RUNNER.invoke(cli, [*prefix, *args], env=env)


def ok(result) -> click.testing.Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def as_json(result):
    """The whole of stdout is exactly one JSON document."""
    return json.loads(ok(result).stdout)


def counts(db: Path) -> dict[str, int]:
    """Rows per table: a refused command must leave every one unchanged."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def sql(db: Path, statement: str, *params) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


def assert_refused(result, *needles: str, exit_code: int = 1) -> str:
    """Refused cleanly: the exit code, nothing on stdout, one line on stderr naming what
    was wrong, and never a traceback."""
    assert result.exit_code == exit_code, f"exit {result.exit_code}\n{result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch):
    monkeypatch.delenv("AVAIN_DB", raising=False)
    monkeypatch.delenv("AVAIN_LOAD_PLUGINS", raising=False)


@pytest.fixture
def db(tmp_path) -> Path:
    """A database file that does not exist yet."""
    return tmp_path / "avain.db"


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("populated") / "avain.db"
    ok(avain(path, "init", "--json"))
    for code, role, extra in (("02", "supervisor", ()), ("01", "worker", ("--supervisor", "example-02")),
                              ("03", "worker", ()), ("04", "finance", ()), ("05", "evaluator", ()),
                              ("06", "assistant", ())):
        ok(avain(path, "worker", "add", "--pilot", "example", "--code", code, "--name", f"Worker {code}",
                 "--role", role, *extra, "--json"))
    for hetu, worker, group in ((HETUS[0], "example-01", "family"), (HETUS[1], "example-03", "elderly")):
        ok(avain(path, "client", "enroll", "--pilot", "example", "--hetu", hetu, "--name", "Testi Asiakas",
                 "--worker", worker, "--group", group, "--assess", "carer_contract=yes", "--date", "2017-12-01",
                 "--json"))
    return path


@pytest.fixture
def populated(tmp_path, populated_template) -> Path:
    """init, a supervisor (02) with a worker (01), another worker (03), an evaluator (05),
    an HB assistant (06), and one client each for 01 and 03."""
    path = tmp_path / "avain.db"
    shutil.copy(populated_template, path)
    # with its checkpoints, which belong to it as its key files would
    shutil.copy(populated_template.with_name("avain.db.checkpoints"), tmp_path / "avain.db.checkpoints")
    return path


TEST_KEY = "dGVzdC1vbmx5LWF2YWluLW1lc3NhZ2Uta2V5LTMyYnk"  # the key tests/conftest.py sets


def key_id(text: str) -> str:
    return MessageKey.parse(text, where="test").id


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the database ------------------------------------------------------------------


def test_init_creates_a_database_and_loads_the_plugins_pilots(db):
    result = ok(avain(db, "init"))
    assert "avain database ready" in result.stdout
    assert "example" in result.stdout
    assert db.exists()
    again = as_json(avain(db, "init", "--json"))
    assert again == {"database": f"sqlite:///{db}", "schema": dbmod.head_revision(),
                     "pilots_loaded": [], "message_key": f"{key_id(TEST_KEY)} in AVAIN_MESSAGE_KEY",
                     "integrity_key": f"{integrity_key.load('sqlite://').id} in AVAIN_INTEGRITY_KEY"}


def test_only_init_creates_a_missing_database(db):
    assert_refused(avain(db, "pilot", "list"), f"no database at {db}: run `avain init` to create one")
    assert not db.exists()
    ok(avain(db, "init"))
    pilots = as_json(avain(db, "pilot", "list", "--json"))
    assert [p["id"] for p in pilots] == SHIPPED_PILOTS


def test_the_database_comes_from_avain_db_else_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    as_json(avain(None, "init", "--json"))
    assert (tmp_path / "avain.db").exists()
    elsewhere = tmp_path / "elsewhere.db"
    as_json(avain(None, "init", "--json", env={"AVAIN_DB": str(elsewhere)}))
    assert elsewhere.exists()
    chosen = tmp_path / "chosen.db"
    as_json(avain(chosen, "init", "--json", env={"AVAIN_DB": str(elsewhere)}))
    assert chosen.exists()


def test_db_upgrade_on_a_current_database_changes_nothing(populated):
    before = counts(populated)
    data = as_json(avain(populated, "db", "upgrade", "--json"))
    assert data["from"] == data["to"] == dbmod.head_revision()
    assert data["pilots_loaded"] == []
    assert counts(populated) == before


# --- pilots --------------------------------------------------------------------------


def test_pilot_list_and_show(populated):
    listed = ok(avain(populated, "pilot", "list")).stdout
    assert "example" in listed and "Example family-care pilot" in listed
    listed = as_json(avain(populated, "pilot", "list", "--json"))
    assert [p["id"] for p in listed] == SHIPPED_PILOTS
    assert listed[1] == {"id": "example", "name": "Example family-care pilot", "source": "plugin example",
                         "clients": 2}
    shown = ok(avain(populated, "pilot", "show", "example")).stdout
    assert "Example family-care pilot" in shown
    assert "HB clients: 2, controls: 0" in shown
    assert "at most 15 HB clients in group family" in shown
    assert "warning: 2 HB clients enrolled, the target is at least 5" in shown
    data = as_json(avain(populated, "pilot", "show", "example", "--json"))
    assert data["code"] == "EX" and data["clients"] == 2
    assert data["workflow"]["invoice_approver"] == "supervisor"


def test_pilot_check_accepts_a_valid_file(populated):
    result = ok(avain(populated, "pilot", "check", str(EXAMPLE_TOML)))
    assert result.stdout.strip() == f"{EXAMPLE_TOML}: pilot example is valid"
    assert as_json(avain(populated, "pilot", "check", str(EXAMPLE_TOML), "--json")) == {
        "file": str(EXAMPLE_TOML), "ok": True, "id": "example", "errors": []}


def test_pilot_check_prints_every_error_with_its_path(tmp_path, db):
    bad = write(tmp_path, "bad.toml", BAD_PILOT)
    result = avain(db, "pilot", "check", str(bad))
    assert result.exit_code == 1
    assert result.stdout == "" and "Traceback" not in result.output
    expected = [
        f"{bad}: budget.monthly_cap: -5 is less than the minimum of 0",
        f"{bad}: code: 'x1' does not fit: Short upper-case code that begins every client code of the pilot",
        f"{bad}: id: 'Bad Id' does not fit: Pilot id: lower-case letters, digits and hyphens (e.g. family-care)",
    ]
    lines = result.stderr.splitlines()
    for line in expected:
        assert line in lines
    assert any(line.startswith(f"{bad}: budget: Additional properties are not allowed ('surprise'")
               for line in lines)
    assert len(lines) == 4
    data = json.loads(avain(db, "pilot", "check", str(bad), "--json").stdout)
    assert data["ok"] is False and data["file"] == str(bad)
    assert [f"{bad}: {e['path']}: {e['message']}" if e["path"] else f"{bad}: {e['message']}"
            for e in data["errors"]] == lines


def test_pilot_add_adds_a_data_only_pilot_once(populated, tmp_path):
    other = write(tmp_path, "other.toml", OTHER_PILOT)
    assert ok(avain(populated, "pilot", "add", str(other))).stdout.strip() == "pilot other added"
    listed = {p["id"]: p for p in as_json(avain(populated, "pilot", "list", "--json"))}
    assert listed["other"]["source"] == "file other.toml"
    before = counts(populated)
    assert_refused(avain(populated, "pilot", "add", str(other)),
                   "pilot other exists already (from file other.toml)")
    assert_refused(avain(populated, "pilot", "add", str(EXAMPLE_TOML)),
                   "pilot example exists already (from plugin example)")
    assert counts(populated) == before


# --- workers and clients ---------------------------------------------------------------


def test_worker_add_prints_the_id_and_worker_list_shows_it(populated):
    added = ok(avain(populated, "worker", "add", "--pilot", "example", "--code", "07",
                     "--name", "Uusi Työntekijä", "--role", "finance"))
    assert added.stdout.strip() == "example-07"
    text = ok(avain(populated, "worker", "list", "--pilot", "example")).stdout
    assert "example-07" in text and "finance" in text
    workers = {w["id"]: w for w in as_json(avain(populated, "worker", "list", "--json"))}
    assert workers["example-07"] == {"id": "example-07", "pilot": "example", "code": "07",
                                     "name": "Uusi Työntekijä", "role": "finance",
                                     "supervisor": None, "status": "active"}
    assert workers["example-01"]["supervisor"] == "example-02"


def test_client_enroll_prints_the_code_and_nothing_identifying(populated):
    result = ok(avain(populated, "client", "enroll", "--pilot", "example", "--hetu", HETUS[2],
                      "--name", "Maija Meikäläinen", "--worker", "example-01", "--group", "family",
                      "--assess", "carer_contract=yes"))
    assert result.stdout.strip() == "EX-F-01-002"
    result = ok(avain(populated, "client", "enroll", "--pilot", "example", "--hetu", HETUS[3],
                      "--name", "Matti Meikäläinen", "--worker", "example-01", "--group", "elderly",
                      "--control", "--json"))
    data = json.loads(result.stdout)
    assert data["code"] == "EX-E-01-003" and data["control"] is True
    for secret in (HETUS[2], HETUS[3], "Meikäläinen"):
        assert secret not in result.output


def test_client_show_as_their_worker_reveals_identity_and_logs_why(populated):
    data = as_json(avain(populated, "--as", "worker:example-01", "client", "show", MINE,
                         "--reason", "home visit", "--json"))
    assert data["code"] == MINE
    assert data["name"] == "Testi Asiakas" and data["hetu"] == HETUS[0]
    text = ok(avain(populated, "--as", "worker:example-01", "client", "show", MINE)).stdout
    assert HETUS[0] in text
    log = as_json(avain(populated, "audit", "log", "--subject", MINE, "--json"))
    reads = [e for e in log if e["action"] == "client.identity_read"]
    assert [(e["actor"], e["purpose"]) for e in reads] == [
        ("worker:example-01", "home visit"), ("worker:example-01", "client show")]
    assert all(HETUS[0] not in json.dumps(e) for e in log)


def test_client_show_as_an_evaluator_gives_the_code_never_the_identity(populated):
    ok(avain(populated, "--as", "worker:example-01", "client", "consent", MINE, "--purpose", "evaluation",
             "--date", "2018-01-02"))
    before = counts(populated)
    actor = "evaluator:example-05"
    result = ok(avain(populated, "--as", actor, "client", "show", MINE, "--json"))
    data = json.loads(result.stdout)
    assert data["code"] == MINE and "name" not in data and "hetu" not in data
    assert "assessment" not in data  # the export's record only
    assert HETUS[0] not in result.output and "Testi" not in result.output
    assert HETUS[0] not in ok(avain(populated, "--as", actor, "client", "show", MINE)).stdout
    assert counts(populated) == before  # nothing identifying was read, nothing logged
    assert_refused(avain(populated, "--as", actor, "client", "show", THEIRS),
                   "evaluators see only consenting clients' pseudonymous data")
    assert_refused(avain(populated, "--as", "evaluator", "client", "show", MINE),
                   "--as: an evaluator reads per-pilot and per-client data only under their own id")


def test_client_list_shows_what_the_acting_user_may_see(populated):
    def codes(*actor):
        return sorted(c["code"] for c in as_json(avain(populated, *actor, "client", "list", "--json")))

    assert codes() == sorted([MINE, THEIRS])
    assert codes("--as", "worker:example-01") == [MINE]
    assert codes("--as", "worker:example-03") == [THEIRS]
    assert codes("--as", "supervisor:example-02") == [MINE]
    assert codes("--as", "evaluator:example-05") == []  # no client has consented to the evaluation
    assert codes("--as", "assistant:example-06") == []
    assert codes("--as", f"client:{MINE}") == [MINE]
    text = ok(avain(populated, "client", "list")).stdout
    assert MINE in text and THEIRS in text


def test_client_end_and_assist(populated):
    ok(avain(populated, "client", "assist", MINE, "--assistant", "example-06"))
    assert [c["code"] for c in as_json(avain(populated, "--as", "assistant:example-06", "client",
                                              "list", "--json"))] == [MINE]
    ended = as_json(avain(populated, "client", "end", MINE, "--date", "2030-01-31", "--json"))
    assert ended["ended_on"] == "2030-01-31"
    assert [c["code"] for c in as_json(avain(populated, "client", "list", "--json"))] == [THEIRS]
    every = as_json(avain(populated, "client", "list", "--all", "--json"))
    assert sorted(c["code"] for c in every) == sorted([MINE, THEIRS])
    assert_refused(avain(populated, "client", "end", MINE), f"client {MINE} ended on 2030-01-31 already")


def test_client_phone_is_set_by_the_worker_or_the_client_and_never_printed_or_logged(populated):
    changed = as_json(avain(populated, "--as", "worker:example-01", "client", "phone", MINE, "040 765 4321",
                            "--json"))
    assert changed == {"code": MINE, "phone": "set", "changed": True}
    shown = as_json(avain(populated, "client", "show", MINE, "--reason", "check", "--json"))
    assert shown["phone"] == "on record"  # the number itself is never shown
    again = ok(avain(populated, "--as", f"client:{MINE}", "client", "phone", MINE, "+358407654321"))
    assert again.stdout == f"{MINE}: phone number set (unchanged)\n"
    assert_refused(avain(populated, "--as", "worker:example-03", "client", "phone", MINE, "0401234567"),
                   "example-03")
    assert_refused(avain(populated, "--as", "finance", "client", "phone", MINE, "0401234567"), "not allowed")
    assert_refused(avain(populated, "client", "phone", MINE, "12"), "PHONE: not a phone number")
    assert "not both" in avain(populated, "client", "phone", MINE, "0401234567", "--remove").stderr
    assert ok(avain(populated, "client", "phone", MINE, "--remove")).stdout == f"{MINE}: phone number removed\n"
    assert as_json(avain(populated, "client", "show", MINE, "--reason", "check", "--json"))["phone"] is None
    log = as_json(avain(populated, "audit", "log", "--subject", MINE, "--json"))
    assert [e["action"] for e in log if e["action"].startswith("client.phone")] == [
        "client.phone_set", "client.phone_removed"]
    # what an event records, not when: a timestamp's microseconds may hold "765" by chance
    recorded = [json.dumps({k: v for k, v in e.items() if k not in ("at", "seq")}) for e in log]
    assert all("765" not in r and "4321" not in r for r in recorded)


# --- audit, plugins, version -------------------------------------------------------------


def test_audit_log_and_verify(populated):
    text = ok(avain(populated, "audit", "log")).stdout
    assert "client.enrolled" in text and "worker.added" in text
    events = as_json(avain(populated, "audit", "log", "--json"))
    assert {e["action"] for e in events} >= {"pilot.added", "worker.added", "client.enrolled"}
    mine = as_json(avain(populated, "audit", "log", "--subject", MINE, "--json"))
    assert [e["action"] for e in mine] == ["client.enrolled"]
    verified = as_json(avain(populated, "audit", "verify", "--json"))
    assert {k: verified[k] for k in ("ok", "events", "problems")} == {"ok": True, "events": len(events),
                                                                      "problems": []}
    assert verified["checkpoints"] > 0 and verified["checkpoint_file"].endswith(".checkpoints")
    assert ok(avain(populated, "audit", "verify")).stdout.strip() == (
        f"audit trail intact: {len(events)} events")


def test_audit_verify_exits_1_when_the_trail_was_altered(populated):
    sql(populated, "UPDATE audit_event SET actor = 'someone' WHERE subject = ?", MINE)
    result = avain(populated, "audit", "verify")
    assert result.exit_code == 1
    assert f"stream {MINE}: event 1 has been altered" in result.stdout
    data = json.loads(avain(populated, "audit", "verify", "--json").stdout)
    assert data["ok"] is False and data["problems"] == [f"stream {MINE}: event 1 has been altered"]


def test_audit_log_is_for_the_administrator_and_the_client_themself(populated):
    assert_refused(avain(populated, "--as", "worker:example-01", "audit", "log"),
                   "worker is not allowed to audit.read")
    own = as_json(avain(populated, "--as", f"client:{MINE}", "audit", "log", "--json"))
    assert {e["subject"] for e in own} == {MINE}


def test_plugin_list(db):
    plugins = as_json(avain(db, "plugin", "list", "--json"))
    by_name = {p["name"]: p for p in plugins}
    assert by_name["defaults"]["source"] == "core"
    assert by_name["example_pilot"] == {
        "name": "example_pilot", "source": "built-in", "module": "avain.plugins.example_pilot",
        "hooks": sorted(by_name["example_pilot"]["hooks"])}
    assert "avain_pilots" in by_name["example_pilot"]["hooks"]
    assert "example_pilot" in ok(avain(db, "plugin", "list")).stdout
    assert not db.exists()  # listing plugins needs no database


def test_version(db):
    assert ok(avain(db, "--version")).stdout.strip() == f"avain, version {version('avain')}"


# --- --json: exactly one JSON document --------------------------------------------------

RECEIPTS_PILOT = """\
id = "receipts"
name = "A pilot where clients confirm receipt"
code = "RC"

[[groups]]
id = "adults"
code = "A"
name = "Adults"

[workflow]
confirm_receipt = true

[budget]
default_monthly = 10000
months_open = 2
"""

PROVIDER = "1572860-0"
OTHER_PROVIDER = "0737546-2"
STATUTORY = ("prepayment_register", "provider_register", "service_level", "liability_insurance")


def checks(*criteria: str) -> list[str]:
    return [a for c in criteria for a in ("--check", f"{c}=document seen@2017-12-01")]


@pytest.fixture(scope="module")
def busy_template(populated_template, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The populated database with a month of work in it: two providers (one approved and
    priced), a plan and a decision for MINE, January 2018 open, proposals in every state,
    commitments pending and posted, invoices recorded, approved and paid, and a second
    pilot whose clients confirm receipt. Returns the file and the ids the recipes need."""
    folder = tmp_path_factory.mktemp("busy")
    path = folder / "avain.db"
    shutil.copy(populated_template, path)
    shutil.copy(populated_template.with_name("avain.db.checkpoints"), folder / "avain.db.checkpoints")

    def run(*args):
        return as_json(avain(path, *args, "--json"))

    worker, client = ("--as", "worker:example-01"), ("--as", f"client:{MINE}")
    run("provider", "add", "--ytunnus", PROVIDER, "--name", "Siivouspalvelu Oy", "--iban", "FI2112345600000785",
        "--area", "Kajaani")
    run("provider", "add", "--ytunnus", OTHER_PROVIDER, "--name", "Kotiapu Ry", "--area", "Kajaani")
    run("provider", "update", OTHER_PROVIDER, "--iban", "FI5542345670000081")  # its first IBAN: in force
    run("provider", "update", OTHER_PROVIDER, "--iban", "FI1410093000123458")  # a change: for a second person
    run("worker", "add", "--pilot", "example", "--code", "08", "--name", "F", "--role", "finance")
    run("provider", "approve", PROVIDER, "--pilot", "example", "--service", "cleaning", "--service", "meals",
        "--from", "2017-12-01", *checks(*STATUTORY, "hb_training"))
    prices = write(folder, "prices.csv", "provider,service,price,valid_from\n"
                                         f"{PROVIDER},cleaning,50.00,2017-01-01\n{PROVIDER},meals,9.50,2017-01-01\n")
    run("catalogue", "import", str(prices))
    run(*worker, "plan", "set", MINE, "--from", "2018-01-01", "--item", "cleaning=4", "--item", "meals=10")
    run(*worker, "decision", "grant", MINE, "--from", "2018-01-01", "--to", "2018-12-31")
    run("--as", "finance:example-04", "budget", "open-period", "--pilot", "example", "2018-01")

    def purchase():
        return run(*client, "proposal", "create", MINE, "--service", "cleaning", "--provider", PROVIDER,
                   "--amount", "35", "--date", "2018-01-15")["id"]

    def approve(proposal):
        return run(*worker, "proposal", "approve", str(proposal))["commitment"]

    def invoice(commitment, number):
        return run("--as", "finance:example-04", "invoice", "record", "--provider", PROVIDER, "--number", number,
                   "--amount", "35", "--ref", commitment["reference"], "--date", "2018-01-20")["id"]

    pending = approve(purchase())
    recorded = invoice(approve(purchase()), "INV-1")
    paid = invoice(approve(purchase()), "INV-3")
    run("--as", "supervisor:example-02", "invoice", "approve", str(paid))
    first = run("--as", "finance:example-04", "pay", "batch", "--pilot", "example", "--date", "2018-01-31")
    run("--as", "finance:example-04", "pay", "confirm", str(first["id"]))
    batched = invoice(approve(purchase()), "INV-2")
    run("--as", "supervisor:example-02", "invoice", "approve", str(batched))
    prepared = run("--as", "finance:example-04", "pay", "batch", "--pilot", "example", "--date", "2018-02-05")
    approved = invoice(approve(purchase()), "INV-4")
    run("--as", "supervisor:example-02", "invoice", "approve", str(approved))
    unmatched = write(folder, "unmatched.xml", finvoice_samples.make(
        seller_id=PROVIDER, number="E-404", amount=4000, reference="1232").decode())
    imported = run("--as", "finance:example-04", "invoice", "import", str(unmatched))
    queued = imported["imported"][0]["queued"][0]["review"]
    open_proposal = purchase()
    letter = write(folder, "letter.txt", "Liitteenä lääkärin lausunto.")
    attachment = run("--as", f"client:{MINE}", "message", "send", MINE, "--text", "Voinko ostaa ateriat tältä "
                     "tuottajalta?", "--ref", f"proposal:{open_proposal}", "--attach", str(letter))["attachments"][0]
    run("--as", "worker:example-01", "client", "consent", MINE, "--purpose", "dialogue", "--date", "2018-01-02")
    run("--as", "worker:example-01", "client", "consent", MINE, "--purpose", "evaluation", "--date", "2018-01-02")
    run("--as", "worker:example-01", "eval", "record", MINE, "--instrument", "kykyviisari", "--point", "start",
        "--date", dt.date.today().isoformat(), "--answer", "work_ability=6", "--answer", "mind_01=3")

    run("pilot", "add", str(write(folder, "receipts.toml", RECEIPTS_PILOT)))
    run("worker", "add", "--pilot", "receipts", "--code", "01", "--name", "R")
    run("worker", "add", "--pilot", "receipts", "--code", "04", "--name", "F", "--role", "finance")
    receipt_client = run("client", "enroll", "--pilot", "receipts", "--hetu", HETUS[4], "--name", "R",
                         "--worker", "receipts-01", "--date", "2017-12-01")["code"]
    run("provider", "approve", PROVIDER, "--pilot", "receipts", "--service", "cleaning", "--from", "2017-12-01",
        *checks(*STATUTORY))
    as_receipts_worker = ("--as", "worker:receipts-01")
    run(*as_receipts_worker, "plan", "set", receipt_client, "--from", "2018-01-01", "--item", "cleaning=2")
    run(*as_receipts_worker, "decision", "grant", receipt_client, "--from", "2018-01-01", "--to", "2018-12-31",
        "--amount", "100")
    run("--as", "finance:receipts-04", "budget", "open-period", "--pilot", "receipts", "2018-01")
    proposal = run("--as", f"client:{receipt_client}", "proposal", "create", receipt_client, "--service",
                   "cleaning", "--provider", PROVIDER, "--amount", "20", "--date", "2018-01-20")["id"]
    to_confirm = run(*as_receipts_worker, "proposal", "approve", str(proposal))["commitment"]

    facts = {"pending_commitment": pending["id"], "pending_ref": pending["reference"],
             "recorded_invoice": recorded, "approved_invoice": approved, "paid_invoice": paid,
             "prepared_batch": prepared["id"], "prepared_message": prepared["message_id"], "review_item": queued,
             "paid_transfer": f"pay:{paid}", "open_proposal": open_proposal,
             "receipt_client": receipt_client, "receipt_commitment": to_confirm["id"],
             "attachment": attachment["id"]}
    return path, {k: str(v) for k, v in facts.items()}


@pytest.fixture
def busy(tmp_path, busy_template) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "avain.db"
    shutil.copy(busy_template[0], path)
    shutil.copy(busy_template[0].with_name("avain.db.checkpoints"), tmp_path / "avain.db.checkpoints")
    return path, busy_template[1]


#: How to run each command that takes --json: on the populated database (people,
#: pilots, audit) ...
SHIPPED_PILOTS = ["eksote", "example", "example-epassi", "example-psop", "hameenlinna", "kainuu-respite",
                  "kainuu-voucher", "pori", "tampere", "vantaa"]

JSON_RECIPES: dict[str, list[str]] = {
    "avain init": ["init"],
    "avain db upgrade": ["db", "upgrade"],
    "avain pilot list": ["pilot", "list"],
    "avain pilot show": ["pilot", "show", "example"],
    "avain pilot check": ["pilot", "check", "{example_toml}"],
    "avain pilot add": ["pilot", "add", "{other_toml}"],
    "avain worker add": ["worker", "add", "--pilot", "example", "--code", "07", "--name", "N"],
    "avain worker list": ["worker", "list"],
    "avain client enroll": ["client", "enroll", "--pilot", "example", "--hetu", HETUS[2], "--name", "N",
                            "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes"],
    "avain client show": ["client", "show", MINE],
    "avain client find": ["client", "find", "--name", "testi", "--reason", "phone call"],
    "avain client assess": ["--as", "worker:example-01", "client", "assess", MINE, "--assess", "carer_contract=yes"],
    "avain worker deactivate": ["worker", "deactivate", "example-03", "--reassign-to", "example-01"],
    "avain client list": ["client", "list"],
    "avain client end": ["client", "end", THEIRS],
    "avain client assist": ["client", "assist", MINE, "--assistant", "example-06"],
    "avain client phone": ["client", "phone", MINE, "0401234567"],
    "avain client language": ["client", "language", MINE, "sv"],
    "avain client expire": ["client", "expire", "--pilot", "kainuu-voucher", "--date", "2019-01-01"],
    "avain audit log": ["audit", "log"],
    "avain audit verify": ["audit", "verify"],
    "avain audit checkpoint": ["audit", "checkpoint"],
    "avain plugin list": ["plugin", "list"],
    "avain plugin new": ["plugin", "new", "river_town", "--dir", "{tmp_dir}"],
    "avain client consent": ["--as", "worker:example-01", "client", "consent", MINE, "--purpose", "evaluation",
                             "--date", "2018-01-02"],
    "avain eval instruments": ["eval", "instruments"],
}

#: ... and on the busy one (decisions, budgets, purchases; {…} are its ids). A command
#: with --json that is in neither fails test_every_json_command_has_a_recipe.
WORKFLOW_RECIPES: dict[str, list[str]] = {
    "avain demo": ["demo", "--reset", "--pilot", "example", "--clients", "1"],
    "avain decision grant": ["--as", "worker:example-03", "decision", "grant", THEIRS, "--from", "2018-01-01",
                             "--to", "2018-06-30", "--amount", "150"],
    "avain decision show": ["decision", "show", MINE],
    "avain pilot update": ["pilot", "update", "{receipts_v2}"],
    "avain decision amend": ["--as", "worker:example-01", "decision", "amend", "1", "--from", "2018-03-01",
                             "--amount", "250", "--reason", "more hours of care"],
    "avain decision end": ["--as", "worker:example-01", "decision", "end", "1", "--on", "2018-06-30",
                           "--reason", "moved to another municipality"],
    "avain decision explain": ["decision", "explain", MINE, "--period", "2018-02"],
    "avain budget open-period": ["--as", "finance:receipts-04", "budget", "open-period", "--pilot", "receipts",
                                 "2018-02"],
    "avain budget close-period": ["--as", "finance:example-04", "budget", "close-period", "--pilot", "example",
                                  "2018-01"],
    "avain budget show": ["budget", "show", "--pilot", "example"],
    "avain ledger balance": ["ledger", "balance", MINE],
    "avain ledger statement": ["ledger", "statement", MINE, "--period", "2018-01"],
    "avain ledger verify": ["ledger", "verify"],
    "avain ledger correct": ["--as", "finance:example-04", "ledger", "correct", "{paid_transfer}", "--reason",
                             "paid to the wrong account"],
    "avain provider add": ["provider", "add", "--ytunnus", "2345678-0", "--name", "Ateriapalvelu Oy",
                           "--area", "Sotkamo"],
    "avain provider list": ["provider", "list"],
    "avain provider show": ["provider", "show", PROVIDER],
    "avain provider update": ["provider", "update", PROVIDER, "--bic", "NDEAFIHH"],
    "avain provider approve-bank": ["--as", "finance:example-08", "provider", "approve-bank", OTHER_PROVIDER],
    "avain provider approve": ["provider", "approve", OTHER_PROVIDER, "--pilot", "example", "--service", "meals",
                               "--from", "2018-01-01", *checks(*STATUTORY, "hb_training")],
    "avain provider revoke": ["provider", "revoke", PROVIDER, "--pilot", "example", "--reason",
                              "liability insurance lapsed", "--date", "2018-02-01"],
    "avain catalogue services": ["catalogue", "services"],
    "avain catalogue import": ["catalogue", "import", "{prices_csv}"],
    "avain catalogue export": ["catalogue", "export", "--date", "2018-01-15"],
    "avain catalogue search": ["catalogue", "search", "--service", "cleaning", "--date", "2018-01-15"],
    "avain catalogue rate": ["--as", f"client:{MINE}", "catalogue", "rate", "{paid_invoice}", "--stars", "4"],
    "avain plan set": ["--as", "worker:example-01", "plan", "set", MINE, "--from", "2018-02-01",
                       "--item", "cleaning=2"],
    "avain plan show": ["plan", "show", MINE],
    "avain proposal create": ["--as", f"client:{MINE}", "proposal", "create", MINE, "--service", "meals",
                              "--provider", PROVIDER, "--amount", "12,50", "--date", "2018-01-20",
                              "--text", "lunch deliveries"],
    "avain proposal approve": ["--as", "worker:example-01", "proposal", "approve", "{open_proposal}"],
    "avain proposal reject": ["--as", "worker:example-01", "proposal", "reject", "{open_proposal}",
                              "--reason", "not in the plan"],
    "avain proposal list": ["proposal", "list"],
    "avain commitment list": ["commitment", "list"],
    "avain commitment cancel": ["--as", "worker:example-01", "commitment", "cancel", "{pending_commitment}"],
    "avain commitment expire": ["--as", "finance:example-04", "commitment", "expire", "--date", "2100-01-01"],
    "avain commitment close": ["--as", "worker:example-01", "commitment", "close", "{pending_commitment}"],
    "avain commitment confirm": ["--as", "client:{receipt_client}", "commitment", "confirm",
                                 "{receipt_commitment}"],
    "avain invoice record": ["--as", "finance:example-04", "invoice", "record", "--provider", PROVIDER, "--number",
                             "INV-9", "--amount", "35", "--ref", "{pending_ref}"],
    "avain invoice approve": ["--as", "supervisor:example-02", "invoice", "approve", "{recorded_invoice}"],
    "avain invoice list": ["invoice", "list"],
    "avain invoice import": ["--as", "finance:example-04", "invoice", "import", "{finvoice}"],
    "avain invoice queue": ["invoice", "queue"],
    "avain invoice resolve": ["--as", "finance:example-04", "invoice", "resolve", "{review_item}", "--note",
                              "asked the provider for the right reference"],
    "avain pay batch": ["--as", "finance:example-04", "pay", "batch", "--pilot", "example", "--date", "2018-02-28"],
    "avain pay confirm": ["--as", "finance:example-04", "pay", "confirm", "{prepared_batch}"],
    "avain pay cancel": ["--as", "finance:example-04", "pay", "cancel", "{prepared_batch}"],
    "avain pay list": ["pay", "list"],
    "avain pay import": ["--as", "finance:example-04", "pay", "import", "{bank_status}"],
    "avain message send": ["--as", f"client:{MINE}", "message", "send", MINE, "--text", "Kiitos!", "--ref",
                           "proposal:{open_proposal}"],
    "avain message thread": ["--as", "worker:example-01", "message", "thread", MINE],
    "avain message inbox": ["--as", "worker:example-01", "message", "inbox"],
    "avain message stats": ["message", "stats"],
    "avain message rotate-key": ["message", "rotate-key"],
    "avain message attachment": ["--as", "worker:example-01", "message", "attachment", "{attachment}", "--out",
                                 "{tmp_dir}/files"],
    "avain message dialogue": ["--as", "evaluator:example-05", "message", "dialogue", MINE],
    "avain eval record": ["--as", "worker:example-01", "eval", "record", MINE, "--instrument", "osallisuustesti",
                          "--point", "start", "--date", "{today}", "--answer", "item_01=4", "--answer", "item_02=3"],
    "avain eval responses": ["eval", "responses", MINE],
    "avain eval import": ["eval", "import", "{survey_csv}", "--instrument", "osallisuustesti"],
    "avain eval timelog": ["--as", "worker:example-01", "eval", "timelog", MINE, "--activity", "planning",
                           "--minutes", "30", "--date", "{today}"],
    "avain eval report": ["eval", "report", "--pilot", "example", "--out", "{tmp_dir}/report"],
    "avain eval export": ["--as", "evaluator:example-05", "eval", "export", "--out", "{tmp_dir}/export"],
    "avain decision letter": ["--as", "worker:example-01", "decision", "letter", MINE, "--out", "{tmp_dir}/letters"],
    "avain commitment letter": ["--as", "finance", "commitment", "letter", "{pending_commitment}", "--out",
                                "{tmp_dir}/letters"],
    "avain ledger letter": ["ledger", "letter", MINE, "--period", "2018-01", "--out", "{tmp_dir}/letters"],
}


def json_commands() -> list[str]:
    found = []

    def walk(cmd: click.Command, ctx: click.Context, path: str) -> None:
        if any(isinstance(p, click.Option) and "--json" in p.opts for p in cmd.params):
            found.append(path)
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, click.Context(sub, parent=ctx, info_name=name), f"{path} {name}")

    walk(cli, click.Context(cli, info_name="avain"), "avain")
    return found


#: Commands of the payment-backend plugins need their service (a simulator) running: each
#: --json output is parsed as one document in the named test of the plugin's own suite.
RAIL_JSON_TESTS: dict[str, str] = {
    "avain epassi charge": "test_payment_epassi.py::test_the_epassi_commands",
    "avain epassi cancel": "test_payment_epassi.py::test_the_epassi_commands",
    "avain epassi import": "test_payment_epassi.py::test_the_epassi_commands",
    "avain epassi reconcile": "test_payment_epassi.py::test_the_epassi_commands",
    "avain psop import": "test_payment_psop.py::test_cli_import_reconcile_and_batch",
    "avain psop reconcile": "test_payment_psop.py::test_cli_import_reconcile_and_batch",
    "avain psop simulator batch": "test_payment_psop.py::test_cli_import_reconcile_and_batch",
}


@pytest.mark.parametrize("path", sorted(RAIL_JSON_TESTS))
def test_rail_json_commands_are_parsed_in_their_plugin_tests(path):
    """The named test exists and parses the command's --json output with json.loads."""
    file, name = RAIL_JSON_TESTS[path].split("::")
    source = (Path(__file__).parents[1] / "plugins" / file).read_text(encoding="utf-8")
    body = source.split(f"def {name}(", 1)[1].split("\ndef ", 1)[0]
    *_, group, command = path.split()
    calls = [c for c in body.split("json.loads(")[1:] if f'"{command}"' in c.split("\n")[0] + c[:300]]
    assert any(f'"{group}"' in c[:300] and '"--json"' in c[:300] for c in calls), \
        f"{RAIL_JSON_TESTS[path]} does not parse `{path} --json`"


def test_every_json_command_has_a_recipe():
    commands = set(json_commands())
    recipes = set(JSON_RECIPES) | set(WORKFLOW_RECIPES) | set(RAIL_JSON_TESTS)
    missing = sorted(commands - recipes)
    assert not missing, f"add these commands to JSON_RECIPES or WORKFLOW_RECIPES: {missing}"
    assert not recipes - commands, f"recipes for commands that do not exist: {sorted(recipes - commands)}"


def _run_recipe(db: Path, recipe: list[str], facts: dict[str, str], tmp_path: Path):
    today = dt.date.today().isoformat()
    files = {"example_toml": EXAMPLE_TOML, "other_toml": write(tmp_path, "other.toml", OTHER_PILOT),
             "receipts_v2": write(tmp_path, "receipts.toml", RECEIPTS_PILOT.replace("10000", "12000")),
             "tmp_dir": tmp_path, "today": today,
             "survey_csv": write(tmp_path, "survey.csv", f"client,point,answered_on,item_01,item_02\n"
                                                         f"{THEIRS},start,{today},4,5\n"),
             "prices_csv": write(tmp_path, "prices.csv", f"provider,service,price,valid_from\n"
                                                         f"{OTHER_PROVIDER},meals,9.00,2018-01-01\n")}
    if "pending_ref" in facts:
        files["finvoice"] = write(tmp_path, "invoice.xml", finvoice_samples.make(
            seller_id=PROVIDER, number="E-1", amount=3500, reference=facts["pending_ref"]).decode())
    if "prepared_message" in facts:
        files["bank_status"] = write(tmp_path, "pain002.xml", bank_samples.pain002(
            facts["prepared_message"], group_status="ACCP").decode())
    args = [a.format(**files, **facts) for a in recipe]
    result = avain(db, *args, "--json")
    data = as_json(result)  # json.loads of the whole of stdout
    assert isinstance(data, dict | list) and data


@pytest.mark.parametrize("path", sorted(JSON_RECIPES))
def test_json_output_is_exactly_one_document(path, populated, tmp_path):
    _run_recipe(populated, JSON_RECIPES[path], {}, tmp_path)


@pytest.mark.parametrize("path", sorted(WORKFLOW_RECIPES))
def test_workflow_json_output_is_exactly_one_document(path, busy, tmp_path):
    db, facts = busy
    _run_recipe(db, WORKFLOW_RECIPES[path], facts, tmp_path)


# --- refusals: exit 1, one line naming the field or file, nothing written -----------------

ENROLL = ["client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01",
          "--group", "family", "--assess", "carer_contract=yes"]


@pytest.mark.parametrize("args, needle", [
    pytest.param([*ENROLL, "--hetu", "010594Y123X"], "--hetu: not a valid henkilötunnus", id="hetu-checksum"),
    pytest.param([*ENROLL, "--hetu", "320194-123W"], "--hetu: not a valid henkilötunnus", id="hetu-date"),
    pytest.param([*ENROLL, "--hetu", "12345"], "--hetu: not a valid henkilötunnus", id="hetu-format"),
    pytest.param([*ENROLL, "--hetu", "311299A9008"], "--hetu: temporary numbers", id="hetu-temporary"),
    pytest.param([*ENROLL, "--hetu", HETUS[0]], "--hetu: this person is already a client", id="hetu-twice"),
    pytest.param(["client", "enroll", "--pilot", "nope", "--hetu", HETUS[2], "--name", "N",
                  "--worker", "example-01"], "--pilot: no pilot 'nope'", id="unknown-pilot"),
    pytest.param(["client", "enroll", "--pilot", "example", "--hetu", HETUS[2], "--name", "N",
                  "--worker", "example-77", "--group", "family"], "--worker: no worker 'example-77'",
                 id="unknown-worker"),
    pytest.param(["client", "enroll", "--pilot", "example", "--hetu", HETUS[2], "--name", "N",
                  "--worker", "example-05", "--group", "family"], "--worker: example-05 is a evaluator",
                 id="not-a-personal-worker"),
    pytest.param(["client", "enroll", "--pilot", "example", "--hetu", HETUS[2], "--name", "N",
                  "--worker", "example-01", "--group", "kids"], "--group: 'kids'", id="unknown-group"),
    pytest.param(["client", "enroll", "--pilot", "example", "--hetu", HETUS[2], "--name", "N",
                  "--worker", "example-01", "--group", "family"], "family-carer contract is required",
                 id="not-eligible"),
    pytest.param(["--as", "worker:example-01", "client", "enroll", "--pilot", "example", "--hetu", HETUS[2],
                  "--name", "N", "--worker", "example-03", "--group", "family", "--assess",
                  "carer_contract=yes"], "for themself only", id="enroll-for-another-worker"),
    pytest.param(["worker", "add", "--pilot", "example", "--code", "01", "--name", "N"],
                 "--code: pilot example has a worker with code 01 already", id="worker-code-twice"),
    pytest.param(["worker", "add", "--pilot", "example", "--code", "abc", "--name", "N"], "--code: 'abc'",
                 id="worker-code-format"),
    pytest.param(["worker", "add", "--pilot", "nope", "--code", "09", "--name", "N"], "--pilot: no pilot",
                 id="worker-unknown-pilot"),
    pytest.param(["worker", "add", "--pilot", "example", "--code", "09", "--name", "N", "--supervisor",
                  "example-03"], "--supervisor: example-03 is not a supervisor", id="worker-bad-supervisor"),
    pytest.param(["--as", "worker:example-01", "worker", "add", "--pilot", "example", "--code", "09",
                  "--name", "N"], "worker is not allowed to worker.add", id="worker-add-not-admin"),
    pytest.param(["client", "show", "EX-F-99-999"], "no client 'EX-F-99-999'", id="unknown-client"),
    pytest.param(["--as", "worker:example-03", "client", "show", MINE], f"may not client read {MINE}",
                 id="another-workers-client"),
    pytest.param(["client", "show", MINE, "--reason", " "], "--reason", id="identity-without-reason"),
    pytest.param(["--as", "worker:example-99", "client", "list"], "--as: no worker 'example-99'",
                 id="acting-as-nobody"),
    pytest.param(["--as", "worker:example-02", "client", "list"], "--as: example-02 is a supervisor",
                 id="acting-in-the-wrong-role"),
    pytest.param(["pilot", "show", "nope"], "ID: no pilot 'nope'", id="pilot-show-unknown"),
    pytest.param(["pilot", "add", "{missing}"], "nope.toml: no such file", id="pilot-file-missing"),
    pytest.param(["pilot", "add", "{broken}"], "broken.toml: not valid TOML", id="pilot-malformed-toml"),
    pytest.param(["pilot", "check", "{broken}"], "broken.toml: not valid TOML", id="pilot-check-malformed"),
])
def test_bad_input_is_refused_with_one_line_and_writes_nothing(populated, tmp_path, args, needle):
    broken = write(tmp_path, "broken.toml", 'id = "x"\nname = \n')
    args = [a.format(missing=tmp_path / "nope.toml", broken=broken) for a in args]
    before = counts(populated)
    result = avain(populated, *args)
    line = assert_refused(result, needle)
    assert counts(populated) == before
    # Neither the henkilötunnus typed nor a stored name is ever repeated.
    secrets = ["Testi Asiakas"] + [args[i + 1] for i, a in enumerate(args) if a == "--hetu"]
    for secret in secrets:
        assert secret not in result.output, line


def test_schema_violations_are_refused_each_on_a_line_with_the_file_and_key(populated, tmp_path):
    bad = write(tmp_path, "bad.toml", BAD_PILOT)
    before = counts(populated)
    result = avain(populated, "pilot", "add", str(bad))
    assert result.exit_code == 1 and result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert f"{bad}: budget.monthly_cap: -5 is less than the minimum of 0" in lines
    assert counts(populated) == before


@pytest.mark.parametrize("url, needle", [
    ("postgresql+psycopg://nobody@127.0.0.1:1/x", "cannot reach the database postgresql+psycopg://nobody@127.0.0.1:1/x"),
    ("mysql://nobody@127.0.0.1/x", "--db: mysql://nobody@127.0.0.1/x uses 'mysql'"),
])
def test_an_unusable_database_url_is_refused(url, needle):
    for args in (["pilot", "list"], ["init"]):
        assert_refused(avain(url, *args), needle)


def test_an_older_schema_asks_for_db_upgrade_and_db_upgrade_fixes_it(db):
    from alembic import command
    from alembic.script import ScriptDirectory

    revisions = [r.revision for r in ScriptDirectory.from_config(dbmod.alembic_config()).walk_revisions()]
    oldest, head = revisions[-1], revisions[0]
    assert oldest != head, "needs two migrations"
    engine = dbmod.make_engine(f"sqlite:///{db}")
    command.upgrade(dbmod.alembic_config(engine), oldest)
    engine.dispose()
    before = counts(db)
    assert_refused(avain(db, "pilot", "list"),
                   f"has an older schema ({oldest}, this avain needs {head})", "run `avain db upgrade`")
    assert counts(db) == before
    upgraded = as_json(avain(db, "db", "upgrade", "--json"))
    assert (upgraded["from"], upgraded["to"], upgraded["pilots_loaded"]) == (oldest, head, SHIPPED_PILOTS)
    assert [p["id"] for p in as_json(avain(db, "pilot", "list", "--json"))] == SHIPPED_PILOTS


def test_a_schema_from_a_newer_avain_is_refused(populated):
    sql(populated, "UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    before = counts(populated)
    assert_refused(avain(populated, "client", "list"),
                   "was written by a newer avain (schema ffff_from_the_future)", "upgrade avain")
    assert counts(populated) == before


def test_a_database_that_is_not_avains_is_refused(populated):
    sql(populated, "DELETE FROM alembic_version")
    before = counts(populated)
    assert_refused(avain(populated, "client", "list"), "holds tables that are not avain's")
    assert counts(populated) == before


@pytest.mark.parametrize("command", [["init"], ["db", "upgrade"]])
@pytest.mark.parametrize("damage, needle", [
    ("UPDATE alembic_version SET version_num = 'ffff_from_the_future'", "newer avain"),
    ("DELETE FROM alembic_version", "not avain's"),
])
def test_init_and_db_upgrade_refuse_a_database_they_cannot_upgrade(populated, command, damage, needle):
    sql(populated, damage)
    before = counts(populated)
    assert_refused(avain(populated, *command), needle)
    assert counts(populated) == before


# --- usage errors: exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["--as", "boss", "pilot", "list"], "--as"),
    (["--as", "worker", "client", "list"], "--as"),
    (["client", "enroll", "--pilot", "example", "--name", "N", "--worker", "example-01"], "--hetu -"),
    (["client", "enroll", "--pilot", "example", "--hetu", "x", "--name", "N", "--worker", "w",
      "--assess", "no-equals-sign"], "--assess"),
    (["worker", "add", "--pilot", "example", "--code", "09", "--name", "N", "--role", "boss"], "--role"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_errors_exit_2(populated, args, needle):
    before = counts(populated)
    result = avain(populated, *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert counts(populated) == before


# --- the dialogue on the command line ------------------------------------------------------


def test_a_dialogue_on_the_command_line(populated, tmp_path):
    me = ("--as", f"client:{MINE}")
    worker = ("--as", "worker:example-01")
    letter = write(tmp_path, "kirje.txt", "Hei, liitteenä kirje.")
    sent = as_json(avain(populated, *me, "message", "send", MINE, "--text", "Voinko siirtää käynnin?", "--attach",
                         str(letter), "--json"))
    assert sent["attachments"][0]["name"] == "kirje.txt"
    inbox = ok(avain(populated, *worker, "message", "inbox"))
    assert MINE in inbox.stdout and "Threads waiting for an answer" in inbox.stdout
    shown = ok(avain(populated, *worker, "message", "thread", MINE))
    assert "Voinko siirtää käynnin?" in shown.stdout and "attachment 1: kirje.txt" in shown.stdout
    # a reply from standard input; markup in a message is printed as written
    ok(RUNNER.invoke(cli, ["--db", str(populated), *worker, "message", "send", MINE, "--text", "-"],
                     input="[bold]Kyllä[/bold] voi.\n"))
    assert "[bold]Kyllä[/bold] voi." in ok(avain(populated, *me, "message", "thread", MINE)).stdout
    assert "no thread is waiting" in ok(avain(populated, *worker, "message", "inbox")).stdout
    saved = as_json(avain(populated, *worker, "message", "attachment", str(sent["attachments"][0]["id"]), "--out",
                          str(tmp_path / "in"), "--json"))
    assert Path(saved["file"]).read_text() == "Hei, liitteenä kirje."
    again = avain(populated, *worker, "message", "attachment", str(sent["attachments"][0]["id"]), "--out",
                  str(tmp_path / "in"))
    assert again.exit_code == 1 and "exists; choose another folder" in again.stderr
    stats = as_json(avain(populated, "message", "stats", "--json"))
    assert stats["total"]["questions"] == 1 and stats["total"]["answered"] == 1
    assert "Answers to client questions" in ok(avain(populated, "message", "stats")).stdout


def test_outsiders_and_bad_messages_are_refused_on_the_command_line(populated, tmp_path):
    before = counts(populated)
    for args, words in [
        (("--as", "worker:example-03", "message", "thread", MINE), f"worker:example-03 is not a participant of "
                                                                    f"{MINE}'s dialogue"),
        (("message", "thread", MINE), "admin is not a participant of any client's dialogue"),
        (("--as", "worker:example-03", "message", "send", MINE, "--text", "Hei"), "not a participant"),
        (("--as", f"client:{MINE}", "message", "send", MINE, "--text", "   "), "--text: the message is empty"),
        (("--as", f"client:{MINE}", "message", "send", MINE, "--text", "x" * 5001), "the limit is 5 000"),
        (("--as", f"client:{MINE}", "message", "send", MINE, "--text", "Hei", "--ref", "proposal:999"),
         f"--ref: {MINE} has no proposal 999"),
        (("--as", "evaluator:example-05", "message", "dialogue", MINE),
         "evaluators see only consenting clients' pseudonymous data"),
    ]:
        result = avain(populated, *args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.stderr and "Traceback" not in result.output
    big = tmp_path / "big.bin"
    big.write_bytes(b"0" * (5 * 1024 * 1024 + 1))
    result = avain(populated, "--as", f"client:{MINE}", "message", "send", MINE, "--text", "Hei", "--attach", str(big))
    assert result.exit_code == 1 and f"--attach: {big} is 5.0 MiB; the limit is 5 MiB" in result.stderr
    result = avain(populated, "--as", f"client:{MINE}", "message", "send", MINE, "--text", "Hei", "--attach",
                   str(tmp_path / "missing.pdf"))
    assert result.exit_code == 2 and "missing.pdf" in result.stderr
    assert counts(populated) == before


def test_only_regular_files_are_attached_and_none_is_read_past_the_limit(populated, tmp_path):
    import contextlib
    import os
    import threading

    before = counts(populated)
    me = ("--as", f"client:{MINE}", "message", "send", MINE, "--text", "Hei", "--attach")
    result = avain(populated, *me, "/dev/null")
    assert result.exit_code == 1 and "--attach: /dev/null is not a regular file (a device, pipe" in result.stderr
    # (after /dev/null: a command that read /dev/zero whole would exhaust the memory)
    result = avain(populated, *me, "/dev/zero")
    assert result.exit_code == 1 and "--attach: /dev/zero is not a regular file" in result.stderr
    fifo = tmp_path / "putki"
    os.mkfifo(fifo)

    def unblock():  # a command that waited for a writer on the pipe would hang: let it go on
        with contextlib.suppress(OSError):  # no reader: nothing to unblock
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    writer = threading.Timer(5, unblock)
    writer.start()
    try:
        result = avain(populated, *me, str(fifo))
    finally:
        writer.cancel()
    assert result.exit_code == 1 and f"--attach: {fifo} is not a regular file" in result.stderr
    folder = tmp_path / "kansio"
    folder.mkdir()
    result = avain(populated, *me, str(folder))
    assert result.exit_code == 2 and "kansio" in result.stderr and "is a directory" in result.stderr
    assert counts(populated) == before


def test_init_makes_a_key_file_beside_the_database_unless_the_key_is_in_the_environment(db, monkeypatch):
    monkeypatch.delenv("AVAIN_MESSAGE_KEY")
    first = as_json(avain(db, "init", "--json"))
    key_file = db.with_name(db.name + ".key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first["message_key"].endswith(f"in the key file {key_file} (created)")
    again = as_json(avain(db, "init", "--json"))
    assert again["message_key"] == first["message_key"].removesuffix(" (created)")  # the same key kept
    rotated = as_json(avain(db, "message", "rotate-key", "--json"))
    assert rotated["resealed"] == 0 and rotated["key"] not in first["message_key"]
    assert as_json(avain(db, "init", "--json"))["message_key"].startswith(rotated["key"])
    other = db.with_name("other.db")
    as_json(avain(other, "init", "--json", env={"AVAIN_MESSAGE_KEY": TEST_KEY}))
    assert not other.with_name("other.db.key").exists()


# --- the evaluation on the command line ----------------------------------------------------


def test_a_bad_survey_file_is_named_row_by_row_and_nothing_is_imported(populated, tmp_path):
    today = dt.date.today().isoformat()
    before = counts(populated)
    bad = write(tmp_path, "kysely.csv", f"client,point,answered_on,item_01\n{MINE},start,{today},7\n"
                                        f"EX-Q-99-999,start,{today},3\n")
    result = avain(populated, "eval", "import", str(bad), "--instrument", "osallisuustesti")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines() == ["kysely.csv, row 2, item_01: 7 is greater than the maximum of 5",
                                          "kysely.csv, row 3, client: no such client code",
                                          "kysely.csv: nothing was imported (2 problems)"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"client,point,answered_on,item_01\n{MINE},start,{today},3 ä\n".encode("latin-1"))
    result = avain(populated, "eval", "import", str(latin), "--instrument", "osallisuustesti")
    assert result.exit_code == 1 and "latin.csv, line 2: not UTF-8 text" in result.stderr
    result = avain(populated, "--as", "worker:example-01", "eval", "record", MINE, "--instrument", "osallisuustesti",
                   "--point", "start", "--date", today, "--answer", "item_01=viisi", "--answer", "item_77=1")
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        "--answer item_01: not a whole number", "--answer item_77: not an item of osallisuustesti"]
    assert counts(populated) == before
    good = as_json(avain(populated, "--as", "worker:example-01", "eval", "record", MINE, "--instrument",
                         "osallisuustesti", "--point", "start", "--date", today, "--answer", "item_01=4",
                         "--answer", "item_02=5", "--answer", "item_03=3", "--json"))
    assert good["scores"] == {"belonging": 4.0}  # 3 of 5 items; the other scales have too few answers
    out = tmp_path / "report"
    done = as_json(avain(populated, "eval", "report", "--all", "--out", str(out), "--json"))
    assert (out / "report.html").exists() and done["charts"] > 0
    assert avain(populated, "eval", "report", "--out", str(out)).exit_code == 2  # --pilot or --all


def test_audit_checkpoint_and_verify_report_a_stream_cut_short(populated):
    """`audit checkpoint` signs every head; deleting a client's newest event and moving its
    head back (every row left consistent) is then reported, and so is a forged line."""
    data = as_json(avain(populated, "audit", "checkpoint", "--json"))
    assert data["streams"] >= 3 and data["file"] == f"{populated}.checkpoints"
    assert "checkpoint of" in ok(avain(populated, "audit", "checkpoint")).stdout
    with sqlite3.connect(populated) as conn:
        seq = conn.execute("SELECT seq FROM audit_head WHERE stream = ?", (MINE,)).fetchone()[0]
    sql(populated, "DELETE FROM audit_event WHERE stream = ? AND seq = ?", MINE, seq)
    sql(populated, "UPDATE audit_head SET seq = ?, hash = COALESCE((SELECT hash FROM audit_event WHERE stream = ? "
                   "AND seq = ?), ?) WHERE stream = ?", seq - 1, MINE, seq - 1, "0" * 64, MINE)
    result = avain(populated, "audit", "verify")
    assert result.exit_code == 1
    assert f"stream {MINE}: event {seq} is missing (the chain was cut short" in result.stdout
    with open(f"{populated}.checkpoints", "a") as fh:
        fh.write('{"audit": {}, "ledger": {}, "mac": "00"}\n')
    problems = json.loads(avain(populated, "audit", "verify", "--json").stdout)["problems"]
    assert any(p.endswith("the signature does not match (a forged or altered checkpoint)") for p in problems)
