"""The double-entry ledger, modelled on TigerBeetle.

Every transfer moves an amount of integer cents from one account's debit side to
another's credit side, so each transfer balances by construction. Transfers are
immutable and keyed by the caller's id: replaying an id with the same content returns the
first result, with other content it is refused. A *pending* transfer reserves money (a
payment commitment); it is later *posted* (at most its amount), *voided* or the remainder
*released*, each a transfer of its own that names the pending one.

Every transfer is chained, keyed: it has a place in the chain of its debit account
(``chain_seq``) and an HMAC with the integrity key (``mac``) over what it does, its place
and the previous transfer's mac. Writers on different accounts (clients) never wait for
each other; a transfer changed, forged or deleted outside avain breaks its chain, and one
cut off the end of a chain is caught by the signed checkpoints (see
:mod:`avain.core.checkpoints`).

Running totals live on the account rows and change in the same transaction as the
transfer, so a balance read is one row. Spending from a ``limited`` account (a client's
budget) is a conditional update — ``… WHERE posted + pending + x <= credits`` — so the
database, not a read-then-write in Python, keeps the budget from being overspent, also
under concurrent writers. A CHECK constraint backs it up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen
from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from . import checkpoints, integrity_key, seals
from .db import Prepared
from .domain import Money, clip_words
from .errors import Conflict, NotFound, Refused, ValidationError
from .models import AccountRow, TransferRow
from .uow import RetryableConflict

#: Kinds of transfer. ``commitment`` is the only pending kind; ``post``, ``void`` and
#: ``release`` resolve a pending transfer; ``correction`` reverses a posted one;
#: ``charge`` is spending a payment backend reports (an e-wallet charge, a voucher event).
POSTED_KINDS = ("allocation", "lapse", "carry-over", "payment", "correction", "funding", "charge")
RESOLVING_KINDS = ("post", "void", "release")
KINDS = ("commitment", *RESOLVING_KINDS, *POSTED_KINDS)

#: Account kinds. Only client budgets are limited (debits may not exceed credits).
ACCOUNT_KINDS = ("funding", "budget", "payable", "bank", "lapsed", "carried")


class InsufficientFunds(Refused):
    """The budget does not hold the amount asked for."""

    error_code = "insufficient_funds"


@frozen
class Balance:
    account_id: int
    credits: int
    posted: int
    pending: int

    @property
    def available(self) -> int:
        return self.credits - self.posted - self.pending

    def as_dict(self) -> dict[str, Any]:
        return {"credits": self.credits, "posted": self.posted, "reserved": self.pending,
                "available": self.available,
                "credits_fi": Money(self.credits).fi(), "posted_fi": Money(self.posted).fi(),
                "reserved_fi": Money(self.pending).fi(),
                "available_fi": Money(self.available).fi()}


@frozen
class Transfer:
    id: str
    kind: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    pending: bool
    pending_id: str | None
    reverses: str | None
    period: str | None
    memo: str | None
    created_at: dt.datetime
    business_date: dt.date
    replayed: bool = False



def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: Memos are kept to this many characters, cut between words.
MEMO_LENGTH = 200


def _memo(text: str | None) -> str | None:
    return clip_words(text, MEMO_LENGTH) if text else text


def _day(on_date: dt.date | None, recorded: dt.datetime) -> dt.date:
    """A transfer's business date: the caller's, else the day it is recorded."""
    return on_date if on_date is not None else recorded.date()


# --- accounts -----------------------------------------------------------------------
#
# The write path uses SQLAlchemy Core on the tables, not ORM objects: it is the hot path
# of every purchase and of a month's allocation, and the ORM's unit of work costs several
# times the statements themselves. Its statements are built once and run as Prepared
# statements (see avain.core.db) on the connection of the caller's transaction.

ACC = AccountRow.__table__
TR = TransferRow.__table__


def _connection(s: Session | Connection) -> Connection:
    """The connection of the caller's transaction. A Session first flushes what it has
    pending, as ``Session.execute`` does before a Core statement, so the ledger's SQL
    sees the caller's own changes. A unit of work's Session works in its connection's
    transaction: the statements go to that connection without the Session's own
    transaction bookkeeping."""
    if isinstance(s, Connection):
        return s
    if s.autoflush:
        s.flush()
    bind = s.bind
    if isinstance(bind, Connection) and bind.in_transaction():
        return bind
    return s.connection()


def _is_duplicate(exc: IntegrityError, table: str) -> bool:
    """A unique/primary-key clash on ``table`` (written by a concurrent transaction), as
    opposed to any other integrity error."""
    orig = exc.orig
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    if constraint:
        return constraint.startswith(f"{table}_pkey") or constraint.startswith("uq_account")
    return "UNIQUE constraint failed" in str(orig) and f" {table}." in str(orig)


def account_id(s: Session | Connection, pilot_id: str, kind: str, owner: str = "", *,
               create: bool = True) -> int:
    """The id of the account (pilot, kind, owner), created on first use. Client budgets
    (kind ``budget``) are limited."""
    if kind not in ACCOUNT_KINDS:
        raise ValueError(f"unknown account kind {kind!r}")
    found = _ACCOUNT_ID.run(_connection(s), {"pilot": pilot_id, "kind": kind, "owner": owner})
    if found:
        return found[0][0]
    if not create:
        raise NotFound(f"no {kind} account for {owner or pilot_id}")
    try:
        return s.execute(insert(ACC).values(
            pilot_id=pilot_id, kind=kind, owner=owner, limited=kind == "budget", debits_posted=0,
            debits_pending=0, credits_posted=0, credits_pending=0).returning(ACC.c.id)).scalar_one()
    except IntegrityError as exc:  # created by a concurrent transaction: the retry sees it
        if _is_duplicate(exc, "account"):
            raise RetryableConflict(f"account {kind}/{owner} created concurrently") from exc
        raise


def balance(s: Session | Connection, account: int) -> Balance:
    rows = _BALANCE.run(_connection(s), {"acc": account})
    if not rows:
        raise NotFound(f"no account {account}")
    credits, posted, pending = rows[0]
    return Balance(account, credits, posted, pending)


# --- transfers ----------------------------------------------------------------------


def fingerprint(kind: str, debit: int | None, credit: int | None, amount: int, pending: bool,
                period: str | None, reverses: str | None, pending_id: str | None = None) -> str:
    """A fingerprint of what a transfer does (stored as its ``request_hash``), so a replayed
    id with other content is caught. Every write path stores this one."""
    text = f"{kind}|{debit}|{credit}|{amount}|{int(pending)}|{period}|{reverses}|{pending_id}"
    return hashlib.sha256(text.encode()).hexdigest()


LEDGER_PURPOSE = "ledger"


def chain_key(s: Session | Connection) -> bytes:
    """The integrity key's subkey for the ledger chains of the database ``s`` works on."""
    conn = s if isinstance(s, Connection) else s.get_bind()
    return integrity_key.require(conn.engine.url.render_as_string(hide_password=False)).subkey(LEDGER_PURPOSE)


