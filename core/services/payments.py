"""The core's side of payment backends: which backend a pilot uses, the budgets a month
loads, and the charges a backend reports, posted to the ledger once each.

Backends (plugins) call these services through ``app.run``; the core names no backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from .. import ledger, sealed
from ..domain import Allocation, Money, PaymentBackend, Period, Pilot, positive_amount
from ..errors import ConfigError, NotFound, Refused, ValidationError
from ..models import AccountRow, BudgetPeriodRow, ClientIdentityRow, ClientRow, TransferRow
from ..plugins import collect
from ..text import clean_reason, shown
from ..uow import UnitOfWork
from . import providers
from .common import check_actor, in_pilot, reach_client, record, session


def backends(pm) -> dict[str, PaymentBackend]:
    return {b.name: b for b in collect(pm, "avain_payment_backends")}


def backend_for(pm, pilot: Pilot) -> PaymentBackend | None:
    """The pilot's backend (``[payment] backend``), or None when it pays by commitments
    and invoices only."""
    name = pilot.raw.get("payment", {}).get("backend")
    if name is None:
        return None
    known = backends(pm)
    if name not in known:
        raise ConfigError(f"pilot {pilot.id}: payment.backend {name!r} is not a loaded backend "
                          f"(loaded: {', '.join(sorted(known)) or 'none'})")
    return known[name]


def period_allocations(uow: UnitOfWork, pilot_id: str, period: Period) -> list[Allocation]:
    """Every client's allocation (and carry-in) for ``period``: what a backend loads."""
    check_actor(uow, "ledger.verify")  # a read: backends load it, reconciliations compare it
    in_pilot(uow, pilot_id, "ledger.verify")
    s = session(uow)
    rows = s.execute(
        select(AccountRow.owner, TransferRow.amount)
        .join(AccountRow, AccountRow.id == TransferRow.credit_account_id)
        .where(AccountRow.pilot_id == pilot_id, AccountRow.kind == "budget",
               TransferRow.period == str(period), TransferRow.kind.in_(("allocation", "carry-over")))
        .order_by(AccountRow.owner)).all()
    # Corrections that reversed an allocation take it back out.
    reversed_ = s.execute(
        select(AccountRow.owner, TransferRow.amount)
        .join(AccountRow, AccountRow.id == TransferRow.debit_account_id)
        .where(AccountRow.pilot_id == pilot_id, AccountRow.kind == "budget",
               TransferRow.period == str(period), TransferRow.kind == "correction")).all()
    totals: dict[str, int] = {}
    for code, amount in rows:
        totals[code] = totals.get(code, 0) + amount
    for code, amount in reversed_:
        totals[code] = totals.get(code, 0) - amount
    return [Allocation(code, period, Money(amount)) for code, amount in totals.items() if amount > 0]


def charge_id(backend: str, external_id: str) -> str:
    return f"{backend}:{external_id}"


def record_charge(uow: UnitOfWork, *, backend: str, external_id: str, client_code: str,
                  provider_id: str, amount: Money, on_date: dt.date, memo: str | None = None
                  ) -> dict[str, Any]:
    """Post a charge a backend reports (a wallet charge, a voucher's service event) from the
    client's budget to the provider: once per external id, never beyond the budget, only in
    an open month."""
    check_actor(uow, "invoice.record")
    if not external_id or len(external_id) > 80:
        raise ValidationError("external id: 1–80 characters")
    positive_amount(amount)
    s = session(uow)
    client = s.get(ClientRow, client_code)
    if client is None:
        raise NotFound(f"no client {shown(client_code)}")
    in_pilot(uow, client.pilot_id, "invoice.record")
    provider = providers.get_row(uow, provider_id, field_name="provider")
    period = Period.of(on_date)
    status = s.get(BudgetPeriodRow, (client.pilot_id, str(period)))
    tid = charge_id(backend, external_id)
    existing = s.get(TransferRow, tid)
    if existing is None and (status is None or status.status != "open"):
        raise Refused(f"{client.pilot_id} {period} is not open for spending")
    budget_acc = ledger.account_id(s, client.pilot_id, "budget", client_code)
    payable = ledger.account_id(s, client.pilot_id, "payable", provider.id)
    t = ledger.transfer(s, tid, kind="charge", debit=budget_acc, credit=payable, amount=amount.cents,
                        period=str(period), memo=memo or f"{backend} charge {external_id}", on_date=on_date)
    data = {"transfer": t.id, "client": client_code, "provider": provider.id, "amount": t.amount,
            "period": t.period, "replayed": t.replayed}
    if not t.replayed:
        record(uow, "payment.charged", client_code, after={k: v for k, v in data.items() if k != "replayed"})
    return data


def cancel_charge(uow: UnitOfWork, *, backend: str, external_id: str, reason: str) -> dict[str, Any]:
    """Reverse a charge (a same-day cancellation): a correcting transfer; replaying it is
    harmless."""
    check_actor(uow, "invoice.record")
    clean_reason(reason)
    s = session(uow)
    tid = charge_id(backend, external_id)
    original = s.get(TransferRow, tid)
    if original is None or original.kind != "charge":
        raise NotFound(f"no {backend} charge {external_id}")
    in_pilot(uow, s.get(AccountRow, original.debit_account_id).pilot_id, "invoice.record")
    t = ledger.reverse(s, f"cancel:{tid}", original_id=tid, memo=reason)
    owner = s.get(AccountRow, original.debit_account_id).owner
    if not t.replayed:
        record(uow, "payment.charge_cancelled", owner, after={"transfer": t.id, "reverses": tid,
                                                             "amount": t.amount, "reason": reason})
    return {"transfer": t.id, "reverses": tid, "amount": t.amount, "replayed": t.replayed}


def ledger_charges(uow: UnitOfWork, *, backend: str, pilot_id: str, period: Period) -> list[dict[str, Any]]:
    """The backend's charges as the ledger has them for a month (net of cancellations),
    for reconciliation."""
    check_actor(uow, "ledger.verify")
    in_pilot(uow, pilot_id, "ledger.verify")
    s = session(uow)
    prefix = f"{backend}:"
    rows = s.execute(select(TransferRow).where(
        TransferRow.kind == "charge", TransferRow.period == str(period),
        TransferRow.id.startswith(prefix, autoescape=True))
    ).scalars().all()
    cancelled = set(s.execute(select(TransferRow.reverses).where(
        TransferRow.reverses.in_([r.id for r in rows]))).scalars()) if rows else set()
    owners = dict(s.execute(select(AccountRow.id, AccountRow.owner).where(
        AccountRow.pilot_id == pilot_id)).all())
    return [{"external_id": r.id[len(prefix):], "client": owners.get(r.debit_account_id),
             "provider": owners.get(r.credit_account_id), "amount": r.amount,
             "cancelled": r.id in cancelled} for r in rows
            if owners.get(r.debit_account_id) is not None]


def client_phone(uow: UnitOfWork, code: str, *, purpose: str) -> str | None:
    """A client's phone number for a payment rail (an e-wallet is opened by it). Reading it
    is an identity read: it goes to the access log with ``purpose``."""
    reach_client(uow, code, "client.identify")
    ident = session(uow).get(ClientIdentityRow, code)
    record(uow, "client.identity_read", code, purpose=purpose)
    if ident is None:
        return None
    from .people import open_identity

    return open_identity(sealed.ring_for_reading(uow), ident)["phone"]



