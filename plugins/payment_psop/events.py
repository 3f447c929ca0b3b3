"""PSOP event files: the JSON Schema that documents a row (``event.schema.json``) and the
typed parser that validates rows on the import path.

Per-row ``jsonschema`` validation runs at about 20 000 rows/s, too slow for a file of a
million events, so the schema stays the documented contract and rows are checked here:
a fast path for the well-formed row (exact types, the schema's own compiled patterns)
and, for anything else, a full check that mirrors the schema keyword by keyword and names
every problem. A test holds the two to the same verdict on a list of good and bad rows.

Files are read as a stream (JSON lines, or CSV with the same column names), one row at a
time, so memory does not grow with the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from avain.core.errors import ValidationError
from avain.core.text import csv_dict_writer

SCHEMA_PATH = Path(__file__).with_name("event.schema.json")
_SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_PROPS = _SCHEMA["properties"]

#: Column order of exported files (JSON lines keep it too).
FIELDS = tuple(_PROPS)
REQUIRED = tuple(_SCHEMA["required"])
STATUSES = tuple(_PROPS["status"]["enum"])
_KNOWN = frozenset(FIELDS)
_ABSENT = object()

#: The schema's patterns, compiled once and used with ``search`` as jsonschema does.
PATTERNS = {name: re.compile(p["pattern"]).search for name, p in _PROPS.items() if "pattern" in p}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_DATES = tuple(name for name, p in _PROPS.items() if p.get("format") == "date")
INT_RANGES = {name: (p["minimum"], p["maximum"]) for name, p in _PROPS.items() if p.get("type") == "integer"}
_REASON_MAX = _PROPS["reason"]["maxLength"]

_EVENT_ID, _VOUCHER, _CLIENT, _PROVIDER, _SERVICE = (
    PATTERNS[k] for k in ("event_id", "voucher_id", "client", "provider", "service"))
_UNITS_MIN, _UNITS_MAX = INT_RANGES["units"]
_PRICE_MIN, _PRICE_MAX = INT_RANGES["unit_price"]

_HINTS = {
    "event_id": "an event id: letters, digits, '.', '_' or '-', at most 80",
    "voucher_id": "a voucher id like PS-2018-01-PS-E-01-001",
    "client": "a client code like PS-E-01-001",
    "provider": "a Y-tunnus like 1572860-0",
    "service": "a catalogue service code like home-care",
}


@cache
def schema() -> dict:
    """The JSON Schema of one event row (the documented contract of the file)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


class Event(NamedTuple):
    """One parsed event row. A NamedTuple, not an attrs class: a million of these are built
    on the import path, and a tuple is the cheapest typed record Python has."""

    event_id: str
    voucher_id: str
    client: str
    provider: str
    date: dt.date
    service: str
    units: int
    unit_price: int
    status: str
    reason: str | None = None
    recorded_on: dt.date | None = None
    booked_on: dt.date | None = None

    @property
    def amount(self) -> int:
        """Cents charged: units × unit price."""
        return self.units * self.unit_price

    def as_row(self) -> dict[str, Any]:
        """The row as the file has it (dates as ISO text, absent fields left out)."""
        row = {}
        for name, value in zip(FIELDS, self, strict=True):
            if value is None:
                continue
            row[name] = value.isoformat() if isinstance(value, dt.date) else value
        return row