def transfer_mac(key: bytes, tid: str, kind: str, debit: int, credit: int, amount: int, pending: bool,
                 pending_id: str | None, reverses: str | None, period: str | None,
                 business_date: dt.date | str, seq: int, prev: str) -> str:
    """The keyed hash of a transfer at place ``seq`` of its debit account's chain, after the
    transfer whose hash is ``prev``. ``business_date``: a date or its ISO text."""
    day = business_date if isinstance(business_date, str) else business_date.isoformat()
    text = (f"{tid}\0{kind}\0{debit}\0{credit}\0{amount}\0{int(bool(pending))}\0{pending_id or ''}\0"
            f"{reverses or ''}\0{period or ''}\0{day}\0{seq}\0{prev}")
    return hmac.digest(key, text.encode("utf-8"), "sha256").hex()


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(f"amount: must be whole cents, not {type(amount).__name__}")
    if amount <= 0:
        raise ValidationError("amount: must be more than zero")


# The hot statements are built once, with bound parameters: composing a statement costs
# more client time than the database spends running it.
_ACCOUNT_ID = Prepared(select(ACC.c.id).where(
    ACC.c.pilot_id == bindparam("pilot"), ACC.c.kind == bindparam("kind"), ACC.c.owner == bindparam("owner")))
_BALANCE = Prepared(select(ACC.c.credits_posted, ACC.c.debits_posted, ACC.c.debits_pending)
                    .where(ACC.c.id == bindparam("acc")))
_TRANSFER_COLUMNS = tuple(c.name for c in TR.c)
_SELECT_TRANSFER = Prepared(select(TR).where(TR.c.id == bindparam("tid")))
_INSERT_TRANSFER = Prepared(insert(TR), keys=_TRANSFER_COLUMNS)
_RESOLUTIONS = TR.alias("resolution")
_RESOLVE_PENDING = Prepared(
    select(TR.c.amount, TR.c.pending, TR.c.debit_account_id, TR.c.credit_account_id, TR.c.period,
           select(func.coalesce(func.sum(_RESOLUTIONS.c.amount), 0))
           .where(_RESOLUTIONS.c.pending_id == bindparam("pid")).scalar_subquery().label("resolved"))
    .where(TR.c.id == bindparam("pid")).with_for_update(of=TR)
)


def _update_totals(columns: tuple[str, ...], *, guarded: bool):
    """UPDATE account SET col = col + :d_col … WHERE id = :acc [AND still covered]."""
    stmt = update(ACC).where(ACC.c.id == bindparam("acc")).values(
        {ACC.c[name]: ACC.c[name] + bindparam(f"d_{name}") for name in columns})
    if guarded:
        stmt = stmt.where((ACC.c.limited.is_(False))
                          | (ACC.c.debits_posted + ACC.c.debits_pending + bindparam("spend")
                             <= ACC.c.credits_posted))
    return stmt


_UPDATES: dict[tuple[tuple[str, ...], bool], Prepared] = {}
#: The head of an account's chain, read once the account's row is locked by its update.
_CHAIN_HEAD = Prepared(select(ACC.c.chain_seq, ACC.c.chain_hash).where(ACC.c.id == bindparam("acc")))
_SET_CHAIN_HEAD = Prepared(update(ACC).where(ACC.c.id == bindparam("acc"))
                           .values(chain_seq=bindparam("seq"), chain_hash=bindparam("h")))


def _update_stmt(columns: tuple[str, ...], guarded: bool) -> Prepared:
    key = (columns, guarded)
    if key not in _UPDATES:
        _UPDATES[key] = Prepared(_update_totals(columns, guarded=guarded))
    return _UPDATES[key]


def _replay(conn: Connection, transfer_id: str, request_hash: str) -> Transfer | None:
    rows = _SELECT_TRANSFER.run(conn, {"tid": transfer_id})
    if not rows:
        return None
    row = dict(zip(_TRANSFER_COLUMNS, rows[0], strict=True))
    if row["request_hash"] != request_hash:
        raise Conflict(f"transfer id {transfer_id} was used for a different transfer")
    return _transfer(row, replayed=True)


