"""The core's side of payment backends: which backend a pilot uses, the budgets a month
loads, and the charges a backend reports, posted to the ledger once each.

Backends (plugins) call these services through ``app.run``; the core names no backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from attrs import frozen
from sqlalchemy import bindparam, select

from .. import ledger, sealed
from ..audit import ORGANISER
from ..domain import Allocation, Money, PaymentBackend, Period, Pilot, positive_amount
from ..errors import ConfigError, NotFound, Refused, ValidationError
from ..models import AccountRow, BudgetPeriodRow, ClientIdentityRow, ClientRow, ProviderRow, TransferRow
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





# --- many charges at once -------------------------------------------------------------


def _named(value: str | None) -> str:
    """An id as a refusal names it: as it is when it looks like one, else not at all (it
    may be personal data typed in the wrong column)."""
    text = shown(value)
    return value if value is not None and text == repr(value) else text


@frozen
class ChargeRefusal:
    """A charge :func:`record_charges` did not post: its index in the call's columns, its
    external id, why (``code``) and what it concerns (``value``: the client, provider or
    month; for ``insufficient_funds`` the cents ``available`` and ``needed``).

    Codes: ``bad_id`` (not 1–80 characters), ``no_client``, ``other_pilot`` (the client is
    in another pilot), ``no_provider``, ``no_budget`` (the client has no budget account in
    the pilot), ``period_closed``, ``insufficient_funds``, ``conflict`` (posted before with
    other details), ``repeated`` (twice in the call with other details)."""

    index: int
    code: str
    external_id: str
    value: str | None = None
    available: int | None = None
    needed: int | None = None

    @property
    def reason(self) -> str:
        """The refusal in words."""
        code, value, eid = self.code, self.value, self.external_id
        if code == "bad_id":
            return "external id: 1–80 characters"
        if code == "no_client":
            return f"no client {_named(value)} in avain"
        if code == "other_pilot":
            return f"client {value} is not in pilot {self.pilot}"
        if code == "no_provider":
            return f"no provider {_named(value)} in avain"
        if code == "no_budget":
            return f"{value} has no budget in {self.pilot}"
        if code == "period_closed":
            return f"{self.pilot} {value} is not open for spending"
        if code == "insufficient_funds":
            return (f"not enough budget: {Money(self.available or 0).fi()} available, "
                    f"{Money(self.needed or 0).fi()} needed")
        if code == "conflict":
            return f"charge {eid} was posted before with other details"
        return f"charge {eid} appears twice with other details"

    pilot: str = ""


@frozen
class ChargesRecorded:
    """What :func:`record_charges` did: ``posted`` charges for ``amount`` cents,
    ``unchanged`` ones (posted before with the same details, or repeated in the call),
    ``refused`` ones in index order, and the first and last transfer posted."""

    posted: int
    amount: int
    unchanged: int
    refused: tuple[ChargeRefusal, ...]
    first: str | None = None
    last: str | None = None


def record_charges(uow: UnitOfWork, *, backend: str, pilot_id: str, external_ids: Sequence[str],
                   clients: Sequence[str], providers: Sequence[str], amounts: Sequence[int],
                   days: Sequence[dt.date], memos: Sequence[str] | None = None) -> ChargesRecorded:
    """Post many charges a backend reports at once (a file or a page of events), each the
    charge :func:`record_charge` would post — transfer id ``<backend>:<external id>``, from
    the client's budget to the provider's payable, in the month of its day — so either
    replays the other's work. The charges are given as columns, one value per charge in
    each, in the order they happened: a budget that cannot cover them all pays the earlier
    ones. A charge that cannot be posted is refused with its reason and the others go on
    (:class:`ChargeRefusal`); one audit event names what was posted. ``memos`` default to
    ``<backend> charge <external id>``.

    Posted through :func:`avain.core.ledger.post_many`: one statement per kind of work for
    the whole call, not a few per charge."""
    check_actor(uow, "invoice.record")
    in_pilot(uow, pilot_id, "invoice.record")
    n = len(external_ids)
    if {len(clients), len(providers), len(amounts), len(days), n if memos is None else len(memos)} != {n}:
        raise ValueError("record_charges(): every column needs one value per charge")
    if not n:
        return ChargesRecorded(0, 0, 0, ())
    s = session(uow)
    conn = s.connection()
    targets = _charge_targets(s, conn, pilot_id, set(zip(clients, providers, days, strict=True)))
    refused: list[ChargeRefusal] = []
    prefix = f"{backend}:"
    bad_ids = max(map(len, external_ids)) > 80 or not min(map(len, external_ids))
    found = list(map(targets.__getitem__, zip(clients, providers, days, strict=True)))
    if bad_ids or any(t.__class__ is tuple and len(t) == 2 for t in found):
        kept = []
        for i, (eid, t) in enumerate(zip(external_ids, found, strict=True)):
            if not 0 < len(eid) <= 80:
                refused.append(ChargeRefusal(i, "bad_id", eid, pilot=pilot_id))
            elif len(t) == 2:
                refused.append(ChargeRefusal(i, t[0], eid, t[1], pilot=pilot_id))
            else:
                kept.append(i)
    else:
        kept = None
    pick = (lambda column: column) if kept is None else (lambda column: [column[i] for i in kept])
    rows = pick(found)
    eids = pick(external_ids)
    postings = ledger.Postings(
        [prefix + e for e in eids], [t[0] for t in rows], [t[1] for t in rows], pick(list(amounts)),
        [t[2] for t in rows], [f"{backend} charge {e}" for e in eids] if memos is None else pick(list(memos)),
        pick(list(days)))
    done = ledger.post_many(s, postings, kind="charge", periods=_open_months(conn, pilot_id, postings.periods))
    for r in done.refused:
        i = r.index if kept is None else kept[r.index]
        value = postings.periods[r.index] if r.code == "period_closed" else None
        refused.append(ChargeRefusal(i, r.code, external_ids[i], value, r.available, r.needed, pilot=pilot_id))
    refused.sort(key=lambda r: r.index)
    first = postings.ids[done.posted[0]] if done.posted else None
    last = postings.ids[done.posted[-1]] if done.posted else None
    if done.posted:
        record(uow, "payment.charges_imported", f"{backend}:{pilot_id}", stream=ORGANISER,
               after={"backend": backend, "posted": len(done.posted), "amount": done.amount,
                      "first": first, "last": last})
    return ChargesRecorded(len(done.posted), done.amount, len(done.unchanged), tuple(refused), first, last)


_CLIENT = ClientRow.__table__.c
_PROVIDER = ProviderRow.__table__.c
_PERIOD = BudgetPeriodRow.__table__.c


def _in(column):
    return column.in_(bindparam(f"{column.name}s", expanding=True))


# Built once: a call's look-ups are executed with lists, not compiled afresh each time.
_CLIENTS = select(_CLIENT.code, _CLIENT.pilot_id).where(_in(_CLIENT.code))
_PROVIDERS = select(_PROVIDER.id).where(_in(_PROVIDER.id))
_ACCOUNTS = select(ledger.ACC.c.owner, ledger.ACC.c.id).where(
    ledger.ACC.c.pilot_id == bindparam("pilot"), ledger.ACC.c.kind == bindparam("kind"), _in(ledger.ACC.c.owner))
_OPEN = select(_PERIOD.period).where(_PERIOD.pilot_id == bindparam("pilot"), _PERIOD.status == "open",
                                     _in(_PERIOD.period))


def _charge_targets(s, conn, pilot_id: str, keys: set[tuple[str, str, dt.date]]) -> dict[tuple, tuple]:
    """For each distinct (client, provider, day): ``(budget, payable, month)``, or why
    charges there cannot be posted, ``(code, value)`` (the client's problems first). Made
    once per distinct key: a month's charges repeat a few of them."""
    codes = list({k[0] for k in keys})
    in_pilot_of = dict(conn.execute(_CLIENTS, {"codes": codes}).all())
    budgets = dict(conn.execute(_ACCOUNTS, {"pilot": pilot_id, "kind": "budget", "owners": codes}).all())
    known = set(conn.execute(_PROVIDERS, {"ids": list({k[1] for k in keys})}).scalars())
    payables = dict(conn.execute(_ACCOUNTS, {"pilot": pilot_id, "kind": "payable", "owners": list(known)}).all())
    for pid in sorted(known - set(payables)):
        payables[pid] = ledger.account_id(s, pilot_id, "payable", pid)
    month_of = {d: f"{d.year:04d}-{d.month:02d}" for d in {k[2] for k in keys}}
    targets: dict[tuple, tuple] = {}
    for code, provider, day in keys:
        pilot = in_pilot_of.get(code)
        if pilot is None:
            found: tuple = ("no_client", code)
        elif pilot != pilot_id:
            found = ("other_pilot", code)
        elif provider not in known:
            found = ("no_provider", provider)
        elif code not in budgets:
            found = ("no_budget", code)
        else:
            found = (budgets[code], payables[provider], month_of[day])
        targets[code, provider, day] = found
    return targets


def _open_months(conn, pilot_id: str, months: list[str]) -> set[str]:
    return set(conn.execute(_OPEN, {"pilot": pilot_id, "periods": list(set(months))}).scalars())
