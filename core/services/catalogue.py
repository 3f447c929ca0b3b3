"""The service catalogue (palvelutarjotin): services, providers' prices, import and the
public export, search, and clients' ratings of providers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from .. import outfiles
from ..domain import UNITS, Money, Service
from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..models import InvoiceRow, PriceRow, ProviderRow, RatingRow, ServiceRow
from ..plugins import collect
from ..schema_words import in_words
from ..text import clean_reason, csv_dict_writer, unsafe_message, unsafe_strings
from ..textfile import dialect, read_text
from ..uow import UnitOfWork
from . import providers
from .common import check_actor, reach_client, record, session


def service_record(row: ServiceRow) -> Service:
    return Service(row.code, row.name_fi, row.category, row.unit, row.name_sv, row.name_en, row.note)


def service_dict(row: ServiceRow) -> dict[str, Any]:
    return {"code": row.code, "name_fi": row.name_fi, "name_sv": row.name_sv,
            "name_en": row.name_en, "category": row.category, "unit": row.unit, "note": row.note}


def sync_services(uow: UnitOfWork) -> int:
    """Load the plugins' services into the catalogue (``avain init``). Returns how many
    were added or changed."""
    s = session(uow)
    changed = 0
    for svc in collect(uow.app.pm, "avain_services", key=lambda r: r.code):
        if svc.unit not in UNITS:
            raise ValidationError(f"service {svc.code}: unit {svc.unit!r} is not one of {', '.join(UNITS)}")
        row = s.get(ServiceRow, svc.code)
        values = {"name_fi": svc.name_fi, "name_sv": svc.name_sv, "name_en": svc.name_en,
                  "category": svc.category, "unit": svc.unit, "note": svc.note}
        if row is None:
            s.add(ServiceRow(code=svc.code, source="plugin", **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            s.add(row)
            changed += 1
    return changed


def list_services(uow: UnitOfWork) -> list[dict[str, Any]]:
    check_actor(uow, "provider.read")
    return [service_dict(r) for r in session(uow).execute(select(ServiceRow).order_by(
        ServiceRow.category, ServiceRow.code)).scalars()]


def get_service(uow: UnitOfWork, code: str) -> ServiceRow | None:
    return session(uow).get(ServiceRow, code)


def price_on(uow: UnitOfWork, provider_id: str, service: str, day: dt.date) -> int | None:
    row = session(uow).execute(select(PriceRow.price).where(
        PriceRow.provider_id == provider_id, PriceRow.service_code == service,
        PriceRow.valid_from <= day, (PriceRow.valid_to.is_(None)) | (PriceRow.valid_to >= day))
        .order_by(PriceRow.valid_from.desc()).limit(1)).scalar_one_or_none()
    return row


# --- import ----------------------------------------------------------------------------


@cache
def import_schema() -> dict:
    return json.loads((files("avain.core") / "catalogue.schema.json").read_text(encoding="utf-8"))


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) pairs: ``line N`` for CSV (N as an editor shows it), ``row N`` for JSON."""
    if path.suffix.lower() == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}: not valid JSON: {exc}") from exc
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValidationError(f"{path}: expected a list of rows (or {{\"rows\": [...]}})")
        for i, row in enumerate(rows, start=1):
            yield f"row {i}", row
        return
    if path.suffix.lower() != ".csv":
        raise ValidationError(f"{path}: catalogue files are .csv or .json")
    # Excel's CSV as well as plain UTF-8: semicolons or commas, Windows-1252 or UTF-8.
    text = read_text(path, windows=True, expected="save it as CSV UTF-8 or CSV (semicolon delimited)")
    if not text.strip():
        raise ValidationError(f"{path.name}: the file is empty; a catalogue CSV starts with a header line",
                              field=path.name)
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect(text))
    try:
        for row in reader:
            cleaned = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
            yield f"line {reader.line_num}", {k: v for k, v in cleaned.items() if v not in ("", None)}
    except csv.Error as exc:
        raise ValidationError(f"{path.name}, line {reader.line_num}: not readable as CSV ({exc})") from None


