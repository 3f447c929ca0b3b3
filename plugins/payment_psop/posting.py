"""Booked PSOP events posted as ledger charges, a chunk of events per transaction.

The same charges as ``payments.record_charge`` would post one by one — transfer id
``psop:<event id>``, kind ``charge``, from the client's budget to the provider's payable,
the same request fingerprint, period of the service date — so either path replays the
other's work. Posting a million events one ``app.run`` at a time costs about a
millisecond each; here a chunk costs a few statements:

* the chunk's transfer ids, clients, providers and months are looked up once;
* a replayed id with the same content changes nothing; with other content it is refused;
* each budget is debited once with the chunk's sum by a conditional update (``… WHERE
  debits + sum <= credits``), so the database still refuses to overspend; when a budget
  cannot cover the sum, its events are taken in file order while they fit and the rest
  are refused with the amount available, exactly as posting them one by one would;
* payables are credited, the transfers inserted, and one audit event names the chunk.

A crash between chunks leaves whole chunks, each of which balances.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from avain.core import ledger
from avain.core.audit import ORGANISER
from avain.core.domain import Money, Pilot
from avain.core.models import BudgetPeriodRow, ClientRow, ProviderRow
from avain.core.services.common import check_actor, record, session
from avain.core.uow import RetryableConflict, UnitOfWork

from .events import Event

BACKEND = "psop"
DEFAULT_CHUNK = 5000

_CLIENT = ClientRow.__table__.c
_PROVIDER = ProviderRow.__table__.c
_PERIOD = BudgetPeriodRow.__table__.c


def _in(column):
    return column.in_(bindparam(f"{column.name}s", expanding=True))


# Built once: a chunk's look-ups are executed with lists, not compiled afresh each time.
_CLIENTS = select(_CLIENT.code, _CLIENT.pilot_id).where(_in(_CLIENT.code))
_PROVIDERS = select(_PROVIDER.id).where(_in(_PROVIDER.id))
_ACCOUNTS = select(ledger.ACC.c.owner, ledger.ACC.c.id).where(
    ledger.ACC.c.pilot_id == bindparam("pilot"), ledger.ACC.c.kind == bindparam("kind"), _in(ledger.ACC.c.owner))
_OPEN = select(_PERIOD.period).where(_PERIOD.pilot_id == bindparam("pilot"), _PERIOD.status == "open",
                                     _in(_PERIOD.period))


@lru_cache(maxsize=1 << 16)
def _fingerprint(budget: int, payable: int, amount: int, period: str) -> str:
    """The ledger's request fingerprint of a charge: what ``ledger.transfer`` stores, so a
    replay through ``record_charge`` is recognised. A client's events repeat a few
    (provider, amount) pairs, so most of a month's fingerprints come from the cache."""
    return ledger._request_hash("charge", budget, payable, amount, False, period, None)


