"""Care and service plans (asiakassuunnitelma), versioned: what services a client needs,
in what monthly quantities. The budget calculator prices them; purchases must be in them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select

from ..errors import NotFound, ValidationError
from ..models import PlanRow, ServiceRow
from ..uow import UnitOfWork
from .common import reach_client, record, session


def plan_dict(row: PlanRow) -> dict[str, Any]:
    return {"client": row.client_code, "version": row.version,
            "valid_from": row.valid_from.isoformat(), "items": json.loads(row.items),
            "carer_days_off": row.carer_days_off, "round_the_clock": row.round_the_clock,
            "made_by": row.made_by}


def set_plan(uow: UnitOfWork, code: str, *, valid_from: dt.date, items: dict[str, int],
             carer_days_off: bool = False, round_the_clock: bool = False) -> dict[str, Any]:
    """A new version of the client's plan, in force from ``valid_from``."""
    client = reach_client(uow, code, "decision.grant")
    s = session(uow)
    unknown = [c for c in items if s.get(ServiceRow, c) is None]
    if unknown:
        raise ValidationError(f"--item: {', '.join(sorted(unknown))} not in the catalogue; "
                              "see `avain catalogue search`")
    for service, quantity in items.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= 1000:
            raise ValidationError(f"--item: {service}={quantity} must be a whole number of units 1–1000")
    if round_the_clock and not carer_days_off:
        raise ValidationError("--round-the-clock: applies to carer's days off only (add --carer-days-off)")
    if not items and not carer_days_off:
        raise ValidationError("--item: a plan needs at least one service or carer's days off")
    version = (s.execute(select(func.max(PlanRow.version)).where(PlanRow.client_code == code))
               .scalar_one() or 0) + 1
    row = PlanRow(client_code=client.code, version=version, valid_from=valid_from,
                  items=json.dumps([{"service": k, "quantity": v} for k, v in sorted(items.items())]),
                  carer_days_off=carer_days_off, round_the_clock=round_the_clock,
                  made_by=str(uow.actor), made_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    data = plan_dict(row)
    record(uow, "plan.set", code, after=data)
    return data


def plan_in_force(uow: UnitOfWork, code: str, day: dt.date) -> PlanRow | None:
    return session(uow).execute(
        select(PlanRow).where(PlanRow.client_code == code, PlanRow.valid_from <= day)
        .order_by(PlanRow.valid_from.desc(), PlanRow.version.desc()).limit(1)).scalar_one_or_none()


def show(uow: UnitOfWork, code: str) -> list[dict[str, Any]]:
    reach_client(uow, code, "decision.read")
    rows = session(uow).execute(select(PlanRow).where(PlanRow.client_code == code)
                                .order_by(PlanRow.version)).scalars()
    out = [plan_dict(r) for r in rows]
    if not out:
        raise NotFound(f"{code} has no plan yet; see `avain plan set`")
    return out


def snapshot(row: PlanRow) -> dict[str, Any]:
    """What a decision keeps of the plan it was made on."""
    return {"version": row.version, "valid_from": row.valid_from.isoformat(),
            "items": json.loads(row.items), "carer_days_off": row.carer_days_off,
            "round_the_clock": row.round_the_clock}
