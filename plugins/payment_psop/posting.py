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
* payables are credited, the transfers signed into their budget's ledger chain and
  inserted, and one audit event names the chunk.

A crash between chunks leaves whole chunks, each of which balances.
"""

from __future__ import annotations

from itertools import count
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from avain.core import ledger
from avain.core.audit import ORGANISER
from avain.core.domain import Money, Pilot
from avain.core.models import BudgetPeriodRow, ClientRow, ProviderRow
from avain.core.services.common import check_actor, record, session
from avain.core.uow import RetryableConflict, UnitOfWork

from .events import Event

BACKEND = "psop"
#: Events per transaction. Each transaction has a fixed cost (its look-ups, the audit
#: event, the commit writing the touched index pages to the WAL), so bigger chunks import
#: faster; this many keep a chunk's memory at about 20 MB and SQLite's write lock held for
#: a fraction of a second at a time.
DEFAULT_CHUNK = 20_000

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


def _fingerprint(budget: int, payable: int, amount: int, period: str) -> str:
    """The ledger's request fingerprint of a charge: what ``ledger.transfer`` stores, so a
    replay through ``record_charge`` is recognised."""
    return ledger._request_hash("charge", budget, payable, amount, False, period, None)


#: Fingerprints already made, by (budget, payable, month) and then amount: a client's
#: events repeat a few (provider, amount) pairs, so most of a month's fingerprints are
#: found here with one dictionary look-up per event. Bounded: emptied when full.
_HASHES: dict[tuple[int, int, str], dict[int, str]] = {}
_HASHES_MAX = 1 << 14
_AMOUNTS_MAX = 1 << 12


def _hashes_of(budget: int, payable: int, period: str) -> dict[int, str]:
    key = (budget, payable, period)
    found = _HASHES.get(key)
    if found is None or len(found) >= _AMOUNTS_MAX:
        if len(_HASHES) >= _HASHES_MAX:
            _HASHES.clear()
        found = _HASHES[key] = {}
    return found


_SECOND = itemgetter(1)
_EVENT_ID, _VOUCHER, _CLIENT_CODE, _PROVIDER_ID, _DAY = (itemgetter(i) for i in range(5))


def _keys(events: list[Event]):
    """Each event's (client, provider, day, voucher): what decides where its charge goes."""
    return zip(map(_CLIENT_CODE, events), map(_PROVIDER_ID, events), map(_DAY, events), map(_VOUCHER, events),
               strict=True)


