"""A provider's bank details: where its invoices are paid, changed only by two people.

The details a provider is registered with take effect at once, like the rest of its
registration: at ``provider add``, or set for the first time while none of its invoices has
been approved or paid (no payment can be redirected then). Every later change of the IBAN
or BIC is *pending* until a second person approves it (``avain provider approve-bank``);
until then ``pay batch`` leaves out every invoice of the provider, whenever it was
approved, and says why.

The details in force are signed with the integrity key (kept outside the database), so an
IBAN written into the database by hand, or a forged approval, is not paid to either.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from .. import auth, integrity_key
from ..audit import ORGANISER
from ..errors import NotFound, PermissionDenied, Refused
from ..models import InvoiceRow, ProviderBankRow, ProviderRow
from ..uow import UnitOfWork
from .common import actor_pilot, check_actor, record, session

#: The integrity key's subkey for bank details.
PURPOSE = "provider-bank"
IN_FORCE = ("registered", "approved")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key(uow: UnitOfWork) -> integrity_key.IntegrityKey:
    return integrity_key.require(uow.app.engine.url.render_as_string(hide_password=False))


def _signed(row: ProviderBankRow) -> str:
    return "|".join((str(row.id), row.provider_id, row.iban, row.bic or "", row.status, row.changed_by,
                     row.approved_by or ""))


def _sign(uow: UnitOfWork, row: ProviderBankRow) -> None:
    session(uow).flush()  # the id is part of what is signed
    row.mac = _key(uow).mac(PURPOSE, _signed(row))
    session(uow).add(row)


def _rows(uow: UnitOfWork, provider_id: str) -> list[ProviderBankRow]:
    return list(session(uow).execute(select(ProviderBankRow).where(ProviderBankRow.provider_id == provider_id)
                                     .order_by(ProviderBankRow.id.desc())).scalars())


def _in_force(rows: list[ProviderBankRow]) -> ProviderBankRow | None:
    return next((r for r in rows if r.status in IN_FORCE), None)


def _pending(rows: list[ProviderBankRow]) -> ProviderBankRow | None:
    return next((r for r in rows if r.status == "pending"), None)


def _matches(row: ProviderBankRow | None, provider: ProviderRow) -> bool:
    return row is not None and (row.iban, row.bic) == (provider.iban, provider.bic)


def register(uow: UnitOfWork, provider: ProviderRow) -> ProviderBankRow | None:
    """The details given when the provider is registered: in force at once."""
    if not provider.iban:
        return None
    row = ProviderBankRow(provider_id=provider.id, iban=provider.iban, bic=provider.bic, status="registered",
                          changed_by=str(uow.actor), changed_at=_now())
    session(uow).add(row)
    _sign(uow, row)
    return row


def _ever_approved(uow: UnitOfWork, provider_id: str) -> bool:
    return session(uow).execute(select(InvoiceRow.id).where(
        InvoiceRow.provider_id == provider_id,
        InvoiceRow.status.in_(("approved", "batched", "paid")))).first() is not None


def changed(uow: UnitOfWork, provider: ProviderRow, *, had_iban: bool) -> dict[str, Any] | None:
    """``provider update`` gave an IBAN or BIC: record the provider's details as they now
    are. Back to the details in force, a pending change is withdrawn; the first details of a
    provider none of whose invoices was approved take effect at once; any other change waits
    for a second person. Returns the state of the details (see :func:`state`)."""
    if not provider.iban:
        return None
    rows = _rows(uow, provider.id)
    in_force, pending = _in_force(rows), _pending(rows)
    if _matches(in_force, provider) and _valid(uow, in_force):
        if pending is not None:
            pending.status = "withdrawn"
            session(uow).add(pending)
            record(uow, "provider.bank_change_withdrawn", provider.id, stream=ORGANISER,
                   after={"change": pending.id})
        return state(uow, provider)
    if _matches(pending, provider):
        return state(uow, provider)
    if pending is not None:
        pending.status = "withdrawn"
        session(uow).add(pending)
    first = not rows and not had_iban and not _ever_approved(uow, provider.id)
    row = ProviderBankRow(provider_id=provider.id, iban=provider.iban, bic=provider.bic,
                          status="registered" if first else "pending", changed_by=str(uow.actor), changed_at=_now())
    session(uow).add(row)
    if first:
        _sign(uow, row)
    else:
        session(uow).flush()
    record(uow, "provider.bank_changed", provider.id, stream=ORGANISER,
           after={"change": row.id, "status": row.status, "iban_ends": provider.iban[-4:],
                  "replaces": pending.id if pending is not None else None})
    return state(uow, provider)


def _valid(uow: UnitOfWork, row: ProviderBankRow) -> bool:
    return bool(row.mac) and _key(uow).check(PURPOSE, _signed(row), row.mac)


def state(uow: UnitOfWork, provider: ProviderRow) -> dict[str, Any]:
    """The provider's bank details as a payment sees them: ``status`` is ``in force``,
    ``pending`` (a change waits for a second person) or ``unapproved`` (not the details avain
    approved: written outside avain, or from before approvals were kept)."""
    rows = _rows(uow, provider.id)
    pending = _pending(rows)
    if _matches(pending, provider):
        return {"status": "pending", "change": pending.id, "changed_by": pending.changed_by,
                "changed_at": pending.changed_at.isoformat()}
    in_force = _in_force(rows)
    if _matches(in_force, provider) and _valid(uow, in_force):
        return {"status": "in force", "change": in_force.id, "changed_by": in_force.changed_by,
                "approved_by": in_force.approved_by}
    return {"status": "unapproved"}


def why_not_payable(uow: UnitOfWork, provider: ProviderRow) -> str | None:
    """Why the provider's invoices cannot be paid to its details now, with the fix; None
    when they can."""
    bank = state(uow, provider)
    if bank["status"] == "in force":
        return None
    if bank["status"] == "pending":
        return (f"the bank details of provider {provider.id} were changed on {bank['changed_at'][:10]} by "
                f"{bank['changed_by']} and wait for a second person's approval: "
                f"`avain provider approve-bank {provider.id}`")
    return (f"the bank details of provider {provider.id} are not the ones approved in avain (changed outside "
            f"avain, or kept from before approvals): enter them with `avain provider update {provider.id} "
            f"--iban IBAN` and have a second person run `avain provider approve-bank {provider.id}`")


def approve(uow: UnitOfWork, business_id: str) -> dict[str, Any]:
    """``avain provider approve-bank``: a second person, named, approves the provider's
    pending bank change (after checking it with the provider by a known channel)."""
    from .providers import get_row

    actor = check_actor(uow, "provider.bank")
    if actor.id is None:
        raise PermissionDenied(f"--as: approving bank details needs a named person (--as {actor.role}:ID), "
                               "so that the change and its approval are known to be by two people")
    provider = get_row(uow, business_id, field_name="Y-TUNNUS")
    own = actor_pilot(uow)
    if own is not None and not _serves(uow, provider.id, own):
        raise PermissionDenied(f"{actor} works in pilot {own}, and provider {provider.id} serves other pilots, not "
                               "it: its bank details are approved by finance of a pilot it serves")
    pending = _pending(_rows(uow, provider.id))
    if pending is None:
        raise NotFound(f"Y-TUNNUS: provider {provider.id} has no bank change waiting for approval")
    if not _matches(pending, provider):
        raise Refused(f"provider {provider.id}: its record no longer holds the bank details of change {pending.id} "
                      f"(changed outside avain): enter them again with `avain provider update {provider.id} "
                      "--iban IBAN`")
    if auth.same_person(pending.changed_by, str(actor)):  # people, not strings: admin is maybe admin:w1
        raise PermissionDenied(f"the bank change of provider {provider.id} was made by {pending.changed_by}: "
                               "a second person must approve it")
    pending.status, pending.approved_by, pending.approved_at = "approved", str(actor), _now()
    session(uow).add(pending)
    _sign(uow, pending)
    data = {"provider": provider.id, "change": pending.id, "iban": pending.iban, "bic": pending.bic,
            "changed_by": pending.changed_by, "changed_at": pending.changed_at.isoformat(),
            "approved_by": pending.approved_by}
    record(uow, "provider.bank_approved", provider.id, stream=ORGANISER,
           after={"change": pending.id, "iban_ends": pending.iban[-4:], "changed_by": pending.changed_by})
    return data


def _serves(uow: UnitOfWork, provider_id: str, pilot_id: str) -> bool:
    """Whether finance of ``pilot_id`` may approve the provider's bank details: the provider
    is (or was) approved in the pilot or has invoiced it, or it serves no pilot yet."""
    from ..models import ProviderApprovalRow

    s = session(uow)
    pilots = set(s.execute(select(ProviderApprovalRow.pilot_id).where(
        ProviderApprovalRow.provider_id == provider_id)).scalars())
    pilots |= set(s.execute(select(InvoiceRow.pilot_id).where(InvoiceRow.provider_id == provider_id)).scalars())
    return not pilots or pilot_id in pilots


def history(uow: UnitOfWork, provider_id: str) -> list[dict[str, Any]]:
    return [{"change": r.id, "iban": r.iban, "bic": r.bic, "status": r.status, "changed_by": r.changed_by,
             "changed_at": r.changed_at.isoformat(), "approved_by": r.approved_by,
             "approved_at": r.approved_at.isoformat() if r.approved_at else None}
            for r in reversed(_rows(uow, provider_id))]
