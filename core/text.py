"""Text people type and files bring, checked once where it enters avain, and made safe
again wherever it leaves: for a terminal, for a spreadsheet, for an error message.

- :func:`clean` refuses (never silently strips) control characters (ESC, BEL, the C1
  range, DEL…) and the invisible direction controls (bidi overrides and isolates) that
  can hide or reorder what a worker reads. Multi-line texts keep newlines and tabs.
- :func:`refuse_hetu` refuses a henkilötunnus in a free text that goes to the audit
  trail (a ``--reason``), with or without its century sign, without repeating it.
- :func:`shown` is what an error message may repeat of a value somebody looked up.
- :func:`for_terminal` escapes what :func:`clean` refuses, for text stored before it did.
- :func:`spreadsheet_cell` keeps a text cell of a CSV file from being read as a formula.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from typing import Any

from .errors import ValidationError
from .i18n import _

#: Invisible characters that change the order or direction of the text around them:
#: Arabic letter mark, LRM/RLM, the embeddings and overrides (LRE…RLO, PDF), the isolates
#: (LRI…PDI), and the line and paragraph separators some terminals treat as line breaks.
DIRECTION_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                               "\u2066\u2067\u2068\u2069\u2028\u2029")

#: Characters that show as nothing yet make two texts differ (a provider's name that looks
#: like another's, a word a filter no longer finds): zero-width space, soft hyphen, word
#: joiner and the invisible operators, Mongolian vowel separator, the byte order mark.
#: (Zero-width joiner and non-joiner are kept: emoji and some scripts need them.)
INVISIBLE = frozenset("\u200b\u00ad\u2060\u2061\u2062\u2063\u2064\u180e\ufeff")

#: The whitespace a multi-line text (a message, a proposal's text) keeps.
MULTILINE_KEEPS = frozenset("\n\t")


def unsafe(char: str, *, multiline: bool = False) -> bool:
    """A control character (Unicode category Cc: C0, DEL, C1) or a direction control;
    with ``multiline``, newline and tab are fine."""
    if multiline and char in MULTILINE_KEEPS:
        return False
    return char in DIRECTION_CONTROLS or char in INVISIBLE or unicodedata.category(char) == "Cc"


def clean(value: str | None, field: str, *, multiline: bool = False) -> str | None:
    """``value`` unchanged when it holds no control or direction character (a Windows line
    end ``\\r\\n`` in a multi-line text becomes ``\\n``); otherwise a ValidationError that
    names ``field`` and the character (``U+001B``) and its position, never the text."""
    if value is None:
        return None
    if multiline:
        value = value.replace("\r\n", "\n")
    for position, char in enumerate(value, start=1):
        if unsafe(char, multiline=multiline):
            raise ValidationError(_("{field}: a control or direction character (U+{code:04X}) at character "
                                    "{position} is not allowed in text").format(
                field=field, code=ord(char), position=position), field=field)
    return value


def unsafe_strings(data: Any, path: str = "") -> list[tuple[str, int]]:
    """Where the strings of a parsed document (a pilot.toml, an imported row) hold a
    character :func:`clean` refuses in a multi-line text: ``(key path, code point)`` each,
    the path as ``groups.0.name``."""
    found: list[tuple[str, int]] = []
    if isinstance(data, str):
        bad = next((c for c in data if unsafe(c, multiline=True)), None)
        if bad is not None:
            found.append((path, ord(bad)))
    elif isinstance(data, dict):
        for key, item in data.items():
            where = f"{path}.{key}" if path else str(key)
            found += [(where, code) for _p, code in unsafe_strings(str(key))]
            found += unsafe_strings(item, where)
    elif isinstance(data, list | tuple):
        for i, item in enumerate(data):
            found += unsafe_strings(item, f"{path}.{i}" if path else str(i))
    return found


def unsafe_message(code: int) -> str:
    """What is wrong with a string that :func:`unsafe_strings` found."""
    return _("a control or direction character (U+{code:04X}) is not allowed in text").format(code=code)


#: A henkilötunnus in running text: DDMMYY, an optional century sign (``-``, ``+``, ``A``–``F``,
#: ``U``–``Y``), the individual number and the check character, not part of a longer word.
_HETU_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{2})(\d{2})(\d{2})([-+A-FU-Y ]?)(\d{3})([0-9A-Y])(?![0-9A-Za-z])",
                           re.IGNORECASE)
_CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def _looks_like_hetu(match: re.Match) -> bool:
    day, month, _year, sign, number, check = match.groups()
    if not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
        return False
    right = _CHECK_CHARACTERS[int(day + month + _year + number) % 31] == check.upper()
    # With its century sign the shape alone is a henkilötunnus (a typo in the check
    # character is still somebody's); ten bare digits, or digits with a space where the sign
    # goes, must also carry the right check.
    return bool(sign.strip()) or right


def hetu_spans(value: str) -> list[tuple[int, int]]:
    """Where ``value`` holds something that looks like a henkilötunnus."""
    return [m.span() for m in _HETU_IN_TEXT.finditer(value or "") if _looks_like_hetu(m)]


def refuse_hetu(value: str | None, field: str) -> str | None:
    """``value`` unchanged unless it holds a henkilötunnus; then a ValidationError naming
    ``field`` and not repeating the number."""
    if value and hetu_spans(value):
        raise ValidationError(_("{field}: looks like it holds a henkilötunnus; a henkilötunnus is never written "
                                "into a free text (the audit trail keeps it): use the client code").format(
            field=field), field=field)
    return value


def clean_reason(value: str | None, field: str = "--reason") -> str | None:
    """A free text that goes to the audit trail (a reason, a note): one line, no control
    or direction characters, no henkilötunnus."""
    return refuse_hetu(clean(value, field), field)


def redact_hetu(text: str) -> str:
    """``text`` with anything that looks like a henkilötunnus replaced: the last net
    under every error message the command line prints."""
    for start, end in reversed(hetu_spans(text)):
        text = text[:start] + _("[henkilötunnus]") + text[end:]
    return text


#: What a code, an id or a business id looks like: letters, digits and ``. _ : -``, at least
#: one digit (client codes, worker ids and Y-tunnus all have one; a name has none).
_IDENTIFIER = re.compile(r"(?=[^\d]*\d)[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def shown(value: Any) -> str:
    """``value`` as an error message may repeat it (``'EX-F-01-001'``): only when it looks
    like an id. Something that looks like a name or a henkilötunnus was typed in the wrong
    place: the message says the value is not shown instead of spreading it to screens and logs."""
    text = "" if value is None else str(value)
    if _IDENTIFIER.fullmatch(text) and not hetu_spans(text):
        return repr(text)
    return _("(the value given, not shown: it may be personal data)")


def for_terminal(text: str, *, multiline: bool = True) -> str:
    """``text`` with every character :func:`clean` would refuse written as a visible escape
    (``\\x1b``, ``\\u202e``): stored text (saved before avain checked it, or by a plugin)
    cannot move the cursor, retitle the window, hide a link or reverse a line on screen."""
    if not any(unsafe(c, multiline=multiline) for c in text):
        return text
    return "".join((f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
                   if unsafe(c, multiline=multiline) else c for c in text)


#: The first characters that make a spreadsheet read a cell as a formula (or, for tab and
#: carriage return, hide one after them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: A number written as text (``-12.50``, ``-3,5``): a spreadsheet reads it as a number, never a formula.
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell that opens as text in Excel or LibreOffice: a text starting with
    ``= + - @``, tab or carriage return gets a leading apostrophe (``'=HYPERLINK(…)``).
    Numbers (a negative amount too) and None are returned as they are, and stay numbers."""
    # NFKC: a fullwidth ＝ or ＋ is read as = and + by some spreadsheets
    if (isinstance(value, str) and unicodedata.normalize("NFKC", value[:1]).startswith(FORMULA_STARTS)
            and not _NUMBER.fullmatch(value)):
        return "'" + value
    return value