def _transfer(row, replayed: bool = False) -> Transfer:
    return Transfer(row["id"], row["kind"], row["debit_account_id"], row["credit_account_id"],
                    row["amount"], row["pending"], row["pending_id"], row["reverses"], row["period"],
                    row["memo"], row["created_at"], row["business_date"], replayed)


def _apply(conn: Connection, debit: int, credit: int, *, debit_cols: dict[str, int],
           credit_cols: dict[str, int], spend: int = 0) -> tuple[int, str]:
    """Change the totals of both accounts, in account-id order (no deadlocks). ``spend`` is
    the amount added to posted + pending on the debit side: when positive, the update is
    conditional on a limited account still covering it. Returns the new transfer's place
    in the debit account's chain and the hash before it (the row is locked from here on)."""
    for acc in sorted((debit, credit)):
        cols = debit_cols if acc == debit else credit_cols
        guarded = acc == debit and spend > 0
        params = {"acc": acc, **{f"d_{name}": delta for name, delta in cols.items()}}
        if guarded:
            params["spend"] = spend
        if _update_stmt(tuple(cols), guarded).run(conn, params) != 1:
            if acc == debit and spend > 0:
                b = balance(conn, debit)
                raise InsufficientFunds(
                    f"not enough budget: {Money(b.available).fi()} available, "
                    f"{Money(spend).fi()} needed"
                )
            raise NotFound(f"no account {acc}")
    seq, prev = _CHAIN_HEAD.run(conn, {"acc": debit})[0]
    return seq + 1, prev


def _insert(conn: Connection, values: dict[str, Any], chain: tuple[int, str]) -> Transfer:
    """Insert the transfer at its place ``chain`` (seq, previous hash) in its debit
    account's chain, signed, and move the chain's head to it."""
    seq, prev = chain
    values["chain_seq"] = seq
    values["mac"] = mac = transfer_mac(
        chain_key(conn), values["id"], values["kind"], values["debit_account_id"], values["credit_account_id"],
        values["amount"], values["pending"], values["pending_id"], values["reverses"], values["period"],
        values["business_date"], seq, prev)
    try:
        _INSERT_TRANSFER.run(conn, values)
    except IntegrityError as exc:  # same id written concurrently: the retry replays it
        if _is_duplicate(exc, "transfer"):
            raise RetryableConflict(f"transfer {values['id']} written concurrently") from exc
        raise
    _SET_CHAIN_HEAD.run(conn, {"acc": values["debit_account_id"], "seq": seq, "h": mac})
    checkpoints.note_chain(values["debit_account_id"], seq, mac)
    return _transfer(values)


def transfer(s: Session, transfer_id: str, *, kind: str, debit: int, credit: int, amount: int,
             pending: bool = False, period: str | None = None, memo: str | None = None,
             reverses: str | None = None, on_date: dt.date | None = None) -> Transfer:
    """A posted transfer (or, with ``pending``, a reservation). Refused with
    :class:`InsufficientFunds` when it would overspend a limited debit account.
    ``on_date`` is its business date (default: the day it is recorded)."""
    if kind not in KINDS or kind in RESOLVING_KINDS:
        raise ValueError(f"transfer(): kind {kind!r} is not a new-transfer kind")
    if pending != (kind == "commitment"):
        raise ValueError("only commitments are pending")
    _check_amount(amount)
    if debit == credit:
        raise ValidationError("a transfer needs two different accounts")
    h = fingerprint(kind, debit, credit, amount, pending, period, reverses)
    conn = _connection(s)
    if (replayed := _replay(conn, transfer_id, h)) is not None:
        return replayed
    col = "pending" if pending else "posted"
    chain = _apply(conn, debit, credit, debit_cols={f"debits_{col}": amount},
                   credit_cols={f"credits_{col}": amount}, spend=amount)
    at = now()
    return _insert(conn, {"id": transfer_id, "kind": kind, "debit_account_id": debit,
                          "credit_account_id": credit, "amount": amount, "pending": pending,
                          "pending_id": None, "reverses": reverses, "period": period, "memo": _memo(memo),
                          "request_hash": h, "created_at": at, "business_date": _day(on_date, at)}, chain)


def resolved_amount(s: Session, pending_id: str) -> int:
    return int(s.execute(
        select(func.coalesce(func.sum(TR.c.amount), 0)).where(TR.c.pending_id == pending_id)
    ).scalar_one())


def resolve(s: Session, transfer_id: str, *, pending_id: str, kind: str, amount: int,
            memo: str | None = None, on_date: dt.date | None = None) -> Transfer:
    """Post, void or release ``amount`` of a pending transfer. Never more than what is
    still pending of it: the pending transfer's row is locked while this runs, so two
    resolutions of one commitment queue up rather than both see the same remainder."""
    if kind not in RESOLVING_KINDS:
        raise ValueError(f"resolve(): {kind!r} is not post, void or release")
    _check_amount(amount)
    h = fingerprint(kind, None, None, amount, False, None, None, pending_id)
    conn = _connection(s)
    if (replayed := _replay(conn, transfer_id, h)) is not None:
        return replayed
    rows = _RESOLVE_PENDING.run(conn, {"pid": pending_id})
    if not rows or not rows[0][1]:
        raise NotFound(f"no pending transfer {pending_id}")
    p_amount, _, p_debit, p_credit, p_period, p_resolved = rows[0]
    left = p_amount - int(p_resolved)
    if amount > left:
        raise Refused(f"{kind}: {Money(amount).fi()} is more than the "
                      f"{Money(left).fi()} still reserved by {pending_id}")
    if kind == "post":
        debit_cols = {"debits_pending": -amount, "debits_posted": amount}
        credit_cols = {"credits_pending": -amount, "credits_posted": amount}
    else:
        debit_cols = {"debits_pending": -amount}
        credit_cols = {"credits_pending": -amount}
    chain = _apply(conn, p_debit, p_credit, debit_cols=debit_cols, credit_cols=credit_cols)
    at = now()
    return _insert(conn, {"id": transfer_id, "kind": kind, "debit_account_id": p_debit,
                          "credit_account_id": p_credit, "amount": amount, "pending": False,
                          "pending_id": pending_id, "reverses": None, "period": p_period,
                          "memo": _memo(memo), "request_hash": h, "created_at": at,
                          "business_date": _day(on_date, at)}, chain)


