"""The ePassi simulator's storage and rules, without HTTP: wallets and transactions in
the service's own SQLite file.

It keeps the rules the pilot relies on — one month's budget on a wallet at a time, no
charge above the balance, an identity check where the organiser asks for one, a
cancellation on the day of the charge only. :mod:`.simulator` serves it over HTTP.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from avain.core.domain import Money
from avain.core.errors import Refused
from avain.core.text import csv_writer

HELSINKI = ZoneInfo("Europe/Helsinki")
DEFAULT_PAGE_SIZE = 500

Clock = Callable[[], dt.datetime]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wallets (
    phone TEXT PRIMARY KEY,
    client_ref TEXT NOT NULL,
    period TEXT NOT NULL,
    budget INTEGER NOT NULL CHECK (budget >= 0),
    balance INTEGER NOT NULL CHECK (balance >= 0),
    identity_check_required INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL CHECK (type IN ('load', 'withdraw', 'charge', 'cancel')),
    period TEXT NOT NULL,
    phone TEXT NOT NULL,
    client_ref TEXT NOT NULL,
    provider TEXT,
    amount INTEGER NOT NULL CHECK (amount > 0),
    identity_checked INTEGER,
    cancels TEXT,
    balance INTEGER NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_period ON transactions (period, seq);
"""

#: The columns of the CSV export, in order (amounts in euros with a decimal comma).
CSV_COLUMNS = ("id", "type", "timestamp", "period", "phone", "client_ref", "provider", "amount",
               "identity_checked", "cancels", "balance")

PHONE = re.compile(r"^\+\d{7,15}$")
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PROVIDER = re.compile(r"^\d{7}-\d$")