def spreadsheet_row(row: Any) -> Any:
    """:func:`spreadsheet_cell` of every value of a row (a list or a dict)."""
    if isinstance(row, dict):
        return {k: spreadsheet_cell(v) for k, v in row.items()}
    return [spreadsheet_cell(v) for v in row]


class _SpreadsheetWriter:
    """A :mod:`csv` writer whose every row goes through :func:`spreadsheet_row`."""

    def __init__(self, writer: Any):
        self._writer = writer

    def writerow(self, row: Any) -> Any:
        return self._writer.writerow(spreadsheet_row(row))

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)

    def writeheader(self) -> Any:
        return self._writer.writeheader()


def csv_writer(fh: Any, **options: Any) -> _SpreadsheetWriter:
    """``csv.writer(fh, **options)`` for a file people open in a spreadsheet: every CSV
    avain writes is made with this or :func:`csv_dict_writer` (a contract test checks)."""
    return _SpreadsheetWriter(csv.writer(fh, **options))


def csv_dict_writer(fh: Any, fieldnames: Any, **options: Any) -> _SpreadsheetWriter:
    """``csv.DictWriter(fh, fieldnames, **options)``, each row's text cells made safe."""
    return _SpreadsheetWriter(csv.DictWriter(fh, fieldnames=fieldnames, **options))
