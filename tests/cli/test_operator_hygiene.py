"""What the command line shows of text it did not write itself: a value somebody looked up
(a client code, an --as id) is not repeated when it looks like a name or a henkilötunnus,
and stored text (saved before avain checked it) cannot drive the terminal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from operator_cli import assert_clean, avain, copy_of, initialised

PROVIDER = "1572860-0"
HETU = "160791-882W"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return initialised(tmp_path_factory.mktemp("hygiene"),
                       ("provider", "add", "--ytunnus", PROVIDER, "--name", "Kotiapu Oy"))


@pytest.fixture
def db(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


@pytest.mark.parametrize("args, personal", [
    (["client", "show", HETU], HETU),
    (["client", "show", HETU.replace("-", "")], HETU.replace("-", "")),
    (["--as", "worker:Jesse Niskanen", "client", "list"], "Niskanen"),
    (["--as", f"client:{HETU}", "client", "list"], HETU),
    (["--as", "Jesse Niskanen", "client", "list"], "Niskanen"),
], ids=["client code is a henkilötunnus", "without its separator", "--as worker name", "--as client hetu",
        "--as a name as the role"])
def test_an_error_does_not_repeat_a_name_or_a_henkilotunnus(db, args, personal):
    for result in (avain(db, *args), avain(db, *args, "--json")):
        assert result.exit_code in (1, 2), result.output
        assert personal.lower() not in result.output.lower()
        assert "Traceback" not in result.output


def test_an_error_still_names_a_mistyped_code(db):
    result = avain(db, "client", "show", "EX-F-09-999")
    assert_clean(result, 1)
    assert "no client 'EX-F-09-999'" in result.stderr


def test_a_henkilotunnus_typed_as_a_reason_is_refused_and_not_logged(db, tmp_path):
    result = avain(db, "provider", "revoke", PROVIDER, "--pilot", "example", "--reason", f"owner {HETU}")
    assert_clean(result, 1)
    assert "--reason: looks like it holds a henkilötunnus" in result.stderr
    assert HETU not in result.output
    assert HETU not in avain(db, "audit", "log", "--json").stdout


def _store_name(db: Path, name: str) -> None:
    """A provider's name as an older avain (or a plugin writing to the table) stored it."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE provider SET name = ? WHERE id = ?", (name, PROVIDER))


STORED = {
    "title and clear screen": "Evil\x1b]0;pwned\x07\x1b[2J Oy",
    "hidden hyperlink": "\x1b]8;;http://evil.example/\x1b\\Kotiapu\x1b]8;;\x1b\\",
    "right-to-left override": "Kotiapu \u202eyO",
    "C1 control sequence": "Kotiapu\x9b2J",
}


@pytest.mark.parametrize("name", STORED.values(), ids=STORED.keys())
def test_stored_text_is_shown_with_visible_escapes(db, name):
    _store_name(db, name)
    for args in (["provider", "list"], ["provider", "show", PROVIDER], ["provider", "list", "--json"]):
        result = avain(db, *args)
        assert_clean(result, 0)
        assert not any(c in result.output for c in "\x1b\x07\x9b\u202e"), (args, result.output)
        assert "Kotiapu" in result.output or "Evil" in result.output
    assert json.loads(avain(db, "provider", "list", "--json").stdout)[0]["name"] == name


def test_stored_text_is_not_read_as_rich_markup(db):
    _store_name(db, "[link=http://evil.example/]Kotiapu[/link] [blink]Oy")
    result = avain(db, "provider", "list")
    assert_clean(result, 0)
    assert "[blink]Oy" in result.stdout
