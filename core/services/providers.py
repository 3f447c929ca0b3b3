"""Providers (palveluntuottajat), known by their business id (Y-tunnus)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from stdnum import iban as iban_mod
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fi import ytunnus

from ..audit import ORGANISER
from ..errors import Conflict, NotFound, ValidationError
from ..models import ProviderRow
from ..uow import UnitOfWork
from .common import check_actor, record, session


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


def add(uow: UnitOfWork, *, business_id: str, name: str, iban: str | None = None) -> dict[str, Any]:
    check_actor(uow, "provider.add")
    pid = validate_business_id(business_id)
    if not name.strip():
        raise ValidationError("--name: must not be empty")
    iban_value = validate_iban(iban) if iban else None
    s = session(uow)
    if s.get(ProviderRow, pid) is not None:
        raise Conflict(f"--ytunnus: provider {pid} exists already")
    row = ProviderRow(id=pid, name=name.strip(), iban=iban_value, added_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    data = as_dict(row)
    record(uow, "provider.added", pid, stream=ORGANISER, after=data)
    return data


def as_dict(row: ProviderRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "iban": row.iban}


def get_row(uow: UnitOfWork, business_id: str, *, field_name: str = "--provider") -> ProviderRow:
    pid = validate_business_id(business_id, field_name=field_name)
    row = session(uow).get(ProviderRow, pid)
    if row is None:
        raise NotFound(f"{field_name}: no provider {pid}; see `avain provider list`")
    return row


def list_providers(uow: UnitOfWork) -> list[dict[str, Any]]:
    check_actor(uow, "provider.read")
    return [as_dict(r) for r in session(uow).execute(select(ProviderRow).order_by(ProviderRow.name)).scalars()]
