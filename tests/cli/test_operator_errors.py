"""What an operator sees when something is wrong: the database given with ``--db`` is
missing or not a database, a value is malformed, a rule refuses. One exit-code contract
(0 done, 1 refused, 2 bad usage), one line on stderr, and under ``--json`` one JSON error
document on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_cli import assert_clean, avain, copy_of, initialised

#: The first bytes of a PNG image: what a mistyped --db may well point at.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return initialised(tmp_path_factory.mktemp("operator"))


@pytest.fixture
def db(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


# --- the database ------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"not a database, just some notes\n" * 20, PNG],
                         ids=["text file", "PNG image"])
def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    for command in (["pilot", "list"], ["init"]):
        result = avain(path, *command)
        assert_clean(result, 1)
        assert result.stderr.splitlines() == [
            f"error: --db: {path} is not a database (file is not a database); give the database file, "
            "or run `avain init` with a new file name"]
    assert path.read_bytes() == content


@pytest.mark.parametrize("command", [["pilot", "list"], ["client", "list"], ["ledger", "verify"],
                                     ["db", "upgrade"], ["catalogue", "services", "--json"]])
def test_a_mistyped_db_path_is_refused_and_creates_nothing(tmp_path, command):
    path = tmp_path / "avian.db"
    result = avain(path, *command)
    assert_clean(result, 1)
    assert f"error: no database at {path}: run `avain init` to create one" in result.stderr
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_init_and_demo_create_the_database(tmp_path):
    for command in (["init"], ["demo", "--pilot", "example", "--clients", "1", "--json"]):
        path = tmp_path / f"{command[0]}.db"
        assert_clean(avain(path, *command), 0)
        assert path.exists()
        assert_clean(avain(path, "pilot", "list"), 0)


# --- exit codes and the JSON error document ----------------------------------------------------


@pytest.mark.parametrize("amount", ["abc", "12,345", "0", "-5", "99999999"])
def test_a_bad_amount_is_bad_usage_like_a_bad_date(db, amount):
    base = ["proposal", "create", "EX-F-01-001", "--service", "cleaning", "--provider", "1572860-0"]
    bad_amount = avain(db, *base, "--amount", amount, "--date", "2018-01-12")
    bad_date = avain(db, *base, "--amount", "10", "--date", "12.1.2018")
    unknown_option = avain(db, *base, "--amount", "10", "--date", "2018-01-12", "--colour", "red")
    for result, name in ((bad_amount, "--amount"), (bad_date, "--date"), (unknown_option, "--colour")):
        assert_clean(result, 2)
        assert name in result.stderr
        assert result.stdout == ""


def test_a_refusal_under_json_prints_one_error_document(db):
    result = avain(db, "client", "show", "EX-F-09-999", "--json")
    assert_clean(result, 1)
    assert json.loads(result.stdout) == {"error": {
        "type": "not_found", "code": "not_found", "field": None, "option": None, "values": {},
        "message": "no client 'EX-F-09-999'; see `avain client list`",
        "reasons": ["no client 'EX-F-09-999'; see `avain client list`"]}}
    assert result.stderr == "error: no client 'EX-F-09-999'; see `avain client list`\n"


def test_every_problem_of_a_validation_error_is_a_reason(db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "Bad Id"\nname = "x"\ncode = "x1"\n\n[budget]\nmonthly_cap = -5\n', encoding="utf-8")
    result = avain(db, "pilot", "add", bad, "--json")
    assert_clean(result, 1)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config"
    assert len(error["reasons"]) >= 2
    assert all(r in result.stderr for r in error["reasons"])


def test_bad_usage_under_json_prints_one_error_document_and_exits_2(db):
    result = avain(db, "budget", "open-period", "--pilot", "example", "2018-13", "--json")
    assert_clean(result, 2)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage"
    assert error["field"] == "PERIOD"
    assert "2018-13" in error["message"]
    assert "budget open-period [OPTIONS] PERIOD" in result.stderr


def test_a_missing_database_under_json_names_the_db_option(tmp_path):
    path = tmp_path / "missing.db"
    result = avain(path, "pilot", "list", "--json")
    assert_clean(result, 1)
    assert json.loads(result.stdout)["error"] == {
        "type": "database", "code": "database", "field": "--db", "option": None, "values": {},
        "message": f"no database at {path}: run `avain init` to create one",
        "reasons": [f"no database at {path}: run `avain init` to create one"]}


def test_a_folder_where_a_file_is_written_is_refused_naming_it(db, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "catalogue.json").mkdir()  # the export cannot write its file
    result = avain(db, "catalogue", "export", "--out", folder, "--json")
    assert_clean(result, 1)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "file"
    assert error["field"] == str(folder / "catalogue.json")
    assert result.stderr.startswith(f"error: {folder / 'catalogue.json'}: ")


def test_the_exit_codes_and_error_documents_are_the_same_on_each_engine(db_url):
    assert_clean(avain(db_url, "init"), 0)
    refused = avain(db_url, "client", "show", "EX-F-09-999", "--json")
    assert_clean(refused, 1)
    assert json.loads(refused.stdout)["error"]["code"] == "not_found"
    bad = avain(db_url, "catalogue", "search", "--min", "-1", "--json")
    assert_clean(bad, 2)
    assert json.loads(bad.stdout)["error"] == {
        "type": "usage", "code": "usage", "field": "--min", "option": "--min", "values": {},
        "message": "Invalid value for '--min': '-1' is less than zero",
        "reasons": ["Invalid value for '--min': '-1' is less than zero"]}