def reverse(s: Session, transfer_id: str, *, original_id: str, memo: str | None = None,
            on_date: dt.date | None = None) -> Transfer:
    """A correction: a new transfer that moves a posted transfer's amount back. The
    original stays as it was."""
    orig = s.execute(select(TR).where(TR.c.id == original_id)).mappings().one_or_none()
    if orig is None:
        raise NotFound(f"no transfer {original_id}")
    if orig["pending"] or orig["kind"] in RESOLVING_KINDS or orig["kind"] == "correction":
        raise Refused(f"transfer {original_id} ({orig['kind']}) cannot be corrected by reversal")
    already = s.execute(select(TR.c.id).where(TR.c.reverses == original_id, TR.c.id != transfer_id)).first()
    if already:
        raise Conflict(f"transfer {original_id} was reversed already by {already[0]}")
    return transfer(s, transfer_id, kind="correction", debit=orig["credit_account_id"],
                    credit=orig["debit_account_id"], amount=orig["amount"], period=orig["period"],
                    memo=memo, reverses=original_id, on_date=on_date)


_BULK_COLUMNS = ("id", "kind", "debit_account_id", "credit_account_id", "amount", "pending",
                 "pending_id", "reverses", "period", "memo", "request_hash", "created_at", "business_date",
                 "chain_seq", "mac")


def chain_heads(conn: Connection, accounts: Iterable[int]) -> dict[int, list]:
    """``{account: [seq, hash]}``, the heads of these accounts' chains, locked (in id order)
    until the transaction ends."""
    ids = sorted(set(accounts))
    heads: dict[int, list] = {}
    for start in range(0, len(ids), 10_000):
        part = ids[start:start + 10_000]
        heads.update((a, [q, h]) for a, q, h in conn.execute(
            select(ACC.c.id, ACC.c.chain_seq, ACC.c.chain_hash).where(ACC.c.id.in_(part))
            .order_by(ACC.c.id).with_for_update()))
    return heads


def set_chain_heads(conn: Connection, heads: dict[int, list]) -> None:
    """Store the moved heads and name them for the next checkpoint."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"UPDATE account SET chain_seq = {mark}, chain_hash = {mark} WHERE id = {mark}",
                         [(q, h, a) for a, (q, h) in sorted(heads.items())])
    for a, (q, h) in heads.items():
        checkpoints.note_chain(a, q, h)


def bulk_post(s: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Many new posted transfers at once (a month's allocation). Each dict has id, kind,
    debit, credit, amount, period, memo, and optionally on_date (the business date;
    default the day they are recorded). Ids already present are an error: the caller
    selects only what is not done. Credits to limited accounts need no check; debits from
    limited accounts are not allowed here.

    The rows go to the driver's ``executemany`` as plain tuples: at a million clients a
    month, SQLAlchemy's per-row parameter processing would cost more than the database."""
    if not rows:
        return 0
    conn = s.connection()
    dialect = conn.dialect
    # As SQLAlchemy binds the column on this dialect (on SQLite: UTC, then its text format).
    at_processor = TR.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    day_processor = TR.c.business_date.type.dialect_impl(dialect).bind_processor(dialect)
    recorded = now()
    at = at_processor(recorded) if at_processor else recorded
    for r in rows:
        _check_amount(r["amount"])
    debits = {r["debit"] for r in rows}
    limited = s.execute(select(ACC.c.id).where(ACC.c.id.in_(list(debits)), ACC.c.limited.is_(True))).first()
    if limited:
        raise ValueError("bulk_post() cannot debit client budgets")
    key = chain_key(conn)
    heads = chain_heads(conn, debits)
    records = []
    debit_sum: dict[int, int] = {}
    credit_sum: dict[int, int] = {}
    for r in rows:
        amount, kind, debit, credit, period = r["amount"], r["kind"], r["debit"], r["credit"], r.get("period")
        day = _day(r.get("on_date"), recorded)
        head = heads[debit]
        head[0] += 1
        head[1] = transfer_mac(key, r["id"], kind, debit, credit, amount, False, None, None, period, day,
                               head[0], head[1])
        records.append((r["id"], kind, debit, credit, amount, False, None, None, period, _memo(r.get("memo")),
                        fingerprint(kind, debit, credit, amount, False, period, None), at,
                        day_processor(day) if day_processor else day, head[0], head[1]))
        debit_sum[debit] = debit_sum.get(debit, 0) + amount
        credit_sum[credit] = credit_sum.get(credit, 0) + amount
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO transfer ({', '.join(_BULK_COLUMNS)}) VALUES ({', '.join([mark] * len(_BULK_COLUMNS))})",
        records)
    conn.exec_driver_sql(
        f"UPDATE account SET debits_posted = debits_posted + {mark}, "
        f"credits_posted = credits_posted + {mark} WHERE id = {mark}",
        [(debit_sum.get(a, 0), credit_sum.get(a, 0), a) for a in sorted(set(debit_sum) | set(credit_sum))])
    set_chain_heads(conn, heads)
    return len(records)


