"""Providers (palveluntuottajat): registration, approval under the service-voucher act
(569/2009 §5) with a checklist of evidence, revocation."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from stdnum import bic as bic_mod
from stdnum import iban as iban_mod
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fi import ytunnus

from ..audit import ORGANISER
from ..domain import Pilot
from ..errors import Conflict, NotFound, ValidationError
from ..models import CommitmentRow, PriceRow, ProviderApprovalRow, ProviderRow, ServiceRow
from ..text import clean, clean_reason
from ..uow import UnitOfWork
from . import pilots, provider_bank
from .common import check_actor, record, session

#: The statutory approval criteria of the service-voucher act 569/2009 §5.
STATUTORY = {
    "prepayment_register": "in the prepayment register (ennakkoperintärekisteri)",
    "provider_register": "registered as a private social or health service provider",
    "service_level": "service at least at the level of the corresponding public service",
    "liability_insurance": "adequate liability insurance",
}


def validate_business_id(value: str, *, field_name: str = "--ytunnus") -> str:
    try:
        return ytunnus.format(ytunnus.validate(value))
    except StdnumError as exc:
        raise ValidationError(f"{field_name}: {value!r} is not a valid Y-tunnus "
                              "(e.g. 1572860-0)") from exc


def validate_iban(value: str, *, field_name: str = "--iban") -> str:
    try:
        return iban_mod.compact(iban_mod.validate(value))
    except StdnumError as exc:
        raise ValidationError(f"{field_name}: {value!r} is not a valid IBAN") from exc


def validate_bic(value: str, *, field_name: str = "--bic") -> str:
    try:
        return bic_mod.compact(bic_mod.validate(value))
    except StdnumError as exc:
        raise ValidationError(f"{field_name}: {value!r} is not a valid BIC (e.g. NDEAFIHH)") from exc


def _einvoice(value: str) -> str:
    if not (4 <= len(value.strip()) <= 35):
        raise ValidationError("--einvoice: an e-invoice address is 4–35 characters (OVT or IBAN)")
    return value.strip()


def _areas(areas) -> str:
    for area in areas:
        clean(area, "--area")
    return json.dumps(sorted({a.strip() for a in areas if a.strip()}))


def add(uow: UnitOfWork, *, business_id: str, name: str, iban: str | None = None,
        einvoice_address: str | None = None, contact: str | None = None,
        areas: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    check_actor(uow, "provider.add")
    pid = validate_business_id(business_id)
    clean(contact, "--contact")
    if not _name(name):
        raise ValidationError("--name: must not be empty")
    iban_value = validate_iban(iban) if iban else None
    einvoice_value = _einvoice(einvoice_address) if einvoice_address is not None else None
    s = session(uow)
    if s.get(ProviderRow, pid) is not None:
        raise Conflict(f"--ytunnus: provider {pid} exists already")
    row = ProviderRow(id=pid, name=name.strip(), iban=iban_value, einvoice_address=einvoice_value,
                      contact=contact, areas=_areas(areas), added_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    provider_bank.register(uow, row)
    data = as_dict(row)
    record(uow, "provider.added", pid, stream=ORGANISER, after=data)
    return data


def as_dict(row: ProviderRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "iban": row.iban, "bic": row.bic, "einvoice": row.einvoice_address,
            "contact": row.contact, "areas": json.loads(row.areas or "[]")}


#: Fields whose values stay out of the audit trail: the contact may be a person's name.
_PERSONAL = frozenset({"contact"})


def update(uow: UnitOfWork, business_id: str, *, name: str | None = None, iban: str | None = None,
           bic: str | None = None, einvoice_address: str | None = None, contact: str | None = None,
           areas: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """``avain provider update``: correct a provider's record. Only the fields given change;
    the audit event keeps each changed field's old and new value (the contact, which may
    name a person, only as "changed")."""
    check_actor(uow, "provider.add")
    row = get_row(uow, business_id, field_name="Y-TUNNUS")
    wanted: dict[str, Any] = {}
    problems = []
    for column, value, check in (("name", name, _name), ("iban", iban, validate_iban), ("bic", bic, validate_bic),
                                 ("einvoice_address", einvoice_address, _einvoice),
                                 ("contact", contact, lambda v: clean(v, "--contact").strip())):
        if value is None:
            continue
        try:
            wanted[column] = check(value)
        except ValidationError as exc:
            problems.append(str(exc))
    if areas is not None:
        wanted["areas"] = _areas(areas)
    if problems:
        raise ValidationError("\n".join(problems), problems)
    if not wanted:
        raise ValidationError("give at least one of --name, --iban, --bic, --einvoice, --contact, --area")
    had_iban = row.iban is not None
    before, after = {}, {}
    for column, value in wanted.items():
        old = getattr(row, column)
        if old == value:
            continue
        shown = column.removesuffix("_address")
        before[shown] = "(set)" if column in _PERSONAL and old else old
        after[shown] = "(changed)" if column in _PERSONAL else value
        if column == "areas":
            before[shown], after[shown] = json.loads(old or "[]"), json.loads(value)
        setattr(row, column, value)
    s = session(uow)
    s.add(row)
    s.flush()
    if after:
        record(uow, "provider.updated", row.id, stream=ORGANISER, before=before, after=after)
    data = as_dict(row) | {"changed": sorted(after)}
    if iban is not None or bic is not None:
        data["bank"] = provider_bank.changed(uow, row, had_iban=had_iban)
    return data


def _name(value: str) -> str:
    clean(value, "--name")
    if not value.strip():
        raise ValidationError("--name: must not be empty")
    return value.strip()


def get_row(uow: UnitOfWork, business_id: str, *, field_name: str = "--provider") -> ProviderRow:
    pid = validate_business_id(business_id, field_name=field_name)
    row = session(uow).get(ProviderRow, pid)
    if row is None:
        raise NotFound(f"{field_name}: no provider {pid}; see `avain provider list`")
    return row


def criteria(pilot: Pilot) -> dict[str, str]:
    """Statutory criteria plus the pilot's own extra conditions."""
    extra = {c["id"]: c["description"] for c in pilot.raw.get("approval", {}).get("extra_conditions", ())}
    return {**STATUTORY, **extra}