class ServiceRefusal(Refused):
    """What the service answers with a 4xx status: a machine code and a sentence."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message, [code])
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def invalid(message: str) -> ServiceRefusal:
    return ServiceRefusal(400, "invalid-request", message)


def euros(cents: int) -> str:
    return Money(cents).fi()


def helsinki_now() -> dt.datetime:
    return dt.datetime.now(HELSINKI)


class Wallets:
    """The service's rules over its SQLite file. Every public method is one transaction."""

    def __init__(self, path: str | Path, clock: Clock = helsinki_now):
        self.path = str(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(SCHEMA)
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
            if row is None:
                # Transaction ids carry the instance, so two simulators never reuse an id.
                self.instance = secrets.token_hex(2)
                self._db.execute("INSERT INTO meta VALUES ('instance', ?)", (self.instance,))
            else:
                self.instance = row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- plumbing ---------------------------------------------------------------------

    class _Tx:
        def __init__(self, wallets: Wallets):
            self.w = wallets

        def __enter__(self):
            self.w._lock.acquire()
            try:
                self.w._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.w._lock.release()
                raise

        def __exit__(self, exc_type, *_):
            try:
                self.w._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.w._lock.release()

    def _transaction(self) -> Wallets._Tx:
        return Wallets._Tx(self)

    def _now(self) -> dt.datetime:
        now = self.clock()
        return now if now.tzinfo else now.replace(tzinfo=HELSINKI)

    def _wallet(self, phone: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM wallets WHERE phone = ?", (phone,)).fetchone()

    def _record(self, kind: str, wallet: dict[str, Any], amount: int, *, period: str, balance: int,
                provider: str | None = None, identity_checked: bool | None = None,
                cancels: str | None = None) -> dict[str, Any]:
        seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM transactions").fetchone()[0]
        tx = {"id": f"{self.instance}-{seq:06d}", "type": kind, "period": period,
              "phone": wallet["phone"], "client_ref": wallet["client_ref"], "provider": provider,
              "amount": amount, "identity_checked": identity_checked, "cancels": cancels,
              "balance": balance, "timestamp": self._now().isoformat(timespec="seconds")}
        self._db.execute(
            "INSERT INTO transactions (seq, id, type, period, phone, client_ref, provider, amount,"
            " identity_checked, cancels, balance, timestamp) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (seq, tx["id"], kind, period, tx["phone"], tx["client_ref"], provider, amount,
             None if identity_checked is None else int(identity_checked), cancels, balance,
             tx["timestamp"]))
        return tx

    def _save(self, w: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO wallets (phone, client_ref, period, budget, balance, identity_check_required,"
            " updated_at) VALUES (:phone, :client_ref, :period, :budget, :balance,"
            " :identity_check_required, :updated_at) ON CONFLICT (phone) DO UPDATE SET"
            " period = :period, budget = :budget, balance = :balance,"
            " identity_check_required = :identity_check_required, updated_at = :updated_at",
            {**w, "identity_check_required": int(w["identity_check_required"]),
             "updated_at": self._now().isoformat(timespec="seconds")})

    @staticmethod
    def _public(w: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
        return {"phone": w["phone"], "client_ref": w["client_ref"], "period": w["period"],
                "budget": w["budget"], "balance": w["balance"],
                "identity_check_required": bool(w["identity_check_required"])}

    # --- the API ----------------------------------------------------------------------

    def load(self, phone: str, *, client_ref: str, period: str, amount: int, rest: str,
             identity_check_required: bool) -> dict[str, Any]:
        """Put a month's budget on the wallet: afterwards the wallet holds ``amount`` for
        ``period``. Loading a new month first deals with the previous month's rest —
        ``withdraw`` it back to the organiser, or ``keep`` it as part of the new amount —
        so a wallet never holds more than one month's budget. Loading the same month
        again with the same amount changes nothing; another amount loads or withdraws the
        difference."""
        check(PHONE.match(phone or ""), "phone: an E.164 number such as +358401234567")
        check(isinstance(client_ref, str) and 1 <= len(client_ref) <= 40, "client_ref: 1–40 characters")
        check(isinstance(period, str) and PERIOD.match(period), "period: a month like 2018-01")
        check(_is_int(amount) and 0 <= amount <= 10_000_000, "amount: whole cents, 0 or more")
        check(rest in ("withdraw", "keep"), "rest: withdraw or keep")
        check(isinstance(identity_check_required, bool), "identity_check_required: true or false")
        made: list[dict[str, Any]] = []
        with self._transaction():
            row = self._wallet(phone)
            if row is not None and row["client_ref"] != client_ref:
                raise ServiceRefusal(409, "phone-in-use", f"the phone number has the wallet of "
                                     f"{row['client_ref']}, not {client_ref}")
            w = dict(row) if row else {"phone": phone, "client_ref": client_ref, "period": period,
                                       "budget": 0, "balance": 0}
            w["identity_check_required"] = identity_check_required
            if period < w["period"]:
                raise ServiceRefusal(409, "period-passed", f"the wallet holds the budget of "
                                     f"{w['period']} already; {period} cannot be loaded any more")
            if period == w["period"]:
                change = amount - w["budget"]
                if change < 0 and w["balance"] < -change:
                    raise ServiceRefusal(409, "balance-too-low", f"the budget of {period} cannot be "
                                         f"lowered by {euros(-change)}: the wallet holds {euros(w['balance'])}")
            else:
                old = w["period"]
                if rest == "withdraw" and w["balance"]:
                    made.append(self._record("withdraw", w, w["balance"], period=old, balance=0))
                    w["balance"] = 0
                elif rest == "keep" and w["balance"] > amount:
                    excess = w["balance"] - amount
                    made.append(self._record("withdraw", w, excess, period=old, balance=amount))
                    w["balance"] = amount
                w["period"] = period
                change = amount - w["balance"]
            if change > 0:
                w["balance"] += change
                made.append(self._record("load", w, change, period=period, balance=w["balance"]))
            elif change < 0:
                w["balance"] += change
                made.append(self._record("withdraw", w, -change, period=period, balance=w["balance"]))
            w["budget"] = amount
            changed = bool(made) or row is None or bool(row["identity_check_required"]) != identity_check_required
            if changed:
                self._save(w)
        return {"wallet": self._public(w), "transactions": made, "changed": changed}

    def charge(self, *, phone: str, provider: str, amount: int, identity_checked: bool) -> dict[str, Any]:
        """A provider charges the wallet: refused above the balance, outside the month the
        wallet holds, or without the identity check the organiser asks for."""
        check(PHONE.match(phone or ""), "phone: an E.164 number such as +358401234567")
        check(isinstance(provider, str) and PROVIDER.match(provider), "provider: a Y-tunnus such as 1572860-0")
        check(_is_int(amount) and amount > 0, "amount: whole cents, more than 0")
        check(isinstance(identity_checked, bool), "identity_checked: true or false")
        with self._transaction():
            row = self._wallet(phone)
            if row is None:
                raise ServiceRefusal(404, "unknown-wallet", "no wallet has this phone number")
            w = dict(row)
            month = self._now().strftime("%Y-%m")
            if month != w["period"]:
                raise ServiceRefusal(409, "period-not-loaded", f"the wallet holds the budget of "
                                     f"{w['period']}; {month} is not loaded")
            if w["identity_check_required"] and not identity_checked:
                raise ServiceRefusal(409, "identity-check-required",
                                     "the organiser requires an identity check before a charge")
            if amount > w["balance"]:
                raise ServiceRefusal(402, "insufficient-balance", f"the wallet holds {euros(w['balance'])}, "
                                     f"the charge is {euros(amount)}", balance=w["balance"])
            w["balance"] -= amount
            tx = self._record("charge", w, amount, period=w["period"], balance=w["balance"],
                              provider=provider, identity_checked=identity_checked)
            self._save(w)
        return tx

    def cancel(self, charge_id: str) -> dict[str, Any]:
        """Cancel a charge on the day it was made; the money returns to the wallet.
        Cancelling twice returns the first cancellation."""
        with self._transaction():
            charge = self._db.execute("SELECT * FROM transactions WHERE id = ?", (charge_id,)).fetchone()
            if charge is None:
                raise ServiceRefusal(404, "unknown-transaction", f"no transaction {charge_id}")
            if charge["type"] != "charge":
                raise ServiceRefusal(409, "not-a-charge", f"{charge_id} is a {charge['type']}, not a charge")
            done = self._db.execute("SELECT * FROM transactions WHERE cancels = ?", (charge_id,)).fetchone()
            if done is not None:
                return {**_tx(done), "replayed": True}
            made_on = dt.datetime.fromisoformat(charge["timestamp"]).astimezone(HELSINKI).date()
            today = self._now().astimezone(HELSINKI).date()
            if today != made_on:
                raise ServiceRefusal(409, "cancel-window-closed", f"a charge can be cancelled on the day "
                                     f"it was made ({made_on.isoformat()}) only; today is {today.isoformat()}")
            w = dict(self._wallet(charge["phone"]))
            w["balance"] += charge["amount"]
            tx = self._record("cancel", {**w, "client_ref": charge["client_ref"]}, charge["amount"],
                              period=charge["period"], balance=w["balance"], provider=charge["provider"],
                              cancels=charge_id)
            self._save(w)
        return {**tx, "replayed": False}

    def transactions(self, period: str, *, after: str | None = None,
                     limit: int = DEFAULT_PAGE_SIZE) -> dict[str, Any]:
        """One page of the month's transactions in the order they happened; ``next`` is the
        cursor of the following page, or None on the last one."""
        check(isinstance(period, str) and PERIOD.match(period), "period: a month like 2018-01")
        with self._transaction():
            start = 0
            if after:
                row = self._db.execute("SELECT seq FROM transactions WHERE id = ?", (after,)).fetchone()
                if row is None:
                    raise invalid(f"after: no transaction {after}")
                start = row[0]
            rows = self._db.execute("SELECT * FROM transactions WHERE period = ? AND seq > ? ORDER BY seq"
                                    " LIMIT ?", (period, start, limit + 1)).fetchall()
        page = [_tx(r) for r in rows[:limit]]
        return {"period": period, "transactions": page,
                "next": page[-1]["id"] if len(rows) > limit else None}

    def transactions_csv(self, period: str) -> str:
        """The month's transactions as the service's CSV export (``;``-separated, euros)."""
        check(isinstance(period, str) and PERIOD.match(period), "period: a month like 2018-01")
        with self._transaction():
            rows = self._db.execute("SELECT * FROM transactions WHERE period = ? ORDER BY seq",
                                    (period,)).fetchall()
        out = io.StringIO()
        writer = csv_writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in map(_tx, rows):
            writer.writerow([_csv_cell(k, r[k]) for k in CSV_COLUMNS])
        return out.getvalue()

    def wallet(self, phone: str) -> dict[str, Any]:
        with self._transaction():
            row = self._wallet(phone)
        if row is None:
            raise ServiceRefusal(404, "unknown-wallet", "no wallet has this phone number")
        return self._public(row)

    def wallets(self) -> list[dict[str, Any]]:
        with self._transaction():
            rows = self._db.execute("SELECT * FROM wallets ORDER BY client_ref").fetchall()
        return [self._public(r) for r in rows]


def check(ok: Any, message: str) -> None:
    if not ok:
        raise invalid(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tx(row: sqlite3.Row) -> dict[str, Any]:
    d = {k: row[k] for k in row.keys() if k != "seq"}
    d["identity_checked"] = None if d["identity_checked"] is None else bool(d["identity_checked"])
    return d


def _csv_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in ("amount", "balance"):
        return f"{value // 100},{value % 100:02d}"
    if key == "identity_checked":
        return "yes" if value else "no"
    return str(value)