# --- many transfers at once -----------------------------------------------------------


class Postings:
    """New posted transfers for :func:`post_many`, in the order they are to be taken: the
    one that comes first is the first to spend a budget. Kept as columns (one list each),
    not an object per transfer: a rail adds tens of thousands at a time, and an object per
    row would make the garbage collector walk the heap again and again.

    ``add`` appends one; the lists may also be given whole (all of one length)."""

    __slots__ = ("amounts", "credits", "days", "debits", "ids", "memos", "periods")

    def __init__(self, ids: list[str] | None = None, debits: list[int] | None = None,
                 credits: list[int] | None = None, amounts: list[int] | None = None,
                 periods: list[str | None] | None = None, memos: list[str | None] | None = None,
                 days: list[dt.date | None] | None = None) -> None:
        self.ids = ids if ids is not None else []
        self.debits = debits if debits is not None else []
        self.credits = credits if credits is not None else []
        self.amounts = amounts if amounts is not None else []
        n = len(self.ids)
        self.periods = periods if periods is not None else [None] * n
        self.memos = memos if memos is not None else [None] * n
        self.days = days if days is not None else [None] * n
        if {len(self.debits), len(self.credits), len(self.amounts), len(self.periods), len(self.memos),
                len(self.days)} != {n}:
            raise ValueError("Postings: every column needs one value per transfer")

    def add(self, transfer_id: str, debit: int, credit: int, amount: int, period: str | None = None,
            memo: str | None = None, on_date: dt.date | None = None) -> None:
        """One more transfer of ``amount`` cents from ``debit`` to ``credit``; ``on_date``
        is its business date (default: the day it is recorded)."""
        self.ids.append(transfer_id)
        self.debits.append(debit)
        self.credits.append(credit)
        self.amounts.append(amount)
        self.periods.append(period)
        self.memos.append(memo)
        self.days.append(on_date)

    def __len__(self) -> int:
        return len(self.ids)


#: Why :func:`post_many` refused a transfer (:attr:`Refusal.code`).
REFUSAL_CODES = ("insufficient_funds", "conflict", "repeated", "period_closed")


@frozen
class Refusal:
    """A transfer :func:`post_many` did not post. ``code``: ``insufficient_funds`` (its
    debit account, a budget, held ``available`` cents when it came to it, and it needed
    ``needed``), ``conflict`` (its id is in the ledger for another transfer),
    ``repeated`` (its id came earlier in the same batch with other content),
    ``period_closed`` (its period is not one the caller allowed)."""

    index: int
    code: str
    transfer_id: str
    available: int | None = None
    needed: int | None = None

    def describe(self) -> str:
        """The refusal in words, as the single-transfer operations word theirs."""
        if self.code == "insufficient_funds":
            return (f"not enough budget: {Money(self.available or 0).fi()} available, "
                    f"{Money(self.needed or 0).fi()} needed")
        if self.code == "conflict":
            return f"transfer id {self.transfer_id} was used for a different transfer"
        if self.code == "repeated":
            return f"transfer id {self.transfer_id} appears twice with different content"
        return f"transfer {self.transfer_id}: its period is not open"


@frozen
class BulkResult:
    """What :func:`post_many` did, by index in the :class:`Postings`: ``posted`` (written
    now, ``amount`` cents in all), ``unchanged`` (in the ledger already with the same
    content, or repeated in the batch after one that was posted or unchanged) and
    ``refused`` (in index order). Every index is in exactly one of the three."""

    posted: tuple[int, ...]
    unchanged: tuple[int, ...]
    refused: tuple[Refusal, ...]
    amount: int


#: Values bound in one ``IN (…)``: under SQLite's limit of bound values.
_IN_PART = 10_000
#: The columns each row of :func:`post_many` binds; the ones all its transfers have alike
#: (kind, not pending, resolving and reversing nothing) are literals in the statement.
_MANY_COLUMNS = ("id", "debit_account_id", "credit_account_id", "amount", "period", "memo", "request_hash",
                 "created_at", "business_date", "chain_seq", "mac")
_MANY_WIDTH = len(_MANY_COLUMNS)
#: Rows in one INSERT: 5 500 bound values, under SQLite's and PostgreSQL's limits.
ROWS_PER_INSERT = 500


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _bind_processor(conn: Connection, column: str):
    """How SQLAlchemy turns a value into what it stores in ``transfer.<column>`` (None:
    as it is). The bulk path binds on the driver, without SQLAlchemy's per-row work."""
    return TR.c[column].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def _existing_hashes(conn: Connection, ids: list[str]) -> dict[str, str]:
    """The fingerprints of the transfers among ``ids`` that exist already, by id.

    On SQLite, first one range scan of the primary key between the least and the greatest
    id, limited to a little more rows than there are ids: a batch of new transfers (a
    rail's ids mostly ascend) finds an empty range at the cost of one index seek. Only when
    the range holds more rows than that are the ids looked up with ``IN (…)``, in parts
    under SQLite's limit of bound values. For ASCII ids SQLite's BINARY collation orders
    as Python does, so the range holds every one."""
    wanted = set(ids)
    mark = _mark(conn)
    if conn.dialect.name == "sqlite" and all(map(str.isascii, wanted)):
        limit = 2 * len(wanted) + 16
        rows = conn.exec_driver_sql(
            f"SELECT id, request_hash FROM {TR.name} WHERE id >= {mark} AND id <= {mark} LIMIT {mark}",
            (min(wanted), max(wanted), limit)).all()
        if len(rows) < limit:
            return {tid: h for tid, h in rows if tid in wanted}
    found: dict[str, str] = {}
    listed = sorted(wanted)
    for start in range(0, len(listed), _IN_PART):
        part = tuple(listed[start:start + _IN_PART])
        found.update(conn.exec_driver_sql(
            f"SELECT id, request_hash FROM {TR.name} WHERE id IN ({', '.join([mark] * len(part))})", part).all())
    return found


