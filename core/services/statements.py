"""What a budget holds and what happened to it: balances, statements, verification."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select

from .. import auth, checkpoints, ledger
from ..audit import ORGANISER
from ..db import Prepared
from ..domain import Money
from ..errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from ..models import AccountRow, ClientRow, CommitmentRow, InvoiceRow, TransferRow, WorkerRow
from ..text import clean_reason, shown
from ..uow import UnitOfWork
from .common import check_actor, connection, in_pilot, reach_client, record, session

#: How each kind of transfer reads on a client's statement.
LABELS = {"allocation": "granted", "carry-over": "carried over", "commitment": "committed",
          "post": "spent", "charge": "spent", "void": "released", "release": "released", "lapse": "lapsed",
          "correction": "corrected"}


def _budget_account(uow: UnitOfWork, code: str, action: str) -> tuple[int | None, str]:
    client = reach_client(uow, code, action)
    acc = session(uow).execute(select(AccountRow.id).where(
        AccountRow.pilot_id == client.pilot_id, AccountRow.kind == "budget",
        AccountRow.owner == code)).scalar_one_or_none()
    return acc, client.pilot_id


def _balance_query():
    c, a, w = ClientRow.__table__.c, ledger.ACC.c, WorkerRow.__table__.c
    return (select(c.pilot_id, c.worker_id, c.assistant_id, w.supervisor_id,
                   a.credits_posted, a.debits_posted, a.debits_pending)
            .select_from(ClientRow.__table__
                         .outerjoin(ledger.ACC, (a.pilot_id == c.pilot_id) & (a.kind == "budget")
                                    & (a.owner == c.code))
                         .outerjoin(WorkerRow.__table__, w.id == c.worker_id))
            .where(c.code == bindparam("code")))


#: Built and compiled once: composing the statement costs more than running it.
_BALANCE = Prepared(_balance_query())


def balance(uow: UnitOfWork, code: str) -> dict[str, Any]:
    """``avain ledger balance``: one statement reads the client, their scope and the
    budget's running totals, whatever the history's length."""
    actor = check_actor(uow, "ledger.read")
    rows = _BALANCE.run(connection(uow), {"code": code})
    if not rows:
        raise NotFound(f"no client {shown(code)}; see `avain client list`")
    pilot_id, worker_id, assistant_id, supervisor_id, credits, posted, pending = rows[0]
    if actor.role in auth.SCOPED and not auth.can_reach_client(
            actor, code=code, worker_id=worker_id, supervisor_id=supervisor_id,
            assistant_id=assistant_id):
        raise PermissionDenied(f"{actor} may not read the ledger of {code}")
    if actor.role in auth.PILOT_SCOPED:
        in_pilot(uow, pilot_id, "ledger.read")
    b = ledger.Balance(0, credits or 0, posted or 0, pending or 0)
    return {"client": code, "pilot": pilot_id, **b.as_dict()}


def statement(uow: UnitOfWork, code: str, *, period: str | None = None) -> dict[str, Any]:
    """``avain ledger statement``: granted, committed, spent, released, lapsed, each on its
    business date (the service, invoice or payment date; a month's first day for what the
    month's opening and closing did), with the time it was recorded beside it."""
    acc, pilot_id = _budget_account(uow, code, "ledger.read")
    lines = []
    totals: dict[str, int] = {}
    if acc is not None:
        for t in ledger.transfers_of(session(uow), acc, period=period):
            label = LABELS.get(t.kind, t.kind)
            into_budget = t.credit_account_id == acc
            if t.kind in ("void", "release"):
                sign = 1
            elif t.kind == "post":
                sign = 0  # the commitment already took it out of what is available
            else:
                sign = 1 if into_budget else -1
            totals[label] = totals.get(label, 0) + t.amount
            lines.append({"date": t.business_date.isoformat(), "recorded_at": t.created_at.isoformat(),
                          "period": t.period,
                          "what": label, "amount": t.amount, "amount_fi": Money(t.amount).fi(),
                          "effect_on_available": sign * t.amount, "memo": t.memo, "transfer": t.id})
    b = ledger.balance(session(uow), acc) if acc else ledger.Balance(0, 0, 0, 0)
    return {"client": code, "pilot": pilot_id, "period": period, "lines": lines,
            "totals": totals, "balance": b.as_dict()}


def invoices_beyond_commitments(s) -> list[str]:
    """Problems found: a commitment whose invoices add up to more than it committed, or to
    another amount than the ledger posted for it (an invoice changed after it was
    recorded: each recorded invoice posts exactly its amount)."""
    posted = dict(s.execute(select(TransferRow.pending_id, func.sum(TransferRow.amount))
                            .where(TransferRow.kind == "post").group_by(TransferRow.pending_id)).all())
    rows = s.execute(select(CommitmentRow.id, CommitmentRow.amount, CommitmentRow.transfer_id,
                            func.sum(InvoiceRow.amount), func.count(InvoiceRow.id))
                     .join(InvoiceRow, InvoiceRow.commitment_id == CommitmentRow.id)
                     .group_by(CommitmentRow.id, CommitmentRow.amount, CommitmentRow.transfer_id)
                     .order_by(CommitmentRow.id)).all()
    problems = []
    for cid, committed, transfer_id, invoiced, count in rows:
        invoiced = int(invoiced)
        if invoiced > committed:
            problems.append(f"commitment {cid}: its {count} invoice(s) total {Money(invoiced).fi()}, more than "
                            f"the {Money(committed).fi()} committed")
        ledger_posted = int(posted.get(transfer_id, 0))
        if invoiced != ledger_posted:
            problems.append(f"commitment {cid}: its invoices total {Money(invoiced).fi()} but the ledger posted "
                            f"{Money(ledger_posted).fi()} for them")
    return problems


def verify(uow: UnitOfWork) -> dict[str, Any]:
    """``avain ledger verify``: recompute every balance from the transfers, check that the
    books balance, no budget is overspent and no commitment or invoice is out of step."""
    check_actor(uow, "ledger.verify")
    s = session(uow)
    problems = ledger.verify(s)
    # The chains as the signed checkpoints outside the database last saw them.
    expected = checkpoints.read(uow.app.engine.url.render_as_string(hide_password=False))
    transfers = s.execute(select(func.count()).select_from(TransferRow)).scalar_one()
    problems += expected.problems + expected.missing_problem("transfers", transfers) + \
        checkpoints.check_ledger(s, expected)
    problems += ledger.negative_payables(s)
    problems += invoices_beyond_commitments(s)
    # Each commitment's status must agree with what the ledger did with its reservation.
    resolved = dict(s.execute(select(TransferRow.pending_id, func.sum(TransferRow.amount))
                              .where(TransferRow.pending_id.is_not(None))
                              .group_by(TransferRow.pending_id)).all())
    posted = dict(s.execute(select(TransferRow.pending_id, func.sum(TransferRow.amount))
                            .where(TransferRow.kind == "post").group_by(TransferRow.pending_id)).all())
    for c in s.execute(select(CommitmentRow).order_by(CommitmentRow.id)).scalars():
        done = int(resolved.get(c.transfer_id, 0))
        # A pending commitment may be invoiced in parts: posted, never released.
        if c.status == "pending" and (done != c.amount_posted or done >= c.amount):
            problems.append(f"commitment {c.id} is pending but {done} of its {c.amount} was resolved "
                            f"({c.amount_posted} invoiced)")
        if c.status != "pending" and done != c.amount:
            problems.append(f"commitment {c.id} is {c.status} but {done} of {c.amount} was resolved")
        if int(posted.get(c.transfer_id, 0)) != c.amount_posted:
            problems.append(f"commitment {c.id} says {c.amount_posted} posted, the ledger "
                            f"{int(posted.get(c.transfer_id, 0))}")
    paid = set(s.execute(select(TransferRow.id).where(TransferRow.kind == "payment")).scalars())
    for inv in s.execute(select(InvoiceRow).order_by(InvoiceRow.id)).scalars():
        if (inv.status == "paid") != (f"pay:{inv.id}" in paid):
            problems.append(f"invoice {inv.id} is {inv.status} but the ledger "
                            f"{'has' if f'pay:{inv.id}' in paid else 'has no'} payment for it")
    counts = s.execute(select(func.count()).select_from(TransferRow)).scalar_one()
    accounts = s.execute(select(func.count()).select_from(AccountRow)).scalar_one()
    return {"ok": not problems, "transfers": counts, "accounts": accounts, "problems": problems}


#: Posted kinds a correction may reverse. Commitments are cancelled, not corrected, and a
#: correction is never itself reversed (record the right transfer instead).
CORRECTABLE = ("allocation", "lapse", "carry-over", "payment")


def correct(uow: UnitOfWork, transfer_id: str, *, reason: str) -> dict[str, Any]:
    """``avain ledger correct``: reverse a posted transfer with a new one that points at it.
    The original stays; a budget that has spent the money cannot have its allocation
    reversed (the reversal would overspend it and is refused)."""
    check_actor(uow, "ledger.correct")
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the transfer is corrected")
    clean_reason(reason)
    s = session(uow)
    original = s.get(TransferRow, transfer_id)
    if original is None:
        raise NotFound(f"no transfer {transfer_id}; see `avain ledger statement CODE --json`")
    in_pilot(uow, s.get(AccountRow, original.debit_account_id).pilot_id, "ledger.correct")
    if original.kind not in CORRECTABLE:
        raise Refused(f"a {original.kind} transfer is not corrected by reversal "
                      f"(correctable: {', '.join(CORRECTABLE)})")
    already = s.execute(select(TransferRow.id).where(TransferRow.reverses == transfer_id)).first()
    if already:
        raise Conflict(f"transfer {transfer_id} was reversed already by {already[0]}")
    t = ledger.reverse(s, f"correct:{transfer_id}", original_id=transfer_id, memo=reason.strip())
    owners = dict(s.execute(select(AccountRow.id, AccountRow.owner).where(
        AccountRow.id.in_([t.debit_account_id, t.credit_account_id]))).all())
    subject = next((o for o in owners.values() if o), ORGANISER)
    data = {"transfer": t.id, "reverses": transfer_id, "amount": t.amount, "reason": reason.strip()}
    record(uow, "ledger.corrected", subject, after=data)
    return data
