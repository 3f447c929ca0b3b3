"""Reading the text files people bring: CSV as spreadsheets write it (comma, semicolon
or tab; with or without a byte-order mark; UTF-8, or Windows-1252 as Excel's "CSV
(semicolon delimited)" does on a Finnish Windows), and JSON. A file that cannot be read
is refused naming the file, the line and the encoding expected."""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import ValidationError

#: Excel's "CSV" on a Finnish (or any Western European) Windows: ä, ö, å and € in one byte.
WINDOWS_ENCODING = "cp1252"


def read_text(path: Path, *, windows: bool = False, expected: str = "save it as UTF-8") -> str:
    """The text of ``path``: UTF-8 (a byte-order mark is dropped), else, with ``windows``,
    Windows-1252. Refuses a file in neither (UTF-16, say), naming its line and what to do."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = exc
    if windows and b"\x00" not in raw:
        try:
            return raw.decode(WINDOWS_ENCODING)
        except UnicodeDecodeError as exc:
            problem = exc
    at = raw.find(b"\x00") if b"\x00" in raw else problem.start
    line = raw[:at].count(b"\n") + 1
    encodings = "UTF-8 or Windows-1252" if windows else "UTF-8"
    raise ValidationError(f"{path.name}, line {line}: not {encodings} text (byte 0x{raw[at]:02x}); {expected}",
                          field=path.name)


def dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The CSV dialect of ``text``, from its header line: comma, semicolon (what Excel
    writes where the decimal separator is a comma) or tab."""
    try:
        return csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        return csv.excel
