"""The command line in Finnish, Swedish and English, and the client's own language in the
dialogue, through click's CliRunner on SQLite and PostgreSQL."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from avain.core.cli import cli

HETU_SV, HETU_FI = "010594Y123W", "131052-308T"
WORKER = "worker:example-01"
PROVIDER = "1572860-0"


@pytest.fixture
def run(db_url, tmp_path):
    runner = CliRunner()

    def invoke(*args, actor=None, env=None, code=0):
        argv = ["--db", db_url] + (["--as", actor] if actor else []) + [str(a) for a in args]
        result = runner.invoke(cli, argv, env=env)
        assert "Traceback" not in result.output + result.stderr
        assert result.exit_code == code, result.stderr + result.output
        return result

    def js(*args, actor=None):
        return json.loads(invoke(*args, "--json", actor=actor).stdout)

    invoke.json = js
    invoke.tmp = tmp_path
    invoke("init")  # the migrated test database gets the plugins' pilots
    return invoke


def enroll_two(run) -> tuple[str, str]:
    """A Swedish-speaking and a Finnish-speaking client of the same worker, granted and budgeted."""
    run("worker", "add", "--pilot", "example", "--code", "01", "--name", "W")
    run("worker", "add", "--pilot", "example", "--code", "04", "--name", "F", "--role", "finance")
    sv = run.json("client", "enroll", "--pilot", "example", "--hetu", HETU_SV, "--name", "N", "--worker",
                  "example-01", "--group", "family", "--assess", "carer_contract=yes", "--date", "2018-01-01",
                  "--lang", "sv")["code"]
    fi = run.json("client", "enroll", "--pilot", "example", "--hetu", HETU_FI, "--name", "M", "--worker",
                  "example-01", "--group", "family", "--assess", "carer_contract=yes", "--date", "2018-01-01")["code"]
    return sv, fi


def test_the_same_client_list_in_finnish_swedish_and_english(run):
    sv, fi = enroll_two(run)
    out = {lang: run("--lang", lang, "client", "list").stdout for lang in ("fi", "sv", "en")}
    assert "Asiakkaat" in out["fi"] and "koodi" in out["fi"] and "liittynyt" in out["fi"]
    assert "Klienter" in out["sv"] and "kod" in out["sv"] and "inskriven" in out["sv"]
    assert "Clients" in out["en"] and "code" in out["en"] and "enrolled" in out["en"]
    assert "1.1.2018" in out["fi"] and "1.1.2018" in out["sv"] and "2018-01-01" in out["en"]
    assert "ei " in out["fi"] and "nej" in out["sv"] and " no " in out["en"]  # control: no
    for text in out.values():
        assert sv in text and fi in text
    # --json is the same document whatever the language
    assert run("--lang", "fi", "client", "list", "--json").stdout == run("--lang", "sv", "client", "list",
                                                                         "--json").stdout


def test_money_counts_and_dates_in_each_language(run):
    sv, fi = enroll_two(run)
    granted = run("--lang", "fi", "decision", "grant", sv, "--from", "2018-01-01", "--to", "2018-12-31",
                  "--amount", "1234,50", actor=WORKER).stdout
    assert granted.strip() == f"myönteinen päätös 1: {sv} 1.1.2018 – 31.12.2018"
    opened = run("--lang", "sv", "budget", "open-period", "--pilot", "example", "2018-01",
                 actor="finance:example-04").stdout
    assert "2018-01 öppnad för example: 1 budget, 300,00\u00a0€ fördelat" in opened
    assert "tillgängligt 300,00\u00a0€" in run("--lang", "sv", "ledger", "balance", sv).stdout
    assert "käytettävissä 300,00\u00a0€" in run("--lang", "fi", "ledger", "balance", sv).stdout
    assert "available €300.00" in run("--lang", "en", "ledger", "balance", sv).stdout
    statement = run("--lang", "fi", "ledger", "statement", sv).stdout
    assert "Tiliote" in statement and "myönnetty" in statement and "300,00\u00a0€" in statement


@pytest.mark.parametrize(("lang", "expected"), [
    ("fi", "0 maksusitoumusta vanheni"), ("sv", "0 betalningsförbindelser förföll"), ("en", "0 commitments expired")])
def test_zero_takes_the_plural(run, lang, expected):
    assert run("--lang", lang, "commitment", "expire").stdout.strip() == expected


def test_one_and_two_take_singular_and_plural(run):
    sv, fi = enroll_two(run)
    for code in (sv, fi):
        run("decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31", "--amount", "300",
            actor=WORKER)
    two = run("--lang", "fi", "budget", "open-period", "--pilot", "example", "2018-01",
              actor="finance:example-04").stdout
    assert "2018-01 avattu (example): 2 budjettia, jaettu 600,00\u00a0€" in two
    one = run("--lang", "fi", "client", "expire", "--pilot", "example", code=1)  # not fixed-term: refused
    assert one.stderr.startswith("virhe: ")
    ended = run("--lang", "sv", "client", "end", fi, "--date", "2018-02-01").stdout
    assert ended.strip() == f"{fi}: klientrelationen avslutades 1.2.2018"


def test_lang_from_the_environment_and_lang_beats_it(run):
    enroll_two(run)
    assert "Klienter" in run("client", "list", env={"LANG": "sv_FI.UTF-8"}).stdout
    assert "Asiakkaat" in run("client", "list", env={"LC_ALL": "fi_FI.UTF-8", "LANG": "sv_FI.UTF-8"}).stdout
    assert "Clients" in run("client", "list", env={"LANG": "de_DE.UTF-8"}).stdout
    assert "Clients" in run("--lang", "en", "client", "list", env={"LANG": "fi_FI.UTF-8"}).stdout
    assert "Klienter" in run("--lang", "sv", "client", "list", env={"LANGUAGE": "fi", "LC_ALL": "fi_FI"}).stdout


def test_an_unknown_lang_is_a_usage_error(run):
    r = run("--lang", "de", "client", "list", code=2)
    assert "--lang" in r.stderr and "'de' is not one of 'fi', 'sv', 'en'" in r.stderr
    assert run("client", "enroll", "--pilot", "example", "--hetu", HETU_FI, "--name", "M", "--worker", "example-01",
               "--lang", "de", code=2).stderr.count("--lang") == 1


def test_refusals_are_framed_in_the_language(run):
    assert run("--lang", "fi", "client", "show", "NOPE", code=1).stderr.startswith("virhe: ")
    assert run("--lang", "sv", "client", "show", "NOPE", code=1).stderr.startswith("fel: ")
    assert run("client", "show", "NOPE", code=1).stderr.startswith("error: ")


def test_the_clients_language_is_shown_changed_and_audited(run):
    sv, fi = enroll_two(run)
    assert run.json("client", "show", sv)["language"] == "sv"
    assert run.json("client", "show", fi)["language"] == "fi"  # the default
    shown = run("--lang", "fi", "client", "show", fi).stdout
    assert "kieli" in shown and "Asiakas " + fi in shown
    # the client may change their own language; the worker may too
    assert run("client", "language", fi, "sv", actor=f"client:{fi}").stdout.strip() == f"{fi}: language sv"
    again = run("--lang", "sv", "client", "language", fi, "sv", actor=WORKER).stdout.strip()
    assert again == f"{fi}: språk sv (oförändrat)"
    assert run.json("client", "language", fi, "en", actor=WORKER) == {"code": fi, "language": "en", "changed": True}
    events = [e for e in run.json("audit", "log", "--subject", fi) if e["action"] == "client.language_set"]
    assert len(events) == 2  # the unchanged one wrote nothing
    assert run("client", "language", fi, "de", code=2).exit_code == 2
    assert run("client", "language", fi, "fi", actor=f"client:{sv}", code=1).stderr.startswith("error: ")


def _month_with_a_provider(run, codes):
    run("provider", "add", "--ytunnus", PROVIDER, "--name", "Siivous Oy", "--iban", "FI2112345600000785",
        "--area", "Kajaani")
    checks = [a for c in ("prepayment_register", "provider_register", "service_level", "liability_insurance",
                          "hb_training") for a in ("--check", f"{c}=document seen@2017-12-01")]
    run("provider", "approve", PROVIDER, "--pilot", "example", "--service", "cleaning", "--from", "2017-12-01",
        *checks)
    prices = Path(run.tmp) / "prices.csv"
    prices.write_text(f"provider,service,price,valid_from\n{PROVIDER},cleaning,\"50,00\",2017-01-01\n")
    run("catalogue", "import", prices)
    for code in codes:
        run("plan", "set", code, "--from", "2018-01-01", "--item", "cleaning=4", actor=WORKER)
        run("decision", "grant", code, "--from", "2018-01-01", "--to", "2018-12-31", actor=WORKER)
    run("budget", "open-period", "--pilot", "example", "2018-01", actor="finance:example-04")


def test_system_messages_are_in_the_clients_language_whoever_runs_the_command(run):
    sv, fi = enroll_two(run)
    _month_with_a_provider(run, (sv, fi))
    for code in (sv, fi):
        p = run.json("proposal", "create", code, "--service", "cleaning", "--provider", PROVIDER, "--amount",
                     "45,50" if code == sv else "45", "--date", "2018-01-12", actor=f"client:{code}")
        # the worker's CLI speaks Finnish
        said = run("--lang", "fi", "proposal", "approve", p["id"], actor=WORKER).stdout
        assert said.startswith(f"ehdotus {p['id']} hyväksytty: maksusitoumus ")
    swedish = [m["text"] for m in run.json("message", "thread", sv, actor=WORKER)["messages"]]
    assert swedish[0].startswith("Förslag 1 (klient): ") and "45,50\u00a0€, den 12.1.2018." in swedish[0]
    assert swedish[1] == "Förslag 1 godkänt (egen kontaktperson)."
    assert swedish[2].startswith("Betalningsförbindelse 1 utfärdad till Siivous Oy (1572860-0): 45,50\u00a0€")
    assert "giltig till och med" in swedish[2]
    finnish = [m["text"] for m in run.json("message", "thread", fi, actor=WORKER)["messages"]]
    assert finnish[0].startswith("Ehdotus 2 (asiakas): ") and finnish[1] == "Ehdotus 2 hyväksytty (omatyöntekijä)."
    assert finnish[2].startswith("Maksusitoumus 2 annettu palveluntuottajalle Siivous Oy")
    assert "45,00\u00a0€" in finnish[2]
    # the worker reads the Swedish client's thread with Finnish framing around the Swedish messages
    shown = run("--lang", "fi", "message", "thread", sv, actor=WORKER).stdout
    assert "järjestelmä" in shown and "Förslag 1 godkänt" in shown and "osallistujat:" in shown
    # an English-speaking client from now on: later steps in English, earlier ones as written
    run("client", "language", sv, "en", actor=f"client:{sv}")
    rejected = run.json("proposal", "create", sv, "--service", "cleaning", "--provider", PROVIDER, "--amount", "10",
                        "--date", "2018-01-13", actor=f"client:{sv}")["id"]
    run("--lang", "fi", "proposal", "reject", rejected, "--reason", "ei tarpeen", actor=WORKER)
    texts = [m["text"] for m in run.json("message", "thread", sv, actor=WORKER)["messages"]]
    assert texts[-1] == f"Proposal {rejected} rejected by the personal worker: ei tarpeen"
    assert texts[1] == "Förslag 1 godkänt (egen kontaktperson)."


def test_master_data_commands_speak_the_output_language(run):
    """The commands added beside the translations (client assess, decision amend and end,
    worker deactivate) confirm in Finnish and Swedish too, money and dates included."""
    sv, fi = enroll_two(run)
    run("worker", "add", "--pilot", "example", "--code", "02", "--name", "V")
    out = run("--lang", "fi", "client", "assess", fi, "--assess", "carer_contract=yes", "--date", "2018-02-01",
              actor=WORKER).stdout
    assert f"{fi}: palvelutarpeen arvion versio 2 (1.2.2018) tallennettu" in out
    decision = run.json("decision", "grant", fi, "--from", "2018-01-01", "--to", "2018-12-31", "--amount", "500",
                        actor=WORKER)["id"]
    out = run("--lang", "sv", "decision", "end", decision, "--on", "2018-06-30", "--reason", "flytt",
              actor=WORKER).stdout
    assert f"beslut {decision} ({fi}) upphör nu 30.6.2018" in out
    out = run("--lang", "fi", "worker", "deactivate", "example-01", "--reassign-to", "example-02").stdout
    assert "example-01 poistettu käytöstä; 2 asiakasta siirretty työntekijälle example-02" in out
    result = run("--lang", "sv", "client", "find", "--hetu", HETU_SV, "--name", "N", "--reason", "r", code=2)
    assert "ange --hetu eller --name, inte båda" in result.stderr
