"""The PSOP simulator's storage: vouchers, their service lines and approved providers, and
service events, in one SQLite database (a file, or memory). The rules PSOP applies live
here: an event is refused at once with its reason, or recorded; the daily batch books
recorded events into the balances. See :mod:`.simulator` for the HTTP side.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from avain.core.domain import Money

from . import events as ev

MAX_PAGE = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS voucher (
    id TEXT PRIMARY KEY, client TEXT NOT NULL, period TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, issued_on TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS voucher_line (
    voucher_id TEXT NOT NULL REFERENCES voucher(id), service TEXT NOT NULL,
    value INTEGER NOT NULL, booked INTEGER NOT NULL DEFAULT 0, pending INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (voucher_id, service));
CREATE TABLE IF NOT EXISTS line_provider (
    voucher_id TEXT NOT NULL, service TEXT NOT NULL, provider TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_line_provider ON line_provider (voucher_id, service, provider);
CREATE TABLE IF NOT EXISTS event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, voucher_id TEXT NOT NULL,
    client TEXT NOT NULL, provider TEXT NOT NULL, date TEXT NOT NULL, service TEXT NOT NULL,
    units INTEGER NOT NULL, unit_price INTEGER NOT NULL, amount INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, recorded_on TEXT NOT NULL, booked_on TEXT, period TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_event_period ON event (period, seq);
CREATE INDEX IF NOT EXISTS ix_event_recorded ON event (status, recorded_on);
"""


