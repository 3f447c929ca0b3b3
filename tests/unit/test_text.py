"""The one sanitiser of text (avain.core.text): what it refuses, what it keeps, and how
stored text and CSV cells are made safe to show."""

from __future__ import annotations

import io

import pytest

from avain.core.cli.output import SafeConsole, dumps
from avain.core.errors import ValidationError
from avain.core.text import (
    clean,
    clean_reason,
    for_terminal,
    redact_hetu,
    shown,
    spreadsheet_cell,
    unsafe_strings,
)

ATTACKS = {
    "ESC (a terminal escape)": "ok\x1b[2J\x1b]0;pwned\x07",
    "OSC 8 hyperlink": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "C1 CSI": "price\x9b31m",
    "right-to-left override": "invoice \u202egpj.exe",
    "right-to-left isolate": "x\u2067y",
    "left-to-right mark": "x\u200ey",
    "NUL": "a\x00b",
    "carriage return": "paid\rnot paid",
    "zero-width space": "Kotiapu\u200b Oy",
    "soft hyphen": "Kos\u00adkinen",
    "byte order mark": "\ufeffok",
}


@pytest.mark.parametrize("value", ATTACKS.values(), ids=ATTACKS.keys())
def test_control_and_direction_characters_are_refused_naming_the_field_not_the_text(value):
    with pytest.raises(ValidationError) as err:
        clean(value, "--text", multiline=True)
    message = str(err.value)
    assert message.startswith("--text: a control or direction character (U+")
    assert value not in message
    assert err.value.field == "--text"


def test_a_multi_line_text_keeps_newlines_and_tabs_and_drops_windows_line_ends():
    assert clean("line 1\r\n\tline 2 – äö €", "--text", multiline=True) == "line 1\n\tline 2 – äö €"
    with pytest.raises(ValidationError, match="^--reason: .*U\\+000A"):
        clean("one\ntwo", "--reason")


@pytest.mark.parametrize("hetu", ["131052-308T", "131052308T", "150320A1237", "010594Y123W", "131052-308X",
                                  "131052 308T"])
def test_a_henkilotunnus_in_a_reason_is_refused_without_repeating_it(hetu):
    with pytest.raises(ValidationError) as err:
        clean_reason(f"asked by {hetu} on the phone")
    assert hetu not in str(err.value)
    assert str(err.value).startswith("--reason: looks like it holds a henkilötunnus")


@pytest.mark.parametrize("text", ["invoice 1234567890", "call 0401234567", "ref 1234561", "2018-01-31 visit",
                                  "EX-F-01-001 asked", "amount 131052 308"])
def test_numbers_that_are_not_a_henkilotunnus_are_kept(text):
    assert clean_reason(text) == text


def test_errors_repeat_ids_but_not_names_or_henkilotunnus():
    assert shown("EX-F-01-001") == "'EX-F-01-001'"
    assert shown("example-01") == "'example-01'"
    for personal in ("Jesse Niskanen", "Niskanen", "160791-882W", "160791882W", "x\x1b[2J1"):
        assert personal not in shown(personal)
        assert "not shown" in shown(personal)
    assert redact_hetu("no client '160791-882W'") == "no client '[henkilötunnus]'"


def test_stored_text_is_shown_with_visible_escapes():
    assert for_terminal("a\x1b[2Jb\u202ec\n\td") == "a\\x1b[2Jb\\u202ec\n\td"
    out = io.StringIO()
    SafeConsole(file=out, width=100).print("name: \x1b]0;pwned\x07 \u202eevil", markup=False)
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "\\x1b]0;pwned\\x07" in out.getvalue()


def test_json_output_escapes_c1_and_direction_characters():
    text = dumps({"name": "a\u202eb\x9bc\x1b"})
    assert "\u202e" not in text and "\x9b" not in text and "\x1b" not in text
    assert __import__("json").loads(text) == {"name": "a\u202eb\x9bc\x1b"}


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1", "＝HYPERLINK(\"http://evil\")", "＋1"])
def test_a_text_cell_that_a_spreadsheet_would_run_is_neutralised(cell):
    assert spreadsheet_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", [-1250, 0, 3.5, None, "-12.50", "-3,5", "Kotiapu Oy", "2018-01-31"])
def test_numbers_and_plain_text_stay_as_they_are(cell):
    assert spreadsheet_cell(cell) == cell


def test_every_string_of_a_document_is_checked_with_its_path():
    assert unsafe_strings({"name": "ok", "groups": [{"id": "a", "name": "b\x1b"}], "x\u202e": 1}) == [
        ("groups.0.name", 0x1b), ("x\u202e", 0x202e)]