def _check_amounts(amounts: list[int]) -> None:
    if not set(map(type, amounts)) <= {int} or min(amounts) <= 0:
        for i, amount in enumerate(amounts):
            try:
                _check_amount(amount)
            except ValidationError as exc:
                raise ValidationError(f"transfer {i + 1}: {exc}") from None


def post_many(s: Session | Connection, postings: Postings, *, kind: str = "charge",
              periods: Iterable[str] | None = None) -> BulkResult:
    """Post many new transfers of ``kind`` at once, in the caller's transaction, as
    :func:`transfer` would post them one after the other — and at a few statements for the
    whole batch rather than a few for each transfer:

    * an id already in the ledger with the same content is ``unchanged`` (a replay, also
      once its period is closed); with other content it is refused (``conflict``);
    * a new transfer whose period is not among ``periods`` (when given) is refused
      (``period_closed``);
    * an id twice in the batch: the second shares the fate of the first when they are
      alike, else it is refused (``repeated``);
    * each debit account is debited once with the sum of its transfers by a conditional
      update (``… WHERE debits + sum <= credits`` for a limited account), so the database
      refuses to overspend, also under concurrent writers. When a budget cannot cover the
      sum, its transfers are taken in order while each fits and the others are refused
      (``insufficient_funds``, with the amount available then), exactly as posting them one
      by one would. A budget spent meanwhile by another transaction makes the update miss:
      :class:`~avain.core.uow.RetryableConflict`, and the unit of work runs again;
    * the transfers get their places in their debit accounts' chains and their keyed
      hashes as :func:`transfer` signs one, and the same fingerprint, so either path replays
      the other's work.

    Amounts not whole positive cents, or a transfer between one account and itself, are
    the caller's error (:class:`ValidationError`, nothing posted); an account that does
    not exist is :class:`NotFound`."""
    if kind not in POSTED_KINDS:
        raise ValueError(f"post_many(): kind {kind!r} is not a posted kind")
    n = len(postings)
    if not n:
        return BulkResult((), (), (), 0)
    ids, debits, credits, amounts = postings.ids, postings.debits, postings.credits, postings.amounts
    months = postings.periods
    _check_amounts(amounts)
    if any(map(int.__eq__, debits, credits)):
        raise ValidationError("a transfer needs two different accounts")
    conn = _connection(s)
    allowed = None if periods is None else set(periods)

    # The fingerprints: a rail's transfers repeat a few (debit, credit, period, amount).
    made: dict[tuple, str] = {}
    hashes = []
    for key in zip(debits, credits, months, amounts, strict=True):
        h = made.get(key)
        if h is None:
            h = made[key] = fingerprint(kind, key[0], key[1], key[3], False, key[2], None)
        hashes.append(h)

    existing = _existing_hashes(conn, ids)
    repeats = len(set(ids)) != n
    refused: dict[int, Refusal] = {}
    unchanged: list[int] = []
    accepted: list[int] = []
    seen: dict[str, int] = {}
    copies: list[tuple[int, int]] = []  # (index, index of the first with that id)
    spend: dict[int, int] = {}
    for i, tid, h in zip(range(n), ids, hashes, strict=True):
        if existing:
            old = existing.get(tid)
            if old is not None:
                if old == h:
                    unchanged.append(i)
                else:
                    refused[i] = Refusal(i, "conflict", tid)
                continue
        if allowed is not None and months[i] not in allowed:
            refused[i] = Refusal(i, "period_closed", tid)
            continue
        if repeats:
            first = seen.get(tid)
            if first is not None:
                if hashes[first] == h:
                    copies.append((i, first))
                else:
                    refused[i] = Refusal(i, "repeated", tid)
                continue
            seen[tid] = i
        accepted.append(i)
        d = debits[i]
        spend[d] = spend.get(d, 0) + amounts[i]

    short = _over_budget(conn, spend, set(credits[i] for i in accepted))
    if short:
        kept = []
        for i in accepted:
            left = short.get(debits[i])
            if left is None:
                kept.append(i)
            elif amounts[i] <= left:
                short[debits[i]] = left - amounts[i]
                kept.append(i)
            else:
                refused[i] = Refusal(i, "insufficient_funds", ids[i], left, amounts[i])
        accepted = kept
    for i, first in copies:  # a repeated row shares the fate of its first
        if first in refused:
            r = refused[first]
            refused[i] = Refusal(i, r.code, r.transfer_id, r.available, r.needed)
        else:
            unchanged.append(i)
    amount = _move_totals(conn, accepted, debits, credits, amounts)
    if accepted:
        _insert_many(conn, kind, accepted, postings, hashes)
    return BulkResult(tuple(accepted), tuple(sorted(unchanged)), tuple(refused[i] for i in sorted(refused)), amount)