def iso_day(value: Any) -> dt.date | None:
    """``value`` as a date when it is one written ``YYYY-MM-DD`` (the schema's pattern and
    its date format together), else None."""
    if type(value) is str and _DATE(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse(row: Any) -> Event:
    """The event in ``row`` (a decoded JSON object), or :class:`ValidationError` naming
    every problem. Accepts exactly the rows ``event.schema.json`` accepts (with its date
    format asserted)."""
    if type(row) is dict and _KNOWN.issuperset(row):
        get = row.get
        eid, vid, client, provider = get("event_id"), get("voucher_id"), get("client"), get("provider")
        service, units, price, status = get("service"), get("units"), get("unit_price"), get("status")
        reason, recorded, booked = get("reason", _ABSENT), get("recorded_on", _ABSENT), get("booked_on", _ABSENT)
        if (type(eid) is str and _EVENT_ID(eid) and type(vid) is str and _VOUCHER(vid)
                and type(client) is str and _CLIENT(client) and type(provider) is str and _PROVIDER(provider)
                and type(service) is str and _SERVICE(service)
                and type(units) is int and _UNITS_MIN <= units <= _UNITS_MAX
                and type(price) is int and _PRICE_MIN <= price <= _PRICE_MAX
                and (status == "recorded" or (status == "booked" and booked is not _ABSENT)
                     or (status == "refused" and reason is not _ABSENT))
                and (reason is _ABSENT or (type(reason) is str and 0 < len(reason) <= _REASON_MAX))):
            day = iso_day(get("date"))
            rec = None if recorded is _ABSENT else iso_day(recorded)
            book = None if booked is _ABSENT else iso_day(booked)
            if (day is not None and (rec is not None or recorded is _ABSENT)
                    and (book is not None or booked is _ABSENT)):
                return Event(eid, vid, client, provider, day, service, units, price, status,
                             None if reason is _ABSENT else reason, rec, book)
    return _full_check(row)


assert Event._fields == FIELDS, "Event's fields follow the schema's properties, in order"


def _fragment(name: str) -> str:
    """The schema's pattern of a text field without its anchors, for use between the
    quotes of a JSON string. A final repeat of a character class that holds no quote or
    backslash is made possessive (``{0,79}+``): only the closing quote can follow it, which
    the class cannot match, so giving characters back never makes a match; the regex then
    keeps no backtracking state, a fifth of the time of matching a line."""
    pattern = _PROPS[name]["pattern"]
    assert pattern.startswith("^") and pattern.endswith("$(?!\\n)"), pattern
    return re.sub(r'(\[[^\]"\\]*\]\{[0-9]+,[0-9]+\})$', r"\1+", pattern[1:-len("$(?!\\n)")])


#: A line exactly as PSOP (and the simulator) exports a recorded or booked event: the
#: fields in schema order, ``json.dumps`` separators, no refusal reason. The string
#: fragments are the schema's own patterns, whose characters need no JSON escaping, so
#: what this accepts json.loads + :func:`parse` accept with the same values; a test holds
#: the two together. Any other line takes the general path.
_F = {k: _fragment(k) for k in ("event_id", "voucher_id", "client", "provider", "service")}
_DAY = "([0-9]{4}-[0-9]{2}-[0-9]{2})"
_WHOLE_NUMBER = "(0|[1-9][0-9]{0,9}+)"  # followed by a comma: possessive as above
_LINE = re.compile(
    '\\{"event_id": "(' + _F["event_id"] + ')", "voucher_id": "(' + _F["voucher_id"] + ')", '
    '"client": "(' + _F["client"] + ')", "provider": "(' + _F["provider"] + ')", "date": "' + _DAY + '", '
    '"service": "(' + _F["service"] + ')", "units": ' + _WHOLE_NUMBER + ', "unit_price": ' + _WHOLE_NUMBER + ', '
    '"status": "(recorded|booked)"(?:, "recorded_on": "' + _DAY + '")?(?:, "booked_on": "' + _DAY + '")?'
    '\\}[ \\t\\n\\r]*'
).fullmatch


def parse_line(line: str) -> Event:
    """The event on one line of a JSON lines file. Raises :class:`ValidationError` for a
    bad row and ``json.JSONDecodeError`` for a line that is not JSON."""
    m = _LINE(line)
    if m is not None:
        eid, vid, client, provider, day, service, units, price, status, recorded, booked = m.groups()
        units, price = int(units), int(price)
        if (_UNITS_MIN <= units <= _UNITS_MAX and _PRICE_MIN <= price <= _PRICE_MAX
                and (booked is not None or status == "recorded")):
            try:
                return _new(Event, (eid, vid, client, provider, _fromiso(day), service, units, price, status, None,
                                    _fromiso(recorded) if recorded else None, _fromiso(booked) if booked else None))
            except ValueError:
                pass
    return parse(json.loads(line))


_fromiso = dt.date.fromisoformat
_new = tuple.__new__  # Event(...) without the keyword handling of its generated __new__


def _is_integer(value: Any) -> bool:
    """JSON Schema's integer (draft 2020-12): an int that is not a bool, or a float with
    no fraction."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _full_check(row: Any) -> Event:
    """Every problem of a row the fast path did not take, keyword by keyword as the
    schema says; the event when there is none (e.g. ``units`` written as ``2.0``)."""
    if not isinstance(row, dict):
        raise ValidationError("not an object with named fields")
    errors = [f"{name}: is required" for name in REQUIRED if name not in row]
    unknown = sorted(k for k in row if k not in _KNOWN)
    if unknown:
        errors.append(f"{', '.join(map(str, unknown))}: not a field of a PSOP event "
                      f"(known: {', '.join(FIELDS)})")
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name not in _KNOWN:
            continue
        if name in PATTERNS and name not in _DATES:
            if not isinstance(value, str) or not PATTERNS[name](value):
                errors.append(f"{name}: {value!r} is not {_HINTS[name]}")
            else:
                values[name] = value
        elif name in _DATES:
            day = iso_day(value) if isinstance(value, str) else None
            if day is None:
                errors.append(f"{name}: {value!r} is not a date like 2018-01-31")
            else:
                values[name] = day
        elif name in INT_RANGES:
            low, high = INT_RANGES[name]
            if not _is_integer(value):
                errors.append(f"{name}: {value!r} is not a whole number")
            elif value < low:
                errors.append(f"{name}: {value!r} is less than the minimum of {low}")
            elif value > high:
                errors.append(f"{name}: {value!r} is more than the maximum of {high}")
            else:
                values[name] = int(value)
        elif name == "status":
            if not isinstance(value, str) or value not in STATUSES:
                errors.append(f"status: {value!r} is not one of {', '.join(STATUSES)}")
            else:
                values[name] = value
        elif name == "reason":
            if not isinstance(value, str) or not 0 < len(value) <= _REASON_MAX:
                errors.append(f"reason: must be text of 1–{_REASON_MAX} characters")
            else:
                values[name] = value
    status = row.get("status")
    if status == "booked" and "booked_on" not in row:
        errors.append("booked_on: is required when status is booked")
    if status == "refused" and "reason" not in row:
        errors.append("reason: is required when status is refused")
    if errors:
        raise ValidationError("; ".join(errors), errors)
    return Event(**values)


# --- files -----------------------------------------------------------------------------


def read(path: str | Path) -> Iterator[tuple[int, Event | ValidationError]]:
    """``(line, event or error)`` for each row of a file, streamed; ``line`` is the line
    number an editor shows. ``.csv`` files are CSV with a header row; anything else is JSON
    lines. Blank lines are skipped. The file is opened when the first row is asked for."""
    path = Path(path)
    return _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Event | ValidationError]]:
    decode_error = json.JSONDecodeError
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            try:
                yield n, parse_line(line)
            except ValidationError as exc:
                yield n, exc
            except decode_error as exc:
                if line.strip():
                    yield n, ValidationError(f"not valid JSON: {exc.msg} (column {exc.colno})")


_WHOLE = re.compile(r"-?[0-9]+").fullmatch


def _read_csv(path: Path) -> Iterator[tuple[int, Event | ValidationError]]:
    """CSV rows as the JSON rows they stand for: empty cells are absent, integer columns
    written in decimal digits are numbers (anything else stays text and is refused)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        unknown = [h for h in names if h not in _KNOWN]
        if unknown:
            yield 1, ValidationError(f"columns {', '.join(unknown)} are not fields of a PSOP event "
                                            f"(known: {', '.join(FIELDS)})")
            return
        ints = [i for i, h in enumerate(names) if h in INT_RANGES]
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            where = reader.line_num
            if len(cells) != len(names):
                yield where, ValidationError(f"{len(cells)} cells, the header has {len(names)}")
                continue
            for i in ints:
                if _WHOLE(cells[i]):
                    cells[i] = int(cells[i])
            row = {k: v for k, v in zip(names, cells, strict=True) if v != ""}
            try:
                yield where, parse(row)
            except ValidationError as exc:
                yield where, exc


def write_jsonl(rows, path: str | Path) -> int:
    """Write rows (dicts or events) as JSON lines; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.as_row() if isinstance(row, Event) else row, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def write_csv(rows, path: str | Path) -> int:
    n = 0
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv_dict_writer(fh, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_row() if isinstance(row, Event) else row)
            n += 1
    return n