def post_chunk(uow: UnitOfWork, pilot: Pilot, rows: list[tuple[int, Event]]) -> dict[str, Any]:
    """Post ``rows`` (``(line, event)``, booked events in file order) in this unit of
    work. Returns counts and the refused rows as ``(line, event id, reason)``."""
    check_actor(uow, "invoice.record")
    s = session(uow)
    conn = s.connection()
    prefix = f"{BACKEND}:"
    ids = [prefix + e.event_id for _, e in rows]
    codes = list({e.client for _, e in rows})
    existing = _existing(conn, ids)
    clients = dict(conn.execute(_CLIENTS, {"codes": codes}).all())
    budgets = dict(conn.execute(_ACCOUNTS, {"pilot": pilot.id, "kind": "budget", "owners": codes}).all())
    providers = set(conn.execute(_PROVIDERS, {"ids": list({e.provider for _, e in rows})}).scalars())
    payables = dict(conn.execute(_ACCOUNTS, {"pilot": pilot.id, "kind": "payable", "owners": list(providers)}).all())
    for pid in sorted(providers - set(payables)):
        payables[pid] = ledger.account_id(s, pilot.id, "payable", pid)
    month_of = {d: f"{d.year:04d}-{d.month:02d}" for d in {e.date for _, e in rows}}
    open_months = set(conn.execute(_OPEN, {"pilot": pilot.id, "periods": list(set(month_of.values()))}).scalars())

    def check(code: str, provider: str, day, voucher: str) -> str | tuple[int, int, str, bool]:
        """Why events of this client, provider, day and voucher cannot be charges, or the
        accounts and month they post to and whether that month is open."""
        period = month_of[day]
        in_pilot = clients.get(code)
        if in_pilot is None:
            return f"no client {code} in avain"
        if in_pilot != pilot.id:
            return f"client {code} is not in pilot {pilot.id}"
        if voucher != f"{pilot.code}-{period}-{code}":
            return f"voucher {voucher} is not {code}'s voucher for {period}"
        if provider not in providers:
            return f"no provider {provider} in avain"
        if code not in budgets:
            return f"{code} has no budget in {pilot.id}"
        return budgets[code], payables[provider], period, period in open_months

    at = _bound(conn, "created_at", ledger.now())
    pending = _bound(conn, "pending", False)
    rejected: list[tuple[int, int, str, str]] = []  # (index, line, event id, reason)
    accepted: list[tuple] = []  # transfer rows, in the columns of _COLUMNS
    accepted_at: list[int] = []  # the index of each accepted row in ``rows``
    seen: dict[str, tuple[str, int]] = {}  # id -> (fingerprint, index of the first row)
    duplicates: list[tuple[int, int]] = []  # (index, index of the first row)
    unchanged = 0
    repeats = len(set(ids)) != len(ids)  # some event is in the chunk twice
    checked: dict[tuple, str | tuple[int, int, str, bool]] = {}
    for i, (line, e) in enumerate(rows):
        key = (e.client, e.provider, e.date, e.voucher_id)
        target = checked.get(key)
        if target is None:
            target = checked[key] = check(*key)
        if type(target) is str:
            rejected.append((i, line, e.event_id, target))
            continue
        budget, payable, period, is_open = target
        tid, amount = ids[i], e.units * e.unit_price
        h = _fingerprint(budget, payable, amount, period)
        old = existing.get(tid)
        if old is not None:  # posted before: a replay, also once its month has closed
            if old == h:
                unchanged += 1
            else:
                rejected.append((i, line, e.event_id, f"event {e.event_id} was posted before with other details"))
            continue
        if not is_open:
            rejected.append((i, line, e.event_id, f"{pilot.id} {period} is not open for spending"))
            continue
        if repeats:
            first = seen.get(tid)
            if first is not None:
                if first[0] == h:
                    duplicates.append((i, first[1]))
                else:
                    rejected.append((i, line, e.event_id, f"event {e.event_id} appears twice with other details"))
                continue
            seen[tid] = (h, i)
        accepted.append((tid, "charge", budget, payable, amount, pending, None, None, period,
                         f"{BACKEND} charge {e.event_id}", h, at))
        accepted_at.append(i)

    refused = _debit_budgets(conn, accepted, accepted_at)
    for i, reason in refused.items():
        rejected.append((i, rows[i][0], rows[i][1].event_id, reason))
    for i, first in duplicates:  # a repeated row shares the fate of its first
        if first in refused:
            rejected.append((i, rows[i][0], rows[i][1].event_id, refused[first]))
        else:
            unchanged += 1
    posted = [t for t, i in zip(accepted, accepted_at, strict=True) if i not in refused] if refused else accepted
    credits: dict[int, int] = {}
    for t in posted:
        credits[t[3]] = credits.get(t[3], 0) + t[4]
    if credits:
        conn.execute(_CREDIT, [{"acc": k, "amount": credits[k]} for k in sorted(credits)])
    amount = sum(t[4] for t in posted)
    if posted:
        _insert(conn, posted)
        record(uow, "payment.charges_imported", f"{BACKEND}:{pilot.id}", stream=ORGANISER,
               after={"backend": BACKEND, "posted": len(posted), "amount": amount,
                      "first": posted[0][0], "last": posted[-1][0]})
    rejected.sort()
    return {"posted": len(posted), "amount": amount, "unchanged": unchanged,
            "rejected": [(line, event_id, reason) for _, line, event_id, reason in rejected]}