def post_chunk(uow: UnitOfWork, pilot: Pilot, rows: list[tuple[int, Event]]) -> dict[str, Any]:
    """Post ``rows`` (``(line, event)``, booked events in file order) in this unit of
    work. Returns counts and the refused rows as ``(line, event id, reason)``."""
    check_actor(uow, "invoice.record")
    if not rows:
        return {"posted": 0, "amount": 0, "unchanged": 0, "rejected": []}
    s = session(uow)
    conn = s.connection()
    events = list(map(_SECOND, rows))
    # Events repeat their (client, provider, day, voucher): each distinct one is checked
    # once, and every event is then mapped to its outcome by a look-up made in C. The keys
    # are made by zip, which reuses its tuple when no one keeps it: a chunk's events make
    # no container objects that live on, and so no extra garbage-collector passes that
    # would move the import's batch of events into the oldest generation.
    distinct = set(_keys(events))
    event_ids = set(map(_EVENT_ID, events))
    prefix = f"{BACKEND}:"
    existing = _existing(conn, prefix, event_ids)
    codes = list({k[0] for k in distinct})
    clients = dict(conn.execute(_CLIENTS, {"codes": codes}).all())
    budgets = dict(conn.execute(_ACCOUNTS, {"pilot": pilot.id, "kind": "budget", "owners": codes}).all())
    providers = set(conn.execute(_PROVIDERS, {"ids": list({k[1] for k in distinct})}).scalars())
    payables = dict(conn.execute(_ACCOUNTS, {"pilot": pilot.id, "kind": "payable", "owners": list(providers)}).all())
    for pid in sorted(providers - set(payables)):
        payables[pid] = ledger.account_id(s, pilot.id, "payable", pid)
    month_of = {d: f"{d.year:04d}-{d.month:02d}" for d in {k[2] for k in distinct}}
    open_months = set(conn.execute(_OPEN, {"pilot": pilot.id, "periods": list(set(month_of.values()))}).scalars())

    # What a charge needs, checked once for each client, voucher and month, each provider,
    # and each (budget, payable, month): its target, ``[budget, payable, month, month is
    # open, fingerprints by amount, cents taken]``, shared by all the events that go there.
    of_client: dict[tuple[str, str, str], str | int | None] = {}
    targets: dict[tuple[int, int, str], list] = {}

    def client_check(code: str, voucher: str, period: str) -> str | int | None:
        """Why events of this client and voucher in this month cannot be charges, or the
        client's budget account (None when there is none)."""
        in_pilot = clients.get(code)
        if in_pilot is None:
            return f"no client {code} in avain"
        if in_pilot != pilot.id:
            return f"client {code} is not in pilot {pilot.id}"
        if voucher != f"{pilot.code}-{period}-{code}":
            return f"voucher {voucher} is not {code}'s voucher for {period}"
        return budgets.get(code)

    def check(code: str, provider: str, day, voucher: str) -> str | list:
        """Why events of this client, provider, day and voucher cannot be charges (the
        client's problems first, then the provider's, then a missing budget), or their
        target."""
        period = month_of[day]
        key = (code, voucher, period)
        budget = of_client[key] if key in of_client else of_client.setdefault(key, client_check(*key))
        if budget.__class__ is str:
            return budget
        if provider not in providers:
            return f"no provider {provider} in avain"
        if budget is None:
            return f"{code} has no budget in {pilot.id}"
        payable = payables[provider]
        target = targets.get((budget, payable, period))
        if target is None:
            target = targets[budget, payable, period] = [
                budget, payable, period, period in open_months, _hashes_of(budget, payable, period), 0]
        return target

    checked = {key: check(*key) for key in distinct}
    at = _bound(conn, "created_at", ledger.now())
    day_of = _processor(conn, "business_date") or _same  # the event's day, the charge's business date
    memo = f"{BACKEND} charge "
    rejected: list[tuple[int, int, str, str]] = []  # (index, line, event id, reason)
    # The accepted transfers, one after the other in one flat list of their values in the
    # columns of _ROW: a tuple per row would be a container object per event, and those
    # make the garbage collector run, which moves the import's batch of events into the
    # oldest generation and so triggers full collections of the whole heap.
    accepted: list = []
    accepted_at: list[int] = []  # the index in ``rows`` of each accepted transfer
    seen: dict[str, tuple[str, int]] = {}  # event id -> (fingerprint, index of the first row)
    duplicates: list[tuple[int, int]] = []  # (index, index of the first row)
    unchanged = 0
    repeats = len(event_ids) != len(events)  # some event is in the chunk twice
    for i, e, target in zip(count(), events, map(checked.__getitem__, _keys(events))):
        eid = e[0]
        if target.__class__ is str:
            rejected.append((i, rows[i][0], eid, target))
            continue
        budget, payable, period, is_open, hashes, _ = target
        amount = e[6] * e[7]  # units × unit price
        h = hashes.get(amount)
        if h is None:
            h = hashes[amount] = _fingerprint(budget, payable, amount, period)
        if existing:
            old = existing.get(eid)
            if old is not None:  # posted before: a replay, also once its month has closed
                if old == h:
                    unchanged += 1
                else:
                    rejected.append((i, rows[i][0], eid, f"event {eid} was posted before with other details"))
                continue
        if not is_open:
            rejected.append((i, rows[i][0], eid, f"{pilot.id} {period} is not open for spending"))
            continue
        if repeats:
            first = seen.get(eid)
            if first is not None:
                if first[0] == h:
                    duplicates.append((i, first[1]))
                else:
                    rejected.append((i, rows[i][0], eid, f"event {eid} appears twice with other details"))
                continue
            seen[eid] = (h, i)
        accepted += (prefix + eid, budget, payable, amount, period, memo + eid, h, at, day_of(e[4]))
        accepted_at.append(i)
        target[5] += amount

    taken = [t for t in targets.values() if t[5]]
    spend: dict[int, int] = {}
    for t in taken:
        spend[t[0]] = spend.get(t[0], 0) + t[5]
    refused = _debit_budgets(conn, spend, accepted, accepted_at)
    for i, reason in refused.items():
        rejected.append((i, rows[i][0], rows[i][1].event_id, reason))
    for i, first in duplicates:  # a repeated row shares the fate of its first
        if first in refused:
            rejected.append((i, rows[i][0], rows[i][1].event_id, refused[first]))
        else:
            unchanged += 1
    credits: dict[int, int] = {}
    if refused:
        posted = []
        for row, i in zip(_rows(accepted), accepted_at, strict=True):
            if i not in refused:
                posted += row
                credits[row[2]] = credits.get(row[2], 0) + row[3]
    else:
        posted = accepted
        for t in taken:
            credits[t[1]] = credits.get(t[1], 0) + t[5]
    if credits:
        conn.exec_driver_sql(_sql(conn, _CREDIT), [(credits[k], k) for k in sorted(credits)])
    amount = sum(credits.values())
    if posted:
        _insert(conn, _signed(conn, posted))
        record(uow, "payment.charges_imported", f"{BACKEND}:{pilot.id}", stream=ORGANISER,
               after={"backend": BACKEND, "posted": len(posted) // _WIDTH, "amount": amount,
                      "first": posted[0], "last": posted[-_WIDTH]})
    rejected.sort()
    return {"posted": len(posted) // _WIDTH, "amount": amount, "unchanged": unchanged,
            "rejected": [(line, event_id, reason) for _, line, event_id, reason in rejected]}


