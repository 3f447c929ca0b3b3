"""ePassi transaction reports — the service's JSON answer, or its JSON or CSV export file —
validated at the edge and turned into :class:`WalletTransaction` records.

A row that breaks the schema is named (``file: line 4`` or ``transaction 3f9a-000012``)
with every reason, and left out; the good rows go on.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from attrs import frozen
from jsonschema import Draft202012Validator

from avain.core.domain import Money, Period
from avain.core.errors import AvainError, NotFound, ValidationError
from avain.core.schema_words import in_words

from .wallets import CSV_COLUMNS, HELSINKI

#: One transaction as the service reports it (JSON form: amounts in cents).
ROW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ePassi transaction",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "type", "timestamp", "period", "phone", "client_ref", "amount"],
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$",
               "description": "The service's transaction id, unique in the service."},
        "type": {"enum": ["load", "withdraw", "charge", "cancel"],
                 "description": "load/withdraw: the organiser's money in and out; charge: a provider's "
                                "charge; cancel: a same-day cancellation of a charge."},
        "timestamp": {"type": "string", "format": "date-time",
                      "description": "When it happened, ISO 8601 with the UTC offset."},
        "period": {"type": "string", "pattern": "^\\d{4}-(0[1-9]|1[0-2])$",
                   "description": "The month whose budget the transaction belongs to."},
        "phone": {"type": "string", "pattern": "^\\+\\d{7,15}$", "description": "The wallet's phone number."},
        "client_ref": {"type": "string", "minLength": 1, "maxLength": 40,
                       "description": "The organiser's reference of the wallet: the avain client code."},
        "provider": {"type": ["string", "null"], "pattern": "^\\d{7}-\\d$",
                     "description": "Y-tunnus of the provider who charged (charges and cancellations)."},
        "amount": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000, "description": "Cents."},
        "identity_checked": {"type": ["boolean", "null"],
                             "description": "The provider checked the client's identity (charges)."},
        "cancels": {"type": ["string", "null"], "description": "The charge a cancellation cancels."},
        "balance": {"type": ["integer", "null"], "description": "The wallet's balance after it, cents."},
        "replayed": {"type": "boolean", "description": "Ignored (a cancellation answered twice)."},
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "charge"}}},
         "then": {"required": ["provider", "identity_checked"], "properties": {"provider": {"type": "string"}}}},
        {"if": {"properties": {"type": {"const": "cancel"}}},
         "then": {"required": ["provider", "cancels"],
                  "properties": {"provider": {"type": "string"}, "cancels": {"type": "string"}}}},
    ],
}

_VALIDATOR = Draft202012Validator(ROW_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


@frozen
class WalletTransaction:
    where: str
    id: str
    type: str
    timestamp: dt.datetime
    period: Period
    client_ref: str
    amount: int
    provider: str | None = None
    identity_checked: bool | None = None
    cancels: str | None = None

    @property
    def day(self) -> dt.date:
        """The Finnish calendar day it happened on (a charge's date in the ledger)."""
        return self.timestamp.astimezone(HELSINKI).date()


def parse_rows(rows: Iterable[tuple[str, Any]]) -> tuple[list[WalletTransaction], list[dict[str, str]]]:
    """``(where, row)`` pairs into transactions and rejected rows (``where`` and ``reason``)."""
    good: list[WalletTransaction] = []
    rejected: list[dict[str, str]] = []
    for where, row in rows:
        try:
            good.append(_parse(where, row))
        except ValidationError as exc:
            rejected.append({"where": where, "reason": "; ".join(exc.errors)})
    return good, rejected


def _parse(where: str, row: Any) -> WalletTransaction:
    if isinstance(row, ValidationError):
        raise row
    if not isinstance(row, dict):
        raise ValidationError("not an object with named fields")
    errors = sorted(_VALIDATOR.iter_errors(row), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        raise ValidationError("invalid row", [f"{'.'.join(map(str, e.absolute_path)) or 'row'}: {in_words(e)}"
                                              for e in errors])
    try:
        stamp = dt.datetime.fromisoformat(row["timestamp"])
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise ValidationError("invalid row", [f"timestamp: {row['timestamp']!r} is not a time with its UTC "
                                              "offset, e.g. 2018-01-15T10:00:00+02:00"])
    tx = WalletTransaction(where=where, id=row["id"], type=row["type"], timestamp=stamp,
                           period=Period.parse(row["period"]), client_ref=row["client_ref"],
                           amount=int(row["amount"]), provider=row.get("provider"),
                           identity_checked=row.get("identity_checked"), cancels=row.get("cancels"))
    if tx.type in ("charge", "cancel") and Period.of(tx.day) != tx.period:
        raise ValidationError("invalid row", [f"period: {tx.period} but the {tx.type} was made on {tx.day}"])
    return tx


def from_service(rows: list[Any]) -> tuple[list[WalletTransaction], list[dict[str, str]]]:
    """The service's answer (already fetched whole)."""
    return parse_rows((f"transaction {r.get('id') if isinstance(r, dict) else i}", r)
                      for i, r in enumerate(rows, 1))


def read_file(path: str | Path) -> tuple[list[WalletTransaction], list[dict[str, str]]]:
    """A report file the service exported: JSON (``{"transactions": [...]}`` or a list)
    or CSV (``;``- or ``,``-separated, amounts in euros)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AvainError(f"{path}: cannot be read: {exc}") from exc
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        return parse_rows(_json_rows(path, text))
    return parse_rows(_csv_rows(path, text))


def _json_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON: {exc}") from exc
    rows = data.get("transactions") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValidationError(f"{path}: expected a list of transactions (or an object with one under "
                              "\"transactions\")")
    return [(f"{path}: transaction {i}", r) for i, r in enumerate(rows, 1)]


def _csv_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=";" if ";" in header else ",")
    fields = reader.fieldnames or []
    missing = [c for c in ("id", "type", "timestamp", "period", "phone", "client_ref", "amount") if c not in fields]
    unknown = [c for c in fields if c not in CSV_COLUMNS]
    if missing or unknown:
        raise ValidationError(f"{path}: line 1: " + "; ".join(
            ([f"missing columns: {', '.join(missing)}"] if missing else [])
            + ([f"unknown columns: {', '.join(unknown)}"] if unknown else [])))
    out: list[tuple[str, Any]] = []
    for raw in reader:
        where = f"{path}: line {reader.line_num}"
        try:
            out.append((where, _from_csv(raw)))
        except ValidationError as exc:  # a cell that is not even a value: named like the rest
            out.append((where, exc))
    return out


def _from_csv(raw: dict[str, Any]) -> dict[str, Any]:
    if None in raw:
        raise ValidationError("more cells than columns")
    row: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
    row = {k: v for k, v in row.items() if v not in ("", None)}
    for key in ("amount", "balance"):
        if key in row:
            row[key] = Money.parse(row[key], field_name=key).cents
    if "identity_checked" in row:
        flag = row["identity_checked"].lower()
        if flag not in ("yes", "no", "true", "false", "1", "0"):
            raise ValidationError(f"identity_checked: {row['identity_checked']!r} is not yes or no")
        row["identity_checked"] = flag in ("yes", "true", "1")
    return row