class Problem(Exception):
    """A request the simulator answers with an HTTP error and a message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def as_date(value: Any, name: str) -> dt.date:
    day = ev.iso_day(value)
    if day is None:
        raise Problem(400, f"{name}: {value!r} is not a date like 2018-01-31")
    return day


def _text(body: dict, name: str, pattern_of: str | None = None, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (pattern_of and not ev.PATTERNS[pattern_of](value)):
        raise Problem(400, f"{name}: {value!r} is not valid")
    return value


def _whole(body: dict, name: str, low: int, high: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Problem(400, f"{name}: {value!r} must be a whole number {low}–{high}")
    return value


class Store:
    """The simulator's storage: one SQLite connection, one writer at a time."""

    def __init__(self, path: str = ":memory:", today: Callable[[], dt.date] = dt.date.today):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.today = today

    def close(self) -> None:
        self.db.close()

    def _tx(self, fn, *args):
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(*args)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return result

    # --- vouchers ------------------------------------------------------------------

    def put_voucher(self, voucher_id: str, body: dict) -> tuple[int, dict]:
        return self._tx(self._put_voucher, voucher_id, body)

    def _put_voucher(self, voucher_id: str, body: dict) -> tuple[int, dict]:
        if not ev.PATTERNS["voucher_id"](voucher_id):
            raise Problem(400, f"voucher id {voucher_id!r} is not valid")
        client = _text(body, "client", "client")
        period = _text(body, "period")
        start, end = as_date(body.get("valid_from"), "valid_from"), as_date(body.get("valid_to"), "valid_to")
        if end < start:
            raise Problem(400, "valid_to: before valid_from")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise Problem(400, "lines: a voucher lists at least one service with its value")
        wanted: dict[str, int] = {}
        offers: list[tuple[str, str, str, str]] = []
        for i, line in enumerate(lines):
            if not isinstance(line, dict):
                raise Problem(400, f"lines.{i}: not an object")
            service = _text(line, "service", "service")
            if service in wanted:
                raise Problem(400, f"lines.{i}: {service} is listed twice")
            wanted[service] = _whole(line, "value", 0, Money(10**9).cents)
            for j, p in enumerate(line.get("providers") or []):
                if not isinstance(p, dict):
                    raise Problem(400, f"lines.{i}.providers.{j}: not an object")
                offers.append((service, _text(p, "provider", "provider"),
                               as_date(p.get("from"), "from").isoformat(), as_date(p.get("to"), "to").isoformat()))
        db = self.db
        row = db.execute("SELECT * FROM voucher WHERE id = ?", (voucher_id,)).fetchone()
        have = {r["service"]: r for r in db.execute(
            "SELECT * FROM voucher_line WHERE voucher_id = ?", (voucher_id,))}
        old_offers = sorted(tuple(r) for r in db.execute(
            "SELECT service, provider, valid_from, valid_to FROM line_provider WHERE voucher_id = ?",
            (voucher_id,)))
        if row is not None and row["client"] != client:
            raise Problem(409, f"voucher {voucher_id} belongs to another client")
        same = (row is not None and (row["period"], row["valid_from"], row["valid_to"]) ==
                (period, start.isoformat(), end.isoformat())
                and {k: r["value"] for k, r in have.items()} == wanted and old_offers == sorted(offers))
        if same:
            return 200, {"status": "unchanged", "voucher": self._voucher(voucher_id)}
        used = {k: r["booked"] + r["pending"] for k, r in have.items() if r["booked"] + r["pending"]}
        changed = [k for k in used if wanted.get(k) != have[k]["value"]]
        if changed:
            raise Problem(409, f"voucher {voucher_id} has service events on {', '.join(sorted(changed))}: "
                               "the value of a line in use cannot change")
        if row is None:
            db.execute("INSERT INTO voucher VALUES (?, ?, ?, ?, ?, ?)",
                       (voucher_id, client, period, start.isoformat(), end.isoformat(), self.today().isoformat()))
        else:
            db.execute("UPDATE voucher SET period = ?, valid_from = ?, valid_to = ? WHERE id = ?",
                       (period, start.isoformat(), end.isoformat(), voucher_id))
        for service in set(have) - set(wanted):
            db.execute("DELETE FROM voucher_line WHERE voucher_id = ? AND service = ?", (voucher_id, service))
        for service, value in wanted.items():
            db.execute("INSERT INTO voucher_line (voucher_id, service, value) VALUES (?, ?, ?) "
                       "ON CONFLICT (voucher_id, service) DO UPDATE SET value = excluded.value",
                       (voucher_id, service, value))
        db.execute("DELETE FROM line_provider WHERE voucher_id = ?", (voucher_id,))
        db.executemany("INSERT INTO line_provider VALUES (?, ?, ?, ?, ?)",
                       [(voucher_id, *offer) for offer in offers])
        return (201 if row is None else 200), {"status": "issued" if row is None else "updated",
                                               "voucher": self._voucher(voucher_id)}

    def voucher(self, voucher_id: str) -> dict:
        with self.lock:
            return self._voucher(voucher_id)

    def _voucher(self, voucher_id: str) -> dict:
        row = self.db.execute("SELECT * FROM voucher WHERE id = ?", (voucher_id,)).fetchone()
        if row is None:
            raise Problem(404, f"no voucher {voucher_id}")
        offers: dict[str, list] = {}
        for p in self.db.execute("SELECT * FROM line_provider WHERE voucher_id = ? ORDER BY provider, valid_from",
                                 (voucher_id,)):
            offers.setdefault(p["service"], []).append(
                {"provider": p["provider"], "from": p["valid_from"], "to": p["valid_to"]})
        lines = [{"service": r["service"], "value": r["value"], "booked": r["booked"], "pending": r["pending"],
                  "balance": r["value"] - r["booked"], "available": r["value"] - r["booked"] - r["pending"],
                  "providers": offers.get(r["service"], [])}
                 for r in self.db.execute("SELECT * FROM voucher_line WHERE voucher_id = ? ORDER BY service",
                                          (voucher_id,))]
        return {"id": row["id"], "client": row["client"], "period": row["period"],
                "valid_from": row["valid_from"], "valid_to": row["valid_to"], "issued_on": row["issued_on"],
                "value": sum(line["value"] for line in lines),
                "balance": sum(line["balance"] for line in lines), "lines": lines}

    # --- events --------------------------------------------------------------------

    def record_event(self, body: dict) -> tuple[int, dict]:
        return self._tx(self._record_event, body)

    def _record_event(self, body: dict) -> tuple[int, dict]:
        event_id = _text(body, "event_id", "event_id", required=False)
        voucher_id = _text(body, "voucher_id", "voucher_id")
        provider = _text(body, "provider", "provider")
        service = _text(body, "service", "service")
        day = as_date(body.get("date"), "date")
        units = _whole(body, "units", *ev.INT_RANGES["units"])
        price = _whole(body, "unit_price", *ev.INT_RANGES["unit_price"])
        recorded_on = as_date(body["recorded_on"], "recorded_on") if body.get("recorded_on") else self.today()
        db = self.db
        if event_id is None:
            event_id = f"ev-{(db.execute('SELECT coalesce(max(seq), 0) FROM event').fetchone()[0] + 1):08d}"
        else:
            old = db.execute("SELECT * FROM event WHERE id = ?", (event_id,)).fetchone()
            if old is not None:
                asked = (voucher_id, provider, day.isoformat(), service, units, price)
                if tuple(old[k] for k in ("voucher_id", "provider", "date", "service", "units", "unit_price")) != asked:
                    raise Problem(409, f"event {event_id} was recorded already with other details")
                return 200, _event_row(old)
        amount = units * price
        voucher = db.execute("SELECT * FROM voucher WHERE id = ?", (voucher_id,)).fetchone()
        line = db.execute("SELECT * FROM voucher_line WHERE voucher_id = ? AND service = ?",
                          (voucher_id, service)).fetchone()
        if voucher is None:  # nothing to record it against: not stored, the provider is told
            raise Problem(404, f"no voucher {voucher_id}")
        reason = None
        if not voucher["valid_from"] <= day.isoformat() <= voucher["valid_to"]:
            reason = (f"{day.isoformat()} is outside the voucher's validity "
                      f"{voucher['valid_from']}–{voucher['valid_to']}")
        elif line is None:
            services = [r[0] for r in db.execute(
                "SELECT service FROM voucher_line WHERE voucher_id = ? ORDER BY service", (voucher_id,))]
            reason = f"{service} is not on the voucher (its services: {', '.join(services)})"
        elif db.execute("SELECT 1 FROM line_provider WHERE voucher_id = ? AND service = ? AND provider = ? "
                        "AND valid_from <= ? AND valid_to >= ?",
                        (voucher_id, service, provider, day.isoformat(), day.isoformat())).fetchone() is None:
            reason = f"provider {provider} is not approved for {service} on {day.isoformat()}"
        else:
            left = line["value"] - line["booked"] - line["pending"]
            if amount > left:
                reason = (f"beyond the remaining value of {service}: {Money(amount).fi()} asked, "
                          f"{Money(left).fi()} left")
        status = "refused" if reason else "recorded"
        client = voucher["client"]
        db.execute("INSERT INTO event (id, voucher_id, client, provider, date, service, units, unit_price, amount, "
                   "status, reason, recorded_on, period) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (event_id, voucher_id, client, provider, day.isoformat(), service, units, price, amount,
                    status, reason, recorded_on.isoformat(), day.isoformat()[:7]))
        if status == "recorded":
            db.execute("UPDATE voucher_line SET pending = pending + ? WHERE voucher_id = ? AND service = ?",
                       (amount, voucher_id, service))
        return 201, _event_row(db.execute("SELECT * FROM event WHERE id = ?", (event_id,)).fetchone())

    def run_batch(self, day: dt.date) -> dict:
        """Book every event recorded before ``day`` into its voucher's balance."""
        return self._tx(self._run_batch, day)

    def _run_batch(self, day: dt.date) -> dict:
        db = self.db
        sums = db.execute("SELECT voucher_id, service, sum(amount), count(*) FROM event "
                          "WHERE status = 'recorded' AND recorded_on < ? GROUP BY voucher_id, service",
                          (day.isoformat(),)).fetchall()
        for voucher_id, service, amount, _n in sums:
            db.execute("UPDATE voucher_line SET booked = booked + ?, pending = pending - ? "
                       "WHERE voucher_id = ? AND service = ?", (amount, amount, voucher_id, service))
        db.execute("UPDATE event SET status = 'booked', booked_on = ? WHERE status = 'recorded' AND recorded_on < ?",
                   (day.isoformat(), day.isoformat()))
        return {"date": day.isoformat(), "booked": sum(n for *_, n in sums),
                "amount": sum(a for _, _, a, _ in sums)}

    def events(self, *, since: int = 0, period: str | None = None, status: str | None = None,
               prefix: str | None = None, limit: int = 1000) -> dict:
        """A page of events in the order they were recorded, after ``since`` (a sequence
        number); ``next`` is the ``since`` of the next page, None on the last one."""
        where, args = ["seq > ?"], [since]
        if period:
            where.append("period = ?")
            args.append(period)
        if status:
            where.append("status = ?")
            args.append(status)
        if prefix:
            where.append("substr(voucher_id, 1, ?) = ?")
            args += [len(prefix), prefix]
        with self.lock:
            rows = self.db.execute(f"SELECT * FROM event WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
                                   (*args, limit)).fetchall()
        return {"events": [_event_row(r) for r in rows],
                "next": rows[-1]["seq"] if len(rows) == limit else None}


def _event_row(r: sqlite3.Row) -> dict:
    """An event as the export has it: the fields of event.schema.json, nulls left out."""
    row = {"event_id": r["id"], "voucher_id": r["voucher_id"], "client": r["client"], "provider": r["provider"],
           "date": r["date"], "service": r["service"], "units": r["units"], "unit_price": r["unit_price"],
           "status": r["status"], "reason": r["reason"], "recorded_on": r["recorded_on"],
           "booked_on": r["booked_on"]}
    return {k: v for k, v in row.items() if v is not None}