def _over_budget(conn: Connection, spend: dict[int, int], credited: set[int]) -> dict[int, int]:
    """The limited debit accounts that cannot cover their sum in ``spend``, each with what
    it holds. Every account of the batch must exist."""
    ids = sorted(set(spend) | credited)
    mark = _mark(conn)
    found: dict[int, tuple[bool, int]] = {}
    for start in range(0, len(ids), _IN_PART):
        part = tuple(ids[start:start + _IN_PART])
        found.update((a, (bool(lim), left)) for a, lim, left in conn.exec_driver_sql(
            f"SELECT id, limited, credits_posted - debits_posted - debits_pending FROM {ACC.name} "
            f"WHERE id IN ({', '.join([mark] * len(part))})", part).all())
    missing = [a for a in ids if a not in found]
    if missing:
        raise NotFound(f"no account {missing[0]}")
    return {a: found[a][1] for a, total in spend.items() if found[a][0] and total > found[a][1]}


def _move_totals(conn: Connection, accepted: list[int], debits: list[int], credits: list[int],
                 amounts: list[int]) -> int:
    """Add the accepted transfers to their accounts' posted totals, one conditional update
    per account, in account-id order (no deadlocks). Returns the cents moved."""
    debit_sum: dict[int, int] = {}
    credit_sum: dict[int, int] = {}
    for i in accepted:
        a, d, c = amounts[i], debits[i], credits[i]
        debit_sum[d] = debit_sum.get(d, 0) + a
        credit_sum[c] = credit_sum.get(c, 0) + a
    if not accepted:
        return 0
    mark = _mark(conn)
    rows = [(debit_sum.get(a, 0), credit_sum.get(a, 0), a, debit_sum.get(a, 0))
            for a in sorted(set(debit_sum) | set(credit_sum))]
    done = conn.exec_driver_sql(
        f"UPDATE {ACC.name} SET debits_posted = debits_posted + {mark}, credits_posted = credits_posted + {mark} "
        f"WHERE id = {mark} AND (NOT limited OR debits_posted + debits_pending + {mark} <= credits_posted)",
        rows).rowcount
    if done != len(rows):
        raise RetryableConflict("a budget changed while its transfers were posted")
    return sum(debit_sum.values())


