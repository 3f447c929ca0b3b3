"""Consent (suostumus): a client's consent per purpose, given on a day and perhaps
withdrawn later. ``evaluation``: the client's data in the evaluation (HB participation
requires it where the pilot says so); ``dialogue``: the client–worker dialogue, free of
identifiers, for the evaluators. A withdrawal excludes the client from later exports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from ..domain import CONSENT_PURPOSES
from ..errors import Refused, ValidationError
from ..models import ClientRow, ConsentRow
from ..uow import UnitOfWork
from .common import reach_client, record, session

PURPOSES = CONSENT_PURPOSES


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValidationError(f"--purpose: {purpose!r} is not a purpose of consent (one of {', '.join(PURPOSES)})")
    return purpose


def set_consent(uow: UnitOfWork, code: str, *, purpose: str, given: bool,
                on_date: dt.date | None = None) -> dict[str, Any]:
    """Record that the client gave (or withdrew) consent for ``purpose`` on a day."""
    check_purpose(purpose)
    reach_client(uow, code, "client.consent")
    on_date = on_date or dt.date.today()
    s = session(uow)
    row = s.get(ConsentRow, (code, purpose))
    before = _consent_dict(row) if row else None
    if given:
        if row is None:
            row = ConsentRow(client_code=code, purpose=purpose, given_on=on_date, recorded_by=str(uow.actor),
                             recorded_at=dt.datetime.now(dt.UTC))
            s.add(row)
        else:
            row.given_on, row.withdrawn_on = on_date, None
            row.recorded_by, row.recorded_at = str(uow.actor), dt.datetime.now(dt.UTC)
    else:
        if row is None or row.withdrawn_on is not None:
            raise Refused(f"{code} has no consent for {purpose} in force to withdraw")
        if on_date < row.given_on:
            raise ValidationError(f"--date: a withdrawal on {on_date.isoformat()} is before the consent "
                                  f"given on {row.given_on.isoformat()}")
        row.withdrawn_on = on_date
        row.recorded_by, row.recorded_at = str(uow.actor), dt.datetime.now(dt.UTC)
    s.flush()
    record(uow, "consent.given" if given else "consent.withdrawn", code, before=before, after=_consent_dict(row))
    return _consent_dict(row)


def _consent_dict(row: ConsentRow) -> dict[str, Any]:
    return {"client": row.client_code, "purpose": row.purpose, "given_on": row.given_on.isoformat(),
            "withdrawn_on": row.withdrawn_on.isoformat() if row.withdrawn_on else None}


def consents(uow: UnitOfWork, code: str) -> list[dict[str, Any]]:
    reach_client(uow, code, "client.read")
    rows = session(uow).execute(select(ConsentRow).where(ConsentRow.client_code == code)
                                .order_by(ConsentRow.purpose)).scalars()
    return [_consent_dict(r) for r in rows]


def consenting(purpose: str, on_date: dt.date):
    """A select of the codes of the clients whose consent for ``purpose`` is in force on
    ``on_date``: given on or before it, not withdrawn by then (for ``IN`` clauses)."""
    check_purpose(purpose)
    return select(ConsentRow.client_code).where(
        ConsentRow.purpose == purpose, ConsentRow.given_on <= on_date,
        ConsentRow.withdrawn_on.is_(None) | (ConsentRow.withdrawn_on > on_date))


def consented(uow: UnitOfWork, purpose: str, *, pilot_id: str | None = None,
              on_date: dt.date | None = None) -> list[str]:
    """Codes of the clients whose consent for ``purpose`` is in force on ``on_date``
    (default today)."""
    stmt = consenting(purpose, on_date or dt.date.today()).order_by(ConsentRow.client_code)
    if pilot_id is not None:
        stmt = stmt.join(ClientRow, ClientRow.code == ConsentRow.client_code).where(ClientRow.pilot_id == pilot_id)
    return list(session(uow).execute(stmt).scalars())



def in_force(uow: UnitOfWork, code: str, purpose: str, on_date: dt.date | None = None) -> bool:
    """Whether the client's consent for ``purpose`` is in force on ``on_date`` (today)."""
    row = session(uow).get(ConsentRow, (code, purpose))
    on_date = on_date or dt.date.today()
    return (row is not None and row.given_on <= on_date
            and (row.withdrawn_on is None or row.withdrawn_on > on_date))


def record_at_enrolment(uow: UnitOfWork, code: str, purposes: Iterable[str], on_date: dt.date) -> None:
    """The consents a client gave when joining, in the enrolment's transaction."""
    s = session(uow)
    for purpose in dict.fromkeys(purposes):
        check_purpose(purpose)
        s.add(ConsentRow(client_code=code, purpose=purpose, given_on=on_date, recorded_by=str(uow.actor),
                         recorded_at=dt.datetime.now(dt.UTC)))
