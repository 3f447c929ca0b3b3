"""``avain decision letter``, ``avain commitment letter`` and ``avain ledger letter``
through click's CliRunner on SQLite and PostgreSQL: the PDF is read back with pypdf and
must show the amounts, dates, reference number and review deadline a reader needs; the
provider's document never shows the client's name or henkilötunnus."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import open_app
from letter_scenarios import HETU, LETTERS, NAME, scenario
from pypdf import PdfReader

from avain.core.cli import cli
from avain.core.letters import group_reference

RUNNER = CliRunner(env={"AVAIN_DB": None, "AVAIN_LOAD_PLUGINS": None})
NBSP = "\u00a0"
SENT = "2026-12-03"  # notified 10.12.2026; 9.1.2027 is a Saturday, so the deadline is Monday 11.1.2027
DEADLINE = {"fi": "11.1.2027", "sv": "11.1.2027", "en": "11 January 2027"}
BUDGET = {"fi": "300,00 €", "sv": "300,00 €", "en": "€300.00"}
COMMITTED = {"fi": "123,45 €", "sv": "123,45 €", "en": "€123.45"}
APPEAL = {"fi": "Oikaisuvaatimusohje", "sv": "Anvisning om begäran om omprövning",
          "en": "Instructions for requesting a review"}


@pytest.fixture
def month(db_url):
    app = open_app(db_url)
    try:
        data = scenario(app)
    finally:
        app.close()
    return {**data, "db": db_url}


def avain(month, *args, as_=None):
    prefix = ["--db", month["db"]] + (["--as", as_] if as_ else [])
    return RUNNER.invoke(cli, [*prefix, *args])


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def pdf_text(path: Path) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return " ".join(text.replace(NBSP, " ").split())


def html_text(path: Path) -> str:
    """The HTML parses as XML (well-formed); its text with spaces normalised."""
    root = ET.fromstring(path.read_text(encoding="utf-8").removeprefix("<!DOCTYPE html>\n"))
    return " ".join("".join(root.itertext()).replace(NBSP, " ").split())


def written(result) -> dict[str, Path]:
    data = json.loads(ok(result).stdout)
    return {Path(f).suffix: Path(f) for f in data["files"]}


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_each_document_in_each_language_reads_right(month, tmp_path, lang):
    code, paid = month["codes"][0], month["paid"]
    worker = f"worker:{month['team']['worker']}"
    out = tmp_path / "out"

    files = written(avain(month, "decision", "letter", code, "--lang", lang, "--date", SENT,
                          "--out", str(out), "--json", as_=worker))
    for text in (pdf_text(files[".pdf"]), html_text(files[".html"])):
        assert NAME in text and code in text
        assert BUDGET[lang] in text and COMMITTED[lang] in text
        assert APPEAL[lang].casefold() in text.casefold()  # the heading is set in capitals
        assert DEADLINE[lang] in text and "30" in text
        assert ("1.1.2018" if lang != "en" else "1 January 2018") in text
        assert LETTERS["review_body"] in text and LETTERS["review_address"] in text
        assert HETU not in text

    files = written(avain(month, "commitment", "letter", str(paid["id"]), "--lang", lang, "--date", SENT,
                          "--out", str(out), "--json", as_="finance"))
    for text in (pdf_text(files[".pdf"]), html_text(files[".html"])):
        assert NAME not in text and HETU not in text
        assert code in text and COMMITTED[lang] in text
        assert group_reference(paid["reference"]) in text and paid["reference_rf"] in text
        assert LETTERS["einvoice_address"] in text and "Finvoice" in text
        assert ("15.1.2018" if lang != "en" else "15 January 2018") in text  # the service date
    assert NAME not in files[".html"].read_text(encoding="utf-8")

    files = written(avain(month, "ledger", "letter", code, "--period", "2018-01", "--lang", lang,
                          "--date", SENT, "--out", str(out), "--json", as_=f"client:{code}"))
    paid_amount = {"fi": "100,00 €", "sv": "100,00 €", "en": "€100.00"}[lang]
    reserved = {"fi": "50,00 €", "sv": "50,00 €", "en": "€50.00"}[lang]
    for text in (pdf_text(files[".pdf"]), html_text(files[".html"])):
        assert BUDGET[lang] in text and paid_amount in text and reserved in text
        assert ("1/2018" if lang != "en" else "January 2018") in text

    for path in out.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert NAME.split()[0] not in path.name and HETU not in path.name


def test_the_letters_language_defaults_to_finnish(month, tmp_path):
    result = ok(avain(month, "decision", "letter", month["codes"][0], "--out", str(tmp_path), "--json"))
    data = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert data["language"] == "fi" and data["document"] == "decision"
    assert sorted(Path(f).name for f in data["files"]) == ["decision-1-fi.html", "decision-1-fi.pdf"]


def test_the_letters_language_is_the_clients_language(month, tmp_path):
    code = month["codes"][0]
    ok(avain(month, "client", "language", code, "sv"))
    data = json.loads(ok(avain(month, "decision", "letter", code, "--out", str(tmp_path), "--json")).stdout)
    assert data["language"] == "sv"
    assert sorted(Path(f).name for f in data["files"]) == ["decision-1-sv.html", "decision-1-sv.pdf"]


def test_a_finance_decision_letter_has_no_name(month, tmp_path):
    files = written(avain(month, "decision", "letter", month["codes"][0], "--date", SENT, "--out", str(tmp_path),
                          "--json", as_="finance"))
    assert NAME not in pdf_text(files[".pdf"]) and month["codes"][0] in pdf_text(files[".pdf"])


def test_refusals_name_what_is_wrong_and_write_nothing(month, tmp_path):
    code, out = month["codes"][0], tmp_path / "out"
    result = avain(month, "decision", "letter", code, "--decision", "999", "--out", str(out))
    assert result.exit_code == 1 and "--decision" in result.stderr and "Traceback" not in result.output
    result = avain(month, "commitment", "letter", "999", "--out", str(out))
    assert result.exit_code == 1 and "no commitment 999" in result.stderr
    result = avain(month, "decision", "letter", code, "--lang", "de", "--out", str(out))
    assert result.exit_code == 2 and "--lang" in result.stderr
    result = avain(month, "ledger", "letter", code, "--period", "2018-13", "--out", str(out))
    assert result.exit_code == 2 and "--period" in result.stderr
    result = avain(month, "decision", "letter", code, "--out", str(out), as_=f"worker:{month['team']['other_worker']}")
    assert result.exit_code == 1 and "may not" in result.stderr
    assert not out.exists()