def _kind(row: dict[str, Any]) -> str:
    return "price" if "provider" in row else "service"


def _date(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"{name}: {value!r} is not a date like 2018-01-31") from None


def import_file(uow: UnitOfWork, path: str | Path,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``avain catalogue import``: service rows (code, name_fi, category, unit, …) and price
    rows (provider, service, price, valid_from, valid_to) from CSV or JSON. Valid rows are
    stored, each rejected row is reported with its line and reason; a row identical to one
    stored already changes nothing, so importing a file twice is harmless. ``progress(done,
    total)`` is called as rows are read."""
    check_actor(uow, "provider.add")
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    schema = import_schema()
    validators = {k: Draft202012Validator(schema["$defs"][k], format_checker=Draft202012Validator.FORMAT_CHECKER)
                  for k in ("service", "price")}
    s = session(uow)
    added = unchanged = 0
    rejected: list[dict[str, str]] = []
    rows = list(_rows(path))
    for done, (where, row) in enumerate(rows, start=1):
        if progress:
            progress(done, len(rows))
        if not isinstance(row, dict):
            rejected.append({"where": where, "reason": "not an object with named fields"})
            continue
        unsafe = unsafe_strings(row)
        if unsafe:
            rejected.append({"where": where, "reason": f"{unsafe[0][0]}: {unsafe_message(unsafe[0][1])}"})
            continue
        kind = _kind(row)
        errors = sorted(validators[kind].iter_errors(row), key=lambda e: list(map(str, e.path)))
        if errors:
            e = errors[0]
            field = ".".join(map(str, e.path)) or "row"
            rejected.append({"where": where, "reason": f"{field}: {in_words(e)}"})
            continue
        try:
            with s.begin_nested():
                done = _import_service(s, row) if kind == "service" else _import_price(s, row)
        except ValidationError as exc:
            rejected.append({"where": where, "reason": str(exc)})
            continue
        if done:
            added += 1
        else:
            unchanged += 1
    summary = {"file": str(path), "added": added, "unchanged": unchanged, "rejected": rejected}
    if added:
        record(uow, "catalogue.imported", "catalogue", stream="organiser",
               after={"file": path.name, "added": added, "rejected": len(rejected)})
    return summary


def _import_service(s, row: dict[str, Any]) -> bool:
    existing = s.get(ServiceRow, row["code"])
    values = {k: row.get(k) for k in ("name_fi", "name_sv", "name_en", "category", "unit", "note")}
    if existing is not None:
        if all(getattr(existing, k) == v for k, v in values.items()):
            return False
        raise ValidationError(f"code: service {row['code']} exists with other details")
    s.add(ServiceRow(code=row["code"], source="import", **values))
    s.flush()
    return True


def set_price(uow: UnitOfWork, *, provider_id: str, service: str, price: Money,
              valid_from: dt.date, valid_to: dt.date | None = None) -> bool:
    """One provider's price for a service over a validity range (the same rules as an
    imported row). Returns False when the very same price is stored already."""
    check_actor(uow, "provider.add")
    row = {"provider": provider_id, "service": service, "price": price.decimal(),
           "valid_from": valid_from.isoformat()}
    if valid_to is not None:
        row["valid_to"] = valid_to.isoformat()
    return _import_price(session(uow), row)


def _import_price(s, row: dict[str, Any]) -> bool:
    provider_id = providers.validate_business_id(str(row["provider"]), field_name="provider")
    if s.get(ProviderRow, provider_id) is None:
        raise ValidationError(f"provider: no provider {provider_id}")
    if s.get(ServiceRow, row["service"]) is None:
        raise ValidationError(f"service: {row['service']!r} is not in the catalogue")
    price = Money.parse(str(row["price"]), field_name="price")
    if price.cents < 0:
        raise ValidationError("price: must not be negative")
    start = _date(row["valid_from"], "valid_from")
    end = _date(row["valid_to"], "valid_to") if row.get("valid_to") else None
    if end is not None and end < start:
        raise ValidationError(f"valid_to: {end.isoformat()} is before valid_from {start.isoformat()}")
    same = s.execute(select(PriceRow).where(
        PriceRow.provider_id == provider_id, PriceRow.service_code == row["service"],
        PriceRow.valid_from == start)).scalar_one_or_none()
    if same is not None and same.price == price.cents and same.valid_to == end:
        return False
    overlapping = s.execute(select(PriceRow).where(
        PriceRow.provider_id == provider_id, PriceRow.service_code == row["service"],
        (PriceRow.valid_to.is_(None)) | (PriceRow.valid_to >= start),
        *([PriceRow.valid_from <= end] if end else []))).scalars().first()
    if overlapping is not None:
        until = overlapping.valid_to.isoformat() if overlapping.valid_to else "on"
        raise ValidationError(f"valid_from: overlaps the price of {overlapping.valid_from.isoformat()}–{until}")
    s.add(PriceRow(provider_id=provider_id, service_code=row["service"], price=price.cents,
                   valid_from=start, valid_to=end))
    s.flush()
    return True


# --- ratings ---------------------------------------------------------------------------


def rate(uow: UnitOfWork, invoice_id: int, *, stars: int, text: str | None = None) -> dict[str, Any]:
    """The client (or their HB assistant) rates the provider of a paid purchase, once."""
    clean_reason(text, "--text")
    inv = session(uow).get(InvoiceRow, invoice_id)
    if inv is None:
        raise NotFound(f"no invoice {invoice_id}")
    reach_client(uow, inv.client_code, "catalogue.rate")
    if uow.actor.role not in ("client", "assistant"):
        raise PermissionDenied("ratings come from the client or their HB assistant")
    if inv.status != "paid":
        raise Conflict(f"invoice {invoice_id} is not paid yet: rate after a paid purchase")
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValidationError("--stars: a whole number from 1 to 5")
    if text is not None and len(text) > 1000:
        raise ValidationError("--text: at most 1 000 characters")
    s = session(uow)
    if s.execute(select(RatingRow.id).where(RatingRow.invoice_id == invoice_id)).first():
        raise Conflict(f"the purchase of invoice {invoice_id} is rated already")
    row = RatingRow(invoice_id=invoice_id, provider_id=inv.provider_id, client_code=inv.client_code,
                    stars=stars, text=(text or "").strip() or None, rated_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    record(uow, "provider.rated", inv.client_code,
           after={"provider": inv.provider_id, "invoice": invoice_id, "stars": stars})
    return {"provider": inv.provider_id, "stars": stars, **rating_summary(uow, inv.provider_id)}


def rating_summary(uow: UnitOfWork, provider_id: str) -> dict[str, Any]:
    avg, n = session(uow).execute(select(func.avg(RatingRow.stars), func.count()).where(
        RatingRow.provider_id == provider_id)).one()
    return {"average": _average(avg), "ratings": n}


def _average(avg: Any) -> float | None:
    return round(float(avg), 1) if avg is not None else None


# --- search and export -----------------------------------------------------------------


def _offers(uow: UnitOfWork, on_date: dt.date, pilot_id: str | None = None) -> list[dict[str, Any]]:
    """Every (approved provider, service, price) on ``on_date``."""
    s = session(uow)
    approved: dict[str, dict[str, set[str]]] = {}
    for a in providers.approvals_between(uow, on_date, on_date, pilot_id=pilot_id):
        for code in json.loads(a.services):
            approved.setdefault(a.provider_id, {}).setdefault(code, set()).add(a.pilot_id)
    ids = sorted(approved)
    services = {r.code: r for r in s.execute(select(ServiceRow)).scalars()}
    provs = {r.id: r for r in s.execute(select(ProviderRow).where(ProviderRow.id.in_(ids))).scalars()}
    # Each (provider, service)'s price that day, as price_on gives it (the latest range that
    # began by then), and each provider's ratings: one query each for all the offers.
    prices: dict[tuple[str, str], int] = {}
    for provider_id, code, price in s.execute(
            select(PriceRow.provider_id, PriceRow.service_code, PriceRow.price).where(
                PriceRow.provider_id.in_(ids), PriceRow.valid_from <= on_date,
                (PriceRow.valid_to.is_(None)) | (PriceRow.valid_to >= on_date)).order_by(PriceRow.valid_from)):
        prices[provider_id, code] = price
    ratings = {pid: (avg, n) for pid, avg, n in s.execute(
        select(RatingRow.provider_id, func.avg(RatingRow.stars), func.count())
        .where(RatingRow.provider_id.in_(ids)).group_by(RatingRow.provider_id))}
    out = []
    for provider_id in ids:
        prov = provs[provider_id]
        avg, n = ratings.get(provider_id, (None, 0))
        for code, pilot_ids in sorted(approved[provider_id].items()):
            price = prices.get((provider_id, code))
            svc = services[code]
            out.append({"provider": provider_id, "provider_name": prov.name,
                        "areas": json.loads(prov.areas or "[]"), "service": code,
                        "service_fi": svc.name_fi, "service_sv": svc.name_sv, "service_en": svc.name_en,
                        "unit": svc.unit, "price": price,
                        "price_fi": Money(price).fi() if price is not None else None,
                        "pilots": sorted(pilot_ids), "rating": _average(avg), "ratings": n})
    return out


def search(uow: UnitOfWork, *, service: str | None = None, area: str | None = None,
           min_price: Money | None = None, max_price: Money | None = None,
           on_date: dt.date | None = None, pilot_id: str | None = None,
           sort: str = "price") -> list[dict[str, Any]]:
    """``avain catalogue search``: approved offers by service, area and price range,
    cheapest (or best rated) first."""
    check_actor(uow, "provider.read")
    if service and get_service(uow, service) is None:
        raise NotFound(f"--service: {service!r} is not in the catalogue")
    rows = _offers(uow, on_date or dt.date.today(), pilot_id)
    if service:
        rows = [r for r in rows if r["service"] == service]
    if area:
        rows = [r for r in rows if area.casefold() in (a.casefold() for a in r["areas"])]
    if min_price is not None:
        rows = [r for r in rows if r["price"] is not None and r["price"] >= min_price.cents]
    if max_price is not None:
        rows = [r for r in rows if r["price"] is not None and r["price"] <= max_price.cents]
    if sort == "rating":
        rows.sort(key=lambda r: (-(r["rating"] or 0), r["price"] if r["price"] is not None else 1 << 62))
    else:
        rows.sort(key=lambda r: (r["price"] if r["price"] is not None else 1 << 62, -(r["rating"] or 0)))
    return rows


#: The columns of the public register. Nothing about people: no contact persons, no
#: account numbers, no clients.
EXPORT_COLUMNS = ("provider", "provider_name", "areas", "service", "service_fi", "service_sv",
                  "service_en", "unit", "price", "pilots", "rating", "ratings")


def export(uow: UnitOfWork, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """The public register of approved providers, their services and prices."""
    check_actor(uow, "provider.read")
    on_date = on_date or dt.date.today()
    offers = [{k: r[k] for k in EXPORT_COLUMNS} for r in _offers(uow, on_date)]
    return {"published": on_date.isoformat(), "offers": offers}


def write_export(data: dict[str, Any], out: Path) -> list[str]:
    """catalogue.json and catalogue.csv in ``out``, moved into place from a private folder;
    a symbolic link at ``out`` or at either file is refused, never followed."""
    with outfiles.staged(out) as work:
        (work / "catalogue.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n",
                                             encoding="utf-8")
        with (work / "catalogue.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv_dict_writer(fh, EXPORT_COLUMNS)
            writer.writeheader()
            for row in data["offers"]:
                writer.writerow({**row, "areas": ";".join(row["areas"]), "pilots": ";".join(row["pilots"])})
    return [str(out / "catalogue.json"), str(out / "catalogue.csv")]