def _sql(conn, text: str) -> str:
    """``text`` with ``?`` as the driver's parameter mark (``%s`` for psycopg)."""
    return text if conn.dialect.paramstyle == "qmark" else text.replace("?", "%s")


# The chunk's few account statements on the driver, each one statement (an executemany
# over the budgets or payables): SQLAlchemy's per-row parameter handling of a Core
# executemany costs more than the database spends on them.
_ACC = ledger.ACC.name
#: Values bound in one ``IN (…)``: under SQLite's limit of bound values.
_IN_PART = 10_000
#: A budget debited by a chunk's sum, only while it still covers it (the ledger's rule).
_DEBIT = (f"UPDATE {_ACC} SET debits_posted = debits_posted + ? "
          "WHERE id = ? AND debits_posted + debits_pending + ? <= credits_posted")
_CREDIT = f"UPDATE {_ACC} SET credits_posted = credits_posted + ? WHERE id = ?"
_AVAILABLE = f"SELECT id, credits_posted - debits_posted - debits_pending FROM {_ACC} WHERE id IN "


def _debit_budgets(conn, spend: dict[int, int], accepted: list, accepted_at: list[int]) -> dict[int, str]:
    """Debit each budget by its events' sum (``spend``, budget → cents), never beyond what
    it holds. Returns the refused rows (index in the chunk → reason): when a budget cannot
    cover the whole sum, its events are taken in order while they fit, as one-by-one
    posting would, and ``spend`` is lowered to what was taken. The update is conditional,
    so a budget spent meanwhile by another transaction makes the chunk retry instead of
    overspending."""
    if not spend:
        return {}
    ids = sorted(spend)
    available: dict[int, int] = {}
    for start in range(0, len(ids), _IN_PART):
        part = tuple(ids[start:start + _IN_PART])
        available.update(conn.exec_driver_sql(_sql(conn, f"{_AVAILABLE}({', '.join(['?'] * len(part))})"), part).all())
    refused: dict[int, str] = {}
    for account, total in spend.items():
        left = available[account]
        if total <= left:
            continue
        taken = 0
        for t, i in zip(_rows(accepted), accepted_at, strict=True):
            if t[1] != account:
                continue
            if t[3] <= left:
                left -= t[3]
                taken += t[3]
            else:
                refused[i] = f"not enough budget: {Money(left).fi()} available, {Money(t[3]).fi()} needed"
        spend[account] = taken
    debits = [(spend[k], k, spend[k]) for k in ids if spend[k]]
    if debits and conn.exec_driver_sql(_sql(conn, _DEBIT), debits).rowcount != len(debits):
        raise RetryableConflict("a budget changed while PSOP events were posted")
    return refused


def _mark(conn) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _processor(conn, column: str):
    """How SQLAlchemy turns a value into what it stores in ``transfer.<column>`` (None:
    as it is)."""
    return ledger.TR.c[column].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def _same(value: Any) -> Any:
    return value


def _bound(conn, column: str, value: Any) -> Any:
    """``value`` as SQLAlchemy stores it in ``transfer.<column>`` (a boolean, a timestamp)."""
    process = _processor(conn, column)
    return process(value) if process else value