_A = ledger.ACC.c
#: A budget debited by a chunk's sum, only while it still covers it (the ledger's rule).
_DEBIT = (update(ledger.ACC)
          .where(_A.id == bindparam("acc"), _A.debits_posted + _A.debits_pending + bindparam("amount")
                 <= _A.credits_posted)
          .values(debits_posted=_A.debits_posted + bindparam("amount")))
_CREDIT = update(ledger.ACC).where(_A.id == bindparam("acc")).values(
    credits_posted=_A.credits_posted + bindparam("amount"))
_AVAILABLE = select(_A.id, _A.credits_posted - _A.debits_posted - _A.debits_pending).where(
    _A.id.in_(bindparam("ids", expanding=True)))
_COLUMNS = ("id", "kind", "debit_account_id", "credit_account_id", "amount", "pending", "pending_id",
            "reverses", "period", "memo", "request_hash", "created_at")


def _debit_budgets(conn, accepted: list[tuple], accepted_at: list[int]) -> dict[int, str]:
    """Debit each budget by its events' sum, never beyond what it holds. Returns the
    refused rows (index in the chunk → reason): when a budget cannot cover the whole sum,
    its events are taken in order while they fit, as one-by-one posting would. The update
    is conditional, so a budget spent meanwhile by another transaction makes the chunk
    retry instead of overspending."""
    spend: dict[int, int] = {}
    for t in accepted:
        spend[t[2]] = spend.get(t[2], 0) + t[4]
    if not spend:
        return {}
    available = dict(conn.execute(_AVAILABLE, {"ids": list(spend)}).all())
    refused: dict[int, str] = {}
    for account, total in spend.items():
        left = available[account]
        if total <= left:
            continue
        taken = 0
        for t, i in zip(accepted, accepted_at, strict=True):
            if t[2] != account:
                continue
            if t[4] <= left:
                left -= t[4]
                taken += t[4]
            else:
                refused[i] = f"not enough budget: {Money(left).fi()} available, {Money(t[4]).fi()} needed"
        spend[account] = taken
    debits = [{"acc": k, "amount": spend[k]} for k in sorted(spend) if spend[k]]
    if debits and conn.execute(_DEBIT, debits).rowcount != len(debits):
        raise RetryableConflict("a budget changed while PSOP events were posted")
    return refused


def _mark(conn) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _bound(conn, column: str, value: Any) -> Any:
    """``value`` as SQLAlchemy stores it in ``transfer.<column>`` (a boolean, a timestamp)."""
    process = ledger.TR.c[column].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process else value


def _existing(conn, ids: list[str]) -> dict[str, str]:
    """The fingerprints of the transfers among ``ids`` that exist already. A plain
    ``IN (…)`` on the driver, in parts under SQLite's limit of bound values."""
    found: dict[str, str] = {}
    unique = list(set(ids))
    for start in range(0, len(unique), 10_000):
        part = tuple(unique[start:start + 10_000])
        sql = (f"SELECT id, request_hash FROM {ledger.TR.name} "
               f"WHERE id IN ({', '.join([_mark(conn)] * len(part))})")
        found.update(conn.exec_driver_sql(sql, part).all())
    return found


def _insert(conn, rows: list[tuple]) -> None:
    """The chunk's transfers in one ``executemany`` on the driver: the rows are plain
    tuples (the constant columns already in the form SQLAlchemy stores), so the per-row
    parameter processing of a Core insert is left out."""
    mark = _mark(conn)
    sql = (f"INSERT INTO {ledger.TR.name} ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join([mark] * len(_COLUMNS))})")
    try:
        conn.exec_driver_sql(sql, rows)
    except IntegrityError as exc:  # the same events posted by a concurrent import: retry replays
        raise RetryableConflict("PSOP events posted concurrently") from exc