def _insert_many(conn: Connection, kind: str, accepted: list[int], postings: Postings, hashes: list[str]) -> None:
    """Sign the accepted transfers into their debit accounts' chains (the rows are locked
    by the updates already) and insert them, a few hundred rows per INSERT on the driver."""
    key = chain_key(conn)
    heads = chain_heads(conn, {postings.debits[i] for i in accepted})
    recorded = now()
    at_processor = _bind_processor(conn, "created_at")
    at = at_processor(recorded) if at_processor else recorded
    day_processor = _bind_processor(conn, "business_date")
    dated: dict[dt.date | None, tuple[Any, str]] = {}
    ids, debits, credits, amounts = postings.ids, postings.debits, postings.credits, postings.amounts
    months, memos, days = postings.periods, postings.memos, postings.days
    # transfer_mac's text, written out here: the part every transfer of the batch has
    # alike (kind, not pending, resolving and reversing nothing) made once.
    alike = f"\0{kind}\0"
    middle = "\0" + "0\0\0\0"
    digest = hmac.digest
    flat: list = []
    for i in accepted:
        day = days[i]
        bound = dated.get(day)
        if bound is None:
            real = _day(day, recorded)
            bound = dated[day] = (day_processor(real) if day_processor else real, real.isoformat())
        tid, debit, credit, amount, period, memo = ids[i], debits[i], credits[i], amounts[i], months[i], memos[i]
        if memo is not None and len(memo) > MEMO_LENGTH:
            memo = _memo(memo)
        head = heads[debit]
        seq = head[0] = head[0] + 1
        head[1] = digest(key, f"{tid}{alike}{debit}\0{credit}\0{amount}{middle}{period or ''}\0{bound[1]}\0{seq}\0"
                              f"{head[1]}".encode(), "sha256").hex()
        flat += (tid, debit, credit, amount, period, memo, hashes[i], at, bound[0], seq, head[1])
    set_chain_heads(conn, heads)
    mark = _mark(conn)
    pending = _bind_processor(conn, "pending")
    false = pending(False) if pending else False
    constant = {"kind": f"'{kind}'", "pending": ("TRUE" if false else "FALSE") if isinstance(false, bool)
                else str(int(false)), "pending_id": "NULL", "reverses": "NULL"}
    row = f"({', '.join([mark] * _MANY_WIDTH + list(constant.values()))})"
    head_sql = f"INSERT INTO {TR.name} ({', '.join(_MANY_COLUMNS + tuple(constant))}) VALUES "
    step = ROWS_PER_INSERT * _MANY_WIDTH
    full = head_sql + ", ".join([row] * ROWS_PER_INSERT)
    try:
        for start in range(0, len(flat), step):
            part = tuple(flat[start:start + step])
            sql = full if len(part) == step else head_sql + ", ".join([row] * (len(part) // _MANY_WIDTH))
            conn.exec_driver_sql(sql, part)
    except IntegrityError as exc:  # the same ids written by a concurrent transaction: the retry replays them
        if _is_duplicate(exc, "transfer"):
            raise RetryableConflict("transfers written concurrently") from exc
        raise


# --- verification --------------------------------------------------------------------


def recompute(s: Session) -> dict[int, tuple[int, int, int, int]]:
    """Every account's totals folded from the transfers:
    (debits_posted, debits_pending, credits_posted, credits_pending)."""
    t = TransferRow
    is_post = t.kind == "post"
    is_release = t.kind.in_(("void", "release"))
    posted = case((t.pending.is_(True), 0), (is_release, 0), else_=t.amount)
    pending = case((t.pending.is_(True), t.amount), (is_post, -t.amount),
                   (is_release, -t.amount), else_=0)
    totals: dict[int, list[int]] = {}
    for acc, p, q in s.execute(select(t.debit_account_id, func.sum(posted), func.sum(pending))
                               .group_by(t.debit_account_id)):
        totals.setdefault(acc, [0, 0, 0, 0])[0:2] = [int(p), int(q)]
    for acc, p, q in s.execute(select(t.credit_account_id, func.sum(posted), func.sum(pending))
                               .group_by(t.credit_account_id)):
        totals.setdefault(acc, [0, 0, 0, 0])[2:4] = [int(p), int(q)]
    return {acc: tuple(v) for acc, v in totals.items()}


def verify(s: Session) -> list[str]:
    """Problems found (empty when the books are right): a transfer changed, forged or
    removed outside avain (its keyed chain), cached totals that differ from the fold of the
    transfers, books that do not balance, an overspent budget, a pending transfer resolved
    for more than it reserved, an invoice amount or a provider's bank account changed
    outside avain (their seals)."""
    key = integrity_key.require(s.get_bind().engine.url.render_as_string(hide_password=False))
    return [*verify_chains(s, key.subkey(LEDGER_PURPOSE)), *verify_totals(s), *seals.verify(s, key)]


def verify_chains(s: Session, key: bytes) -> list[str]:
    """Every transfer in its place in its debit account's chain, with its keyed hash; each
    account's head at the newest one."""
    problems: list[str] = []
    expected: dict[int, tuple[int, str]] = {}
    rows = s.execute(select(TR.c.id, TR.c.kind, TR.c.debit_account_id, TR.c.credit_account_id, TR.c.amount,
                            TR.c.pending, TR.c.pending_id, TR.c.reverses, TR.c.period, TR.c.business_date,
                            TR.c.chain_seq, TR.c.mac)
                     .order_by(TR.c.debit_account_id, TR.c.chain_seq, TR.c.id))
    for tid, kind, debit, credit, amount, pending, pending_id, reverses, period, day, seq, mac in rows:
        last_seq, prev = expected.get(debit, (0, ""))
        if seq is None or mac is None:
            problems.append(f"transfer {tid}: not in the ledger's chain (written outside avain)")
            continue
        if seq != last_seq + 1:
            problems.append(f"account {debit}: transfer {last_seq + 1} of its chain is missing (found {seq}, "
                            f"{tid}): transfers removed outside avain")
        elif not hmac.compare_digest(
                transfer_mac(key, tid, kind, debit, credit, amount, pending, pending_id, reverses, period, day,
                             seq, prev), mac):
            problems.append(f"transfer {tid} has been altered outside avain (its keyed hash does not match)")
        expected[debit] = (seq, mac)
    for acc, seq, h in s.execute(select(ACC.c.id, ACC.c.chain_seq, ACC.c.chain_hash).order_by(ACC.c.id)):
        if expected.get(acc, (0, "")) != (seq, h):
            problems.append(f"account {acc}: the head of its chain is transfer {seq}, the newest there is "
                            f"{expected.get(acc, (0, ''))[0]} (transfers removed or added outside avain)")
    return problems


def verify_totals(s: Session) -> list[str]:
    """Cached totals that differ from the fold of the transfers, books that do not balance,
    an overspent budget, a pending transfer resolved for more than it reserved."""
    problems = []
    folded = recompute(s)
    accounts = s.execute(select(AccountRow)).scalars().all()
    for a in accounts:
        cached = (a.debits_posted, a.debits_pending, a.credits_posted, a.credits_pending)
        want = folded.get(a.id, (0, 0, 0, 0))
        if cached != want:
            problems.append(
                f"account {a.id} ({a.kind} {a.owner or a.pilot_id}): totals {cached} differ "
                f"from the transfers {want} (debits posted, pending; credits posted, pending)")
        if a.limited and a.debits_posted + a.debits_pending > a.credits_posted:
            problems.append(f"account {a.id} (budget {a.owner}) is overspent")
    debits = sum(a.debits_posted for a in accounts)
    credits = sum(a.credits_posted for a in accounts)
    if debits != credits:
        problems.append(f"the books do not balance: debits {debits} ≠ credits {credits}")
    pend, res = aliased(TransferRow), aliased(TransferRow)
    over = s.execute(
        select(res.pending_id).join(pend, pend.id == res.pending_id)
        .group_by(res.pending_id, pend.amount).having(func.sum(res.amount) > pend.amount)
    ).scalars().all()
    for pid in over:
        problems.append(f"pending transfer {pid} was resolved for more than it reserved")
    return problems


def negative_payables(s: Session) -> list[str]:
    """Problems found: a provider's payable account that was paid more than it was owed
    (payments above what invoices posted to it). Read from the accounts' running totals;
    :func:`verify` reports totals that differ from the transfers."""
    rows = s.execute(select(AccountRow.id, AccountRow.pilot_id, AccountRow.owner, AccountRow.credits_posted,
                            AccountRow.debits_posted)
                     .where(AccountRow.kind == "payable", AccountRow.debits_posted > AccountRow.credits_posted)
                     .order_by(AccountRow.id)).all()
    return [f"account {acc} (payable to {owner} in {pilot}) is negative: {Money(debits).fi()} paid, "
            f"{Money(credits).fi()} owed" for acc, pilot, owner, credits, debits in rows]


def transfers_of(s: Session, account: int, *, period: str | None = None) -> Iterable[TransferRow]:
    q = select(TransferRow).where(
        (TransferRow.debit_account_id == account) | (TransferRow.credit_account_id == account)
    ).order_by(TransferRow.business_date, TransferRow.created_at, TransferRow.id)
    if period:
        q = q.where(TransferRow.period == period)
    return s.execute(q).scalars()