def _existing(conn, prefix: str, event_ids: set[str]) -> dict[str, str]:
    """The fingerprints of the transfers ``<prefix><event id>`` that exist already, by
    event id.

    On SQLite, first one range scan of the primary key between the least and the greatest
    id, limited to a little more rows than there are ids: a chunk of new events (a file's
    ids mostly ascend) finds an empty range at the cost of one index seek. Only when the
    range holds more rows than that are the ids looked up one by one with ``IN (…)``, in
    parts under SQLite's limit of bound values. ASCII ids (all the event schema allows)
    compare in SQLite's BINARY collation as in Python, so the range holds every one."""
    if not event_ids:
        return {}
    mark, cut = _mark(conn), len(prefix)
    if conn.dialect.name == "sqlite" and prefix.isascii() and all(map(str.isascii, event_ids)):
        limit = 2 * len(event_ids) + 16
        sql = f"SELECT id, request_hash FROM {ledger.TR.name} WHERE id >= {mark} AND id <= {mark} LIMIT {mark}"
        rows = conn.exec_driver_sql(sql, (prefix + min(event_ids), prefix + max(event_ids), limit)).all()
        if len(rows) < limit:
            return {tid[cut:]: h for tid, h in rows if tid[cut:] in event_ids}
    found: dict[str, str] = {}
    ids = [prefix + eid for eid in event_ids]
    for start in range(0, len(ids), _IN_PART):
        part = tuple(ids[start:start + _IN_PART])
        sql = (f"SELECT id, request_hash FROM {ledger.TR.name} "
               f"WHERE id IN ({', '.join([mark] * len(part))})")
        found.update((tid[cut:], h) for tid, h in conn.exec_driver_sql(sql, part).all())
    return found


#: The transfer columns a charge writes, with the constant ones written into the
#: statement: each row binds only what differs between rows.
_ROW = ("id", "debit_account_id", "credit_account_id", "amount", "period", "memo", "request_hash", "created_at",
        "business_date")
_WIDTH = len(_ROW)
_CONSTANT = {"kind": "'charge'", "pending": None, "pending_id": "NULL", "reverses": "NULL"}
#: Rows in one INSERT: 5 500 bound values, under SQLite's and PostgreSQL's limits.
_ROWS_PER_INSERT = 500


#: What is inserted: a charge's columns, then its place in its budget's chain and its mac.
_SIGNED_ROW = (*_ROW, "chain_seq", "mac")
_SIGNED_WIDTH = len(_SIGNED_ROW)


def _signed(conn, posted: list) -> list:
    """The chunk's transfers (flat, in the columns of ``_ROW``) each with its place in the
    chain of the budget it debits and its keyed hash, as ``ledger.transfer`` signs one.
    The budgets' rows are locked already (debited above)."""
    key = ledger.chain_key(conn)
    rows = list(_rows(posted))
    heads = ledger.chain_heads(conn, {r[1] for r in rows})
    mac = ledger.transfer_mac
    signed: list = []
    for tid, budget, payable, amount, period, memo, h, at, day in rows:
        head = heads[budget]
        head[0] += 1
        head[1] = mac(key, tid, "charge", budget, payable, amount, False, None, None, period,
                      day if day.__class__ is str else day.isoformat(), head[0], head[1])
        signed += (tid, budget, payable, amount, period, memo, h, at, day, head[0], head[1])
    ledger.set_chain_heads(conn, heads)
    return signed


def _rows(flat: list):
    """The rows of a flat list of values in the columns of ``_ROW``."""
    return (flat[k:k + _WIDTH] for k in range(0, len(flat), _WIDTH))


def _insert(conn, flat: list) -> None:
    """The chunk's transfers (their values one row after the other in ``flat``), a few
    hundred rows per INSERT on the driver: ``created_at`` is already in the form SQLAlchemy
    stores, so the per-row parameter processing of a Core insert is left out, and the
    columns every charge has alike (kind, not pending, no pending id, reversing nothing)
    are literals in the statement rather than bound for each row."""
    mark = _mark(conn)
    pending = _bound(conn, "pending", False)
    constant = {**_CONSTANT, "pending": ("TRUE" if pending else "FALSE") if isinstance(pending, bool)
                else str(int(pending))}
    row = f"({', '.join([mark] * _SIGNED_WIDTH + list(constant.values()))})"
    head = f"INSERT INTO {ledger.TR.name} ({', '.join(_SIGNED_ROW + tuple(constant))}) VALUES "
    step = _ROWS_PER_INSERT * _SIGNED_WIDTH
    full = head + ", ".join([row] * _ROWS_PER_INSERT)
    try:
        for start in range(0, len(flat), step):
            part = tuple(flat[start:start + step])
            conn.exec_driver_sql(full if len(part) == step else head + ", ".join([row] * (len(part) // _SIGNED_WIDTH)),
                                 part)
    except IntegrityError as exc:  # the same events posted by a concurrent import: retry replays
        raise RetryableConflict("PSOP events posted concurrently") from exc