def _months_later(day: dt.date, months: int) -> dt.date:
    """The last day of a validity of ``months`` months starting on ``day``."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last)) - dt.timedelta(days=1)


def approve(uow: UnitOfWork, business_id: str, *, pilot_id: str, services: list[str],
            checks: dict[str, tuple[str, dt.date]], valid_from: dt.date,
            valid_to: dt.date | None = None) -> dict[str, Any]:
    """Approve a provider for services in a pilot: every criterion needs evidence and the
    date it was checked; the approval is valid from ``valid_from`` to ``valid_to`` (default:
    the pilot's ``approval.validity_months``)."""
    check_actor(uow, "provider.add")
    provider = get_row(uow, business_id, field_name="Y-TUNNUS")
    pilot = pilots.get(uow, pilot_id)
    needed = criteria(pilot)
    problems = [f"--check: {c} ({d}) has no evidence" for c, d in needed.items() if c not in checks]
    problems += [f"--check: {c} is not a criterion of pilot {pilot.id} (known: {', '.join(needed)})"
                 for c in checks if c not in needed]
    problems += [f"--check: {c}: no evidence text" for c, (ev, _) in checks.items() if not ev.strip()]
    if not services:
        problems.append("--service: name at least one service the approval covers")
    s = session(uow)
    problems += [f"--service: {c} is not in the catalogue" for c in services if s.get(ServiceRow, c) is None]
    allowed = pilot.raw.get("services")
    if allowed is not None:
        problems += [f"--service: {c} is not among pilot {pilot.id}'s services" for c in services
                     if c not in allowed and s.get(ServiceRow, c) is not None]
    if valid_to is None:
        valid_to = _months_later(valid_from, pilot.raw.get("approval", {}).get("validity_months", 24))
    if valid_to < valid_from:
        problems.append(f"--to: {valid_to.isoformat()} is before --from {valid_from.isoformat()}")
    if problems:
        raise ValidationError("\n".join(problems), problems)
    checklist = {c: {"criterion": needed[c], "evidence": ev.strip(), "checked_on": day.isoformat()}
                 for c, (ev, day) in sorted(checks.items())}
    row = ProviderApprovalRow(provider_id=provider.id, pilot_id=pilot.id,
                              services=json.dumps(sorted(set(services))), checklist=json.dumps(checklist),
                              valid_from=valid_from, valid_to=valid_to, approved_by=str(uow.actor),
                              approved_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    data = approval_dict(row)
    record(uow, "provider.approved", provider.id, stream=ORGANISER, after=data)
    if not provider.iban:
        data["warnings"] = [missing_iban(provider.id)]
    return data


def missing_iban(provider_id: str) -> str:
    """What to do about a provider that cannot be paid."""
    return (f"provider {provider_id} has no IBAN: its invoices cannot be paid until it is set "
            f"with `avain provider update {provider_id} --iban IBAN` (once an invoice of it is approved, "
            f"a second person approves the IBAN with `avain provider approve-bank {provider_id}`)")


def approval_dict(row: ProviderApprovalRow) -> dict[str, Any]:
    return {"id": row.id, "provider": row.provider_id, "pilot": row.pilot_id,
            "services": json.loads(row.services), "checklist": json.loads(row.checklist),
            "valid_from": row.valid_from.isoformat(), "valid_to": row.valid_to.isoformat(),
            "approved_by": row.approved_by,
            "revoked_on": row.revoked_on.isoformat() if row.revoked_on else None,
            "revoke_reason": row.revoke_reason}


def revoke(uow: UnitOfWork, business_id: str, *, pilot_id: str, reason: str,
           on_date: dt.date | None = None) -> dict[str, Any]:
    """Revoke every approval of the provider in the pilot, at once; flag the provider's
    open commitments so workers see them."""
    check_actor(uow, "provider.add")
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the approval is revoked")
    clean_reason(reason)
    provider = get_row(uow, business_id, field_name="Y-TUNNUS")
    pilots.get(uow, pilot_id)
    on_date = on_date or dt.date.today()
    s = session(uow)
    rows = s.execute(select(ProviderApprovalRow).where(
        ProviderApprovalRow.provider_id == provider.id, ProviderApprovalRow.pilot_id == pilot_id,
        ProviderApprovalRow.revoked_on.is_(None), ProviderApprovalRow.valid_to >= on_date)).scalars().all()
    if not rows:
        raise NotFound(f"{provider.id} has no approval in force in {pilot_id} to revoke")
    for row in rows:
        row.revoked_on, row.revoked_by, row.revoke_reason = on_date, str(uow.actor), reason.strip()
        s.add(row)
    open_commitments = s.execute(select(CommitmentRow).where(
        CommitmentRow.provider_id == provider.id, CommitmentRow.pilot_id == pilot_id,
        CommitmentRow.status == "pending")).scalars().all()
    for c in open_commitments:
        c.flag = f"provider's approval revoked on {on_date.isoformat()}: {reason.strip()}"
        s.add(c)
    data = {"provider": provider.id, "pilot": pilot_id, "revoked_on": on_date.isoformat(),
            "reason": reason.strip(), "approvals": [r.id for r in rows],
            "flagged_commitments": [c.id for c in open_commitments]}
    record(uow, "provider.revoked", provider.id, stream=ORGANISER, after=data)
    return data


def approval_on(uow: UnitOfWork, provider_id: str, pilot_id: str, service: str, day: dt.date,
                today: dt.date) -> tuple[bool, str | None]:
    """Is the provider approved in the pilot for the service on ``day``, and not revoked
    as of ``today``? With a reason in words when not."""
    rows = session(uow).execute(select(ProviderApprovalRow).where(
        ProviderApprovalRow.provider_id == provider_id, ProviderApprovalRow.pilot_id == pilot_id)
        .order_by(ProviderApprovalRow.valid_from)).scalars().all()
    covering = [r for r in rows if service in json.loads(r.services)]
    if not covering:
        return False, "no approval for this service"
    for r in covering:
        if r.valid_from <= day <= r.valid_to:
            if r.revoked_on is not None and (r.revoked_on <= day or r.revoked_on <= today):
                return False, f"approval revoked on {r.revoked_on.isoformat()}: {r.revoke_reason}"
            return True, None
    return False, "the approval is not in force on that day"


def list_providers(uow: UnitOfWork, *, pilot_id: str | None = None,
                   on_date: dt.date | None = None) -> list[dict[str, Any]]:
    check_actor(uow, "provider.read")
    on_date = on_date or dt.date.today()
    s = session(uow)
    in_force: dict[str, list[ProviderApprovalRow]] = {}
    for a in approvals_between(uow, on_date, on_date, pilot_id=pilot_id):
        in_force.setdefault(a.provider_id, []).append(a)
    out = []
    for row in s.execute(select(ProviderRow).order_by(ProviderRow.name)).scalars():
        current = in_force.get(row.id, [])
        out.append({**as_dict(row), "approved_in": sorted({a.pilot_id for a in current}),
                    "services": sorted({c for a in current for c in json.loads(a.services)})})
    return out


def approvals_between(uow: UnitOfWork, first: dt.date, last: dt.date, *,
                      pilot_id: str | None = None) -> list[ProviderApprovalRow]:
    """Every approval in force on some day from ``first`` to ``last`` (valid then and not
    revoked by then), in one query; a revocation ends an approval the day before it."""
    q = select(ProviderApprovalRow).where(
        ProviderApprovalRow.valid_from <= last, ProviderApprovalRow.valid_to >= first,
        (ProviderApprovalRow.revoked_on.is_(None)) | (ProviderApprovalRow.revoked_on > first))
    if pilot_id:
        q = q.where(ProviderApprovalRow.pilot_id == pilot_id)
    return list(session(uow).execute(q.order_by(ProviderApprovalRow.id)).scalars())


def show(uow: UnitOfWork, business_id: str) -> dict[str, Any]:
    check_actor(uow, "provider.read")
    row = get_row(uow, business_id, field_name="Y-TUNNUS")
    s = session(uow)
    approvals = [approval_dict(a) for a in s.execute(select(ProviderApprovalRow).where(
        ProviderApprovalRow.provider_id == row.id).order_by(ProviderApprovalRow.id)).scalars()]
    prices = [{"service": p.service_code, "price": p.price, "valid_from": p.valid_from.isoformat(),
               "valid_to": p.valid_to.isoformat() if p.valid_to else None}
              for p in s.execute(select(PriceRow).where(PriceRow.provider_id == row.id)
                                 .order_by(PriceRow.service_code, PriceRow.valid_from)).scalars()]
    from .catalogue import rating_summary

    return {**as_dict(row), "approvals": approvals, "prices": prices,
            "rating": rating_summary(uow, row.id),
            "bank": provider_bank.state(uow, row) if row.iban else None,
            "bank_changes": provider_bank.history(uow, row.id)}
