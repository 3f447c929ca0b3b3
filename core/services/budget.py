"""Decisions and budget periods: granting HB, opening a month (allocating every active
decision's budget), closing it (lapse, carry-over or carry-once of the remainder).

Opening and closing are bulk runs: they work in chunks, each chunk one transaction that
also advances the run's cursor, so a crash leaves whole chunks and a re-run carries on
where it stopped; transfer ids are derived from (pilot, period, client), so nothing is
ever allocated twice. A run writes one audit event with its count, not one per client.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import namedtuple
from collections.abc import Callable
from itertools import groupby
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import attrs
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from .. import ledger, sealed
from ..app import App
from ..audit import ORGANISER
from ..auth import Actor
from ..domain import (
    PERIOD_BATCH,
    PERIOD_END_ACTIONS,
    BudgetAmount,
    Decision,
    Money,
    Period,
    PeriodEndPolicy,
    Pilot,
    positive_amount,
    prorate_budget,
)
from ..errors import Conflict, NotFound, Refused, ValidationError
from ..models import AccountRow, BudgetPeriodRow, ClientRow, CommitmentRow, DecisionRow, TransferRow
from ..text import clean_reason
from ..uow import RetryableConflict, UnitOfWork
from . import payments, people, pilots, plans, purchases
from .common import check_actor, connection, in_pilot, reach_client, record, session

DEFAULT_BATCH = PERIOD_BATCH


# --- decisions ------------------------------------------------------------------------


_NO_INPUTS = MappingProxyType({})


def compute_budget(hooks, pilot: Pilot, decision: Decision, period: Period) -> BudgetAmount:
    """``avain_compute_budget`` for one decision (or part of one) and month, with a
    ``whole_month`` answer prorated by the days the decision covers: what every budget of
    the core (the grant, a month's opening, ``decision explain``) is computed with."""
    result = hooks.avain_compute_budget(pilot=pilot, decision=decision, period=period)
    return prorate_budget(result, decision, period) if result.whole_month else result


def decision_record(row) -> Decision:
    """The hook's view of a decision row (an ORM row or a Core row)."""
    return _decision(row.id, row.client_code, row.pilot_id, row.valid_from, row.valid_to,
                     row.monthly_amount, row.inputs)


def _decision(id: int, client_code: str, pilot_id: str, valid_from: dt.date, valid_to: dt.date,
              monthly_amount: int | None, inputs: str) -> Decision:
    return Decision(
        id=id, client_code=client_code, pilot_id=pilot_id, valid_from=valid_from, valid_to=valid_to,
        monthly_amount=Money(monthly_amount) if monthly_amount is not None else None,
        inputs=_NO_INPUTS if inputs == "{}" else MappingProxyType(json.loads(inputs)),
    )


def _seal_reason(uow: UnitOfWork, row: DecisionRow, reason: str | None) -> None:
    """Seal why the decision changed, bound to the decision (its id must be known)."""
    ring = sealed.ring_for_sealing(uow)
    row.key_id = ring.current.id
    row.change_reason = sealed.seal(ring, reason, "decision", row.id, "change_reason")


def change_reason(uow: UnitOfWork, row: DecisionRow) -> str | None:
    if row.change_reason is None:
        return None
    return sealed.open_(sealed.ring_for_reading(uow), row.key_id, row.change_reason, "decision", row.id,
                        "change_reason")


def decision_dict(row: DecisionRow, reason: str | None = None) -> dict[str, Any]:
    """The decision; ``change_reason`` is ``reason`` when given (opened by the caller), else
    only whether there is one (the audit trail keeps no words that quote people)."""
    return {"id": row.id, "client": row.client_code, "pilot": row.pilot_id,
            "from": row.valid_from.isoformat(), "to": row.valid_to.isoformat(),
            "monthly_amount": row.monthly_amount, "inputs": json.loads(row.inputs),
            "decided_by": row.decided_by, "revoked_on": row.revoked_on, "rule": row.rule,
            "pilot_version": row.pilot_version, "amends": row.amends,
            "change_reason": reason if reason is not None else ("given" if row.change_reason is not None else None),
            "at_grant": json.loads(row.explanation) if row.explanation else None}


def grant(uow: UnitOfWork, code: str, *, valid_from: dt.date, valid_to: dt.date,
          monthly_amount: Money | None = None, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """``avain decision grant``: HB for a validity range. The plan in force on the first
    day is kept on the decision, and the budget is computed once now, so the decision
    carries the explanation (every input, price and rule) it can be reproduced from, and
    the version of the pilot's configuration it was made under."""
    client = reach_client(uow, code, "decision.grant")
    if client.control:
        raise Refused(f"{code} is a control client: controls get no budget")
    if client.ended_on is not None:
        raise Refused(f"{code}'s client relationship ended on {client.ended_on.isoformat()}")
    if "plan" in (inputs or {}):
        raise ValidationError("--input: 'plan' is reserved: the decision keeps the plan in force itself")
    row = _decide(uow, client, valid_from=valid_from, valid_to=valid_to, monthly_amount=monthly_amount,
                  inputs=dict(inputs or {}))
    # The pilot's eligibility rules again, on the decision's dates: a refusal rolls the
    # unit of work back, so nothing of the decision is written.
    reasons = people.eligibility_at_decision(uow, client, pilots.get(uow, client.pilot_id), decision_record(row))
    if reasons:
        raise Refused(f"cannot grant HB to {code}: " + "; ".join(reasons), reasons)
    data = decision_dict(row)
    record(uow, "decision.granted", code, after=data)
    return data


def _decide(uow: UnitOfWork, client: ClientRow, *, valid_from: dt.date, valid_to: dt.date,
            monthly_amount: Money | None, inputs: dict[str, Any], amends: int | None = None,
            reason: str | None = None) -> DecisionRow:
    """A new decision row with the plan in force on its first day, the pilot's version and
    the budget of its first month computed once (what grant and amend share)."""
    if valid_to < valid_from:
        raise ValidationError(f"--to: {valid_to.isoformat()} is before --from {valid_from.isoformat()}")
    if monthly_amount is not None:
        positive_amount(monthly_amount, field_name="--amount")
    pilot = pilots.get(uow, client.pilot_id)
    pilots.require_plugins(uow, pilot)
    stored_inputs = {k: v for k, v in inputs.items() if k != "plan"}
    plan = plans.plan_in_force(uow, client.code, valid_from)
    if plan is not None:
        stored_inputs["plan"] = plans.snapshot(plan)
    s = session(uow)
    row = DecisionRow(client_code=client.code, pilot_id=client.pilot_id, valid_from=valid_from,
                      valid_to=valid_to,
                      monthly_amount=monthly_amount.cents if monthly_amount else None,
                      inputs=json.dumps(stored_inputs, sort_keys=True), decided_by=str(uow.actor),
                      decided_at=dt.datetime.now(dt.UTC), pilot_version=pilots.version_of(uow, pilot.id),
                      amends=amends)
    s.add(row)
    s.flush()  # the id is part of what the reason is bound to
    if reason is not None:
        _seal_reason(uow, row, reason)
    first = Period.of(valid_from)
    result = compute_budget(uow.hooks, pilot, decision_record(row), first)
    row.rule = result.rule
    row.explanation = json.dumps({"period": str(first), "amount": result.amount.cents,
                                  "explanation": result.explanation, "details": result.details},
                                 sort_keys=True)
    s.add(row)
    ledger.account_id(s, client.pilot_id, "budget", client.code)
    return row


def first_changeable_day(uow: UnitOfWork, pilot_id: str) -> dt.date | None:
    """The first day of the first month of the pilot not yet opened (None: none opened).
    Amendments and endings take effect from there: an allocated month is never rewritten."""
    newest = session(uow).execute(select(func.max(BudgetPeriodRow.period)).where(
        BudgetPeriodRow.pilot_id == pilot_id)).scalar_one()
    return Period.parse(newest).next().first_day if newest else None


def _changeable(uow: UnitOfWork, decision_id: int, reason: str) -> tuple[DecisionRow, ClientRow]:
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the decision changes")
    clean_reason(reason)
    row = session(uow).get(DecisionRow, decision_id)
    if row is None:
        raise NotFound(f"no decision {decision_id}; see `avain decision show CODE`")
    client = reach_client(uow, row.client_code, "decision.grant")
    if row.revoked_on is not None:
        raise Conflict(f"decision {decision_id} was replaced on {row.revoked_on.isoformat()}; "
                       "change the decision that replaced it")
    return row, client


def _refuse_allocated(uow: UnitOfWork, row: DecisionRow, day: dt.date, field: str, what: str) -> None:
    first = first_changeable_day(uow, row.pilot_id)
    if first is not None and day < first:
        opened = Period.of(first - dt.timedelta(days=1))
        raise Refused(f"{field}: {row.pilot_id} {opened} is opened already and its budget allocated; "
                      f"{what} can take effect from {first.isoformat()} (the first month not yet opened)")


def amend(uow: UnitOfWork, decision_id: int, *, reason: str, valid_from: dt.date | None = None,
          valid_to: dt.date | None = None, monthly_amount: Money | None = None,
          inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """``avain decision amend``: a new decision with the changed amount, inputs or end
    date, in force from ``valid_from`` (default: the old decision's first day) and pointing
    at the old one, which is kept and now ends the day before (or, amended from its first
    day, is marked replaced). Only months not yet opened can change."""
    old, client = _changeable(uow, decision_id, reason)
    effective = valid_from or old.valid_from
    new_to = valid_to or old.valid_to
    if not old.valid_from <= effective <= old.valid_to:
        raise ValidationError(f"--from: {effective.isoformat()} is outside decision {decision_id} "
                              f"({old.valid_from.isoformat()} – {old.valid_to.isoformat()})")
    if monthly_amount is None and not inputs and valid_to is None:
        raise ValidationError("decision amend: give what changes (--amount, --input or --to)")
    if "plan" in (inputs or {}):
        raise ValidationError("--input: 'plan' is reserved: the decision keeps the plan in force itself")
    _refuse_allocated(uow, old, effective, "--from", "an amendment")
    before = decision_dict(old)
    amount = monthly_amount if monthly_amount is not None else (
        Money(old.monthly_amount) if old.monthly_amount is not None else None)
    new = _decide(uow, client, valid_from=effective, valid_to=new_to, monthly_amount=amount,
                  inputs={**json.loads(old.inputs), **(inputs or {})}, amends=old.id, reason=reason.strip())
    if effective == old.valid_from:
        old.revoked_on = effective
    else:
        old.valid_to = effective - dt.timedelta(days=1)
    session(uow).add(old)
    data = decision_dict(new)
    record(uow, "decision.amended", old.client_code, before=before,
           after={"amended": decision_dict(old), "new": data}, purpose=reason.strip())
    return decision_dict(new, reason.strip())


def end_decision(uow: UnitOfWork, decision_id: int, *, on: dt.date, reason: str) -> dict[str, Any]:
    """``avain decision end``: the decision's last day becomes ``on``. The row is kept
    with the reason; months already opened keep their budget, so ``on`` is at the earliest
    the last day of the newest opened month."""
    row, _ = _changeable(uow, decision_id, reason)
    if on < row.valid_from:
        raise ValidationError(f"--on: {on.isoformat()} is before the decision begins "
                              f"({row.valid_from.isoformat()})")
    if on >= row.valid_to:
        raise Conflict(f"decision {decision_id} ends on {row.valid_to.isoformat()} already")
    _refuse_allocated(uow, row, on + dt.timedelta(days=1), "--on", "ending it")
    before = decision_dict(row)
    row.valid_to = on
    _seal_reason(uow, row, reason.strip())
    session(uow).add(row)
    data = decision_dict(row)
    record(uow, "decision.ended", row.client_code, before=before, after=data, purpose=reason.strip())
    return decision_dict(row, reason.strip())


def decisions(uow: UnitOfWork, code: str) -> list[dict[str, Any]]:
    reach_client(uow, code, "decision.read")
    rows = session(uow).execute(
        select(DecisionRow).where(DecisionRow.client_code == code).order_by(DecisionRow.id)).scalars()
    return [decision_dict(r, change_reason(uow, r)) for r in rows]


def explain(uow: UnitOfWork, code: str, period: Period) -> dict[str, Any]:
    """``avain decision explain``: the budget a month gets, and why — for each decision in
    force, the rule that produced its part, every input and price, and what was computed
    when the decision was made."""
    client = reach_client(uow, code, "decision.read")
    rows = session(uow).execute(select(DecisionRow).where(
        DecisionRow.client_code == code, DecisionRow.valid_from <= period.last_day,
        DecisionRow.valid_to >= period.first_day, DecisionRow.revoked_on.is_(None))).scalars().all()
    if not rows:
        raise NotFound(f"{code} has no decision in force in {period}")
    pilot = pilots.get(uow, client.pilot_id)
    by_id = {r.id: r for r in rows}
    parts = []
    for part in in_force_parts(list(rows), period):
        result = compute_budget(uow.hooks, pilot, part, period)
        row = by_id[part.id]
        parts.append({"decision": part.id, "days": f"{max(part.valid_from, period.first_day).isoformat()}"
                      f"–{min(part.valid_to, period.last_day).isoformat()}",
                      "amount": result.amount.cents, "amount_fi": result.amount.fi(), "rule": result.rule,
                      "explanation": result.explanation, "details": result.details,
                      "inputs": json.loads(row.inputs),
                      "at_grant": json.loads(row.explanation) if row.explanation else None})
    total = sum(p["amount"] for p in parts)
    return {"client": code, "period": str(period), "amount": total, "amount_fi": Money(total).fi(),
            "parts": parts}


# --- periods ---------------------------------------------------------------------------


def _months_open(pilot: Pilot) -> int:
    return pilot.raw.get("budget", {}).get("months_open", 1)


def alloc_id(pilot_id: str, period: Period, code: str) -> str:
    return f"alloc:{pilot_id}:{period}:{code}"


def _start_open(uow: UnitOfWork, pilot_id: str, period: Period) -> dict[str, Any]:
    check_actor(uow, "budget.run")
    pilot = pilots.get(uow, pilot_id)
    in_pilot(uow, pilot.id, "budget.run")
    pilots.require_plugins(uow, pilot)
    s = session(uow)
    row = s.get(BudgetPeriodRow, (pilot.id, str(period)))
    if row is not None and row.status in ("closing", "closed"):
        raise Refused(f"{pilot.id} {period} is {row.status}; it cannot be opened again")
    if row is None:
        open_rows = s.execute(select(BudgetPeriodRow.period).where(
            BudgetPeriodRow.pilot_id == pilot.id,
            BudgetPeriodRow.status.in_(("opening", "open", "closing")))).scalars().all()
        if len(open_rows) >= _months_open(pilot):
            raise Refused(f"{pilot.id} has {', '.join(sorted(open_rows))} open; pilot allows "
                          f"{_months_open(pilot)} open month(s) at a time: close-period first")
        row = BudgetPeriodRow(pilot_id=pilot.id, period=str(period), status="opening")
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError as exc:  # a simultaneous first run: the retry joins it
            raise RetryableConflict(f"{pilot.id} {period} is being opened concurrently") from exc
    ledger.account_id(s, pilot.id, "funding")
    total = s.execute(_clients_query(pilot.id, period, "", count=True)).scalar_one()
    return {"status": row.status, "total": total, "allocated": row.allocated}


def _covering(pilot_id: str, period: Period):
    """Conditions for a decision in force in ``period`` for an active HB client."""
    return (DecisionRow.pilot_id == pilot_id, DecisionRow.valid_from <= period.last_day,
            DecisionRow.valid_to >= period.first_day, DecisionRow.revoked_on.is_(None),
            ClientRow.control.is_(False),
            (ClientRow.ended_on.is_(None)) | (ClientRow.ended_on >= period.first_day))


def _clients_query(pilot_id: str, period: Period, after: str, *, count: bool = False,
                   limit: int | None = None):
    """Clients of the pilot with a decision in force in ``period``, after ``after`` in code
    order (the run's cursor)."""
    code = DecisionRow.__table__.c.client_code  # a Core column: plain rows, no ORM loading
    codes = (select(code)
             .join(ClientRow, ClientRow.code == code)
             .where(*_covering(pilot_id, period), code > after)
             .group_by(code))
    if count:
        return select(func.count()).select_from(codes.subquery())
    q = codes.order_by(code)
    return q.limit(limit) if limit else q


def in_force_parts(decisions: list[DecisionRow], period: Period) -> list[Decision]:
    """Which decision governs which days of the month: on each day the newest decision in
    force. Each part is the decision's record with its validity narrowed to the days it
    governs, so a decision renewed mid-month gives two prorated parts that add up to the
    month."""
    if len(decisions) == 1:
        return [decision_record(decisions[0])]
    newest_first = sorted(decisions, key=lambda d: d.id, reverse=True)
    owner: list[DecisionRow | None] = []
    day = period.first_day
    while day <= period.last_day:
        owner.append(next((d for d in newest_first if d.valid_from <= day <= d.valid_to), None))
        day += dt.timedelta(days=1)
    parts: list[Decision] = []
    i = 0
    while i < len(owner):
        j = i
        while j + 1 < len(owner) and owner[j + 1] is owner[i]:
            j += 1
        if owner[i] is not None:
            rec = decision_record(owner[i])
            first = period.first_day + dt.timedelta(days=i)
            last = period.first_day + dt.timedelta(days=j)
            parts.append(attrs.evolve(rec, valid_from=rec.valid_from if first == period.first_day else first,
                                      valid_to=rec.valid_to if last == period.last_day else last))
        i = j + 1
    return parts


def month_budget(uow: UnitOfWork, pilot: Pilot, decisions: list[DecisionRow], period: Period) -> tuple[int, str]:
    """A client's budget for the month (the sum of the parts of the decisions in force) and
    its explanation."""
    total, why = 0, []
    for part in in_force_parts(decisions, period):
        result = compute_budget(uow.hooks, pilot, part, period)
        total += result.amount.cents
        why.append(result.explanation)
    return total, " + ".join(why)


#: A decision row of a month's run, as a plain tuple with names (what in_force_parts and
#: decision_record read).
_ChunkDecision = namedtuple("_ChunkDecision", "id client_code pilot_id valid_from valid_to monthly_amount inputs")


def _chunk_decisions(pilot_id: str, period: Period, after: str, last: str):
    """The decisions in force of the clients in (``after``, ``last``], in code order."""
    d = DecisionRow.__table__.c  # Core columns: plain rows, no ORM loading
    return (select(d.id, d.client_code, d.pilot_id, d.valid_from, d.valid_to, d.monthly_amount, d.inputs)
            .join(ClientRow, ClientRow.code == d.client_code)
            .where(*_covering(pilot_id, period), d.client_code > after, d.client_code <= last)
            .order_by(d.client_code))


def _allocate_chunk(uow: UnitOfWork, pilot_id: str, period: Period, batch: int) -> tuple[int, bool]:
    s = session(uow)
    run = s.execute(select(BudgetPeriodRow).where(
        BudgetPeriodRow.pilot_id == pilot_id, BudgetPeriodRow.period == str(period))
        .with_for_update()).scalar_one()
    pilot = pilots.get(uow, pilot_id)
    after = run.cursor
    # The chunk is the next ``batch`` clients after the cursor: how many, and the last one.
    chunk = _clients_query(pilot_id, period, after, limit=batch).subquery()
    n, last = s.execute(select(func.count(), func.max(chunk.c.client_code))).one()
    if not n:
        return 0, True
    # This loop runs once per client of the pilot every month. So: Core rows read by key
    # range (the run works in code order), turned into plain tuples at once (a chunk's
    # thousands of rows then cost the garbage collector nothing), and per client only the
    # decision record and the hook call.
    conn = connection(uow)
    rows = [tuple(r) for r in conn.execute(_chunk_decisions(pilot_id, period, after, last))]
    acc = ledger.ACC.c
    accounts = dict(conn.execute(select(acc.owner, acc.id).where(
        acc.pilot_id == pilot_id, acc.kind == "budget", acc.owner > after, acc.owner <= last)).all())
    month = str(period)
    prefix = alloc_id(pilot_id, period, "")
    done = set(conn.execute(select(ledger.TR.c.id).where(
        ledger.TR.c.id > prefix + after, ledger.TR.c.id <= prefix + last)).scalars())
    funding = ledger.account_id(s, pilot_id, "funding")
    compute = uow.hooks.avain_compute_budget
    codes, transfers = [], []
    for code, group in groupby(rows, key=itemgetter(1)):
        codes.append(code)
        if code not in accounts:
            accounts[code] = ledger.account_id(s, pilot_id, "budget", code)
        tid = prefix + code
        if tid in done:
            continue
        decisions = list(group)
        if len(decisions) == 1:  # what month_budget() does for one decision, inline
            decision = _decision(*decisions[0])
            result = compute(pilot=pilot, decision=decision, period=period)
            if result.whole_month:
                result = prorate_budget(result, decision, period)
            amount, why = result.amount.cents, result.explanation
        else:
            amount, why = month_budget(uow, pilot, [_ChunkDecision._make(d) for d in decisions], period)
        if amount <= 0:
            continue
        transfers.append({"id": tid, "kind": "allocation", "debit": funding,
                          "credit": accounts[code], "amount": amount,
                          "period": month, "memo": why, "on_date": period.first_day})
    if codes:
        transfers += _carry_in(s, pilot_id, period, codes, accounts)
    ledger.bulk_post(s, transfers)
    run.cursor = last
    run.allocated += sum(1 for t in transfers if t["kind"] == "allocation")
    run.allocated_cents += sum(t["amount"] for t in transfers if t["kind"] == "allocation")
    s.add(run)
    return n, n < batch


def _carry_in(s, pilot_id: str, period: Period, codes: list[str], accounts: dict[str, int]) -> list[dict]:
    """Amounts carried over from the previous month come back to each budget."""
    prev = period.previous()
    wanted = set(codes)
    carried = [(tid, amount) for tid, amount in s.execute(
        select(TransferRow.id, TransferRow.amount).where(TransferRow.id.between(
            f"carry-out:{pilot_id}:{prev}:{codes[0]}", f"carry-out:{pilot_id}:{prev}:{codes[-1]}"))).all()
        if tid.rsplit(":", 1)[1] in wanted]
    if not carried:
        return []
    holding = ledger.account_id(s, pilot_id, "carried")
    in_ids = {f"carry-in:{pilot_id}:{period}:{tid.rsplit(':', 1)[1]}": (tid, amt) for tid, amt in carried}
    done = set(s.execute(select(TransferRow.id).where(TransferRow.id.in_(list(in_ids)))).scalars())
    rows = []
    for in_id, (out_id, amount) in in_ids.items():
        if in_id in done:
            continue
        code = out_id.rsplit(":", 1)[1]
        rows.append({"id": in_id, "kind": "carry-over", "debit": holding, "credit": accounts[code],
                     "amount": amount, "period": str(period), "memo": f"carried over from {prev}",
                     "on_date": period.first_day})
    return rows


def _finish_open(uow: UnitOfWork, pilot_id: str, period: Period) -> dict[str, Any]:
    s = session(uow)
    run = s.get(BudgetPeriodRow, (pilot_id, str(period)))
    was = run.status
    run.status, run.cursor = "open", ""
    run.opened_at = run.opened_at or dt.datetime.now(dt.UTC)
    s.add(run)
    summary = {"pilot": pilot_id, "period": str(period), "clients": run.allocated,
               "amount": run.allocated_cents, "amount_fi": Money(run.allocated_cents).fi()}
    record(uow, "budget.period_opened" if was == "opening" else "budget.period_topped_up",
           f"{pilot_id}:{period}", stream=ORGANISER, after=summary)
    return summary


def open_period(app: App, actor: Actor, pilot_id: str, period: Period, *,
                batch: int = DEFAULT_BATCH,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``avain budget open-period``: allocate every active decision's budget for the month.

    Idempotent and resumable: running it again allocates only what is missing (a client
    granted HB after the month opened, or what a crashed run left)."""
    start = app.run(actor, _start_open, pilot_id, period)
    done = 0
    if progress:
        progress(0, start["total"])
    while True:
        n, finished = app.run(actor, _allocate_chunk, pilot_id, period, batch)
        done += n
        if progress:
            progress(done, start["total"])
        if finished:
            break
    summary = app.run(actor, _finish_open, pilot_id, period)
    pilot = app.run(actor, pilots.get, pilot_id)
    backend = payments.backend_for(app.pm, pilot)
    if backend is not None and backend.load_period is not None:
        # After the allocation committed: a backend that fails (a service down) leaves the
        # ledger whole, and running open-period again loads again (backends load by
        # client and month, idempotently).
        allocations = app.run(actor, payments.period_allocations, pilot_id, period)
        summary["backend"] = {"name": backend.name,
                              **(backend.load_period(app, pilot, period, allocations) or {})}
    return summary


def _pending_commitments(s, pilot_id: str, period: Period) -> tuple[int, int]:
    """How many commitments of the month still reserve money, and how much."""
    n, cents = s.execute(select(func.count(), func.coalesce(func.sum(CommitmentRow.amount), 0)).where(
        CommitmentRow.pilot_id == pilot_id, CommitmentRow.period == str(period),
        CommitmentRow.status == "pending")).one()
    return n, int(cents)


def _start_close(uow: UnitOfWork, pilot_id: str, period: Period, today: dt.date,
                 force: bool) -> dict[str, Any]:
    check_actor(uow, "budget.run")
    pilot = pilots.get(uow, pilot_id)
    in_pilot(uow, pilot.id, "budget.run")
    s = session(uow)
    row = s.get(BudgetPeriodRow, (pilot.id, str(period)))
    if row is None:
        raise NotFound(f"{pilot.id} {period} was never opened")
    if row.status == "closed":
        raise Conflict(f"{pilot.id} {period} is closed already")
    if row.status == "opening":
        raise Refused(f"{pilot.id} {period} is still being opened: run open-period again first")
    early = today < period.last_day
    if row.status == "open":
        if early and not force:
            n, cents = _pending_commitments(s, pilot.id, period)
            raise Refused(f"{pilot.id} {period} does not end until {period.last_day.isoformat()} "
                          f"(today is {today.isoformat()}); {n} commitment(s) of {Money(cents).fi()} "
                          f"are still pending in it. Close it after the month, or use --force")
        row.status, row.cursor = "closing", ""
        s.add(row)
    policy = uow.hooks.avain_period_end_policy(pilot=pilot, period=period)
    if policy.action not in PERIOD_END_ACTIONS:
        raise Refused(f"period end policy {policy.action!r} is none of {', '.join(PERIOD_END_ACTIONS)}")
    total = s.execute(select(func.count()).where(
        AccountRow.pilot_id == pilot.id, AccountRow.kind == "budget")).scalar_one()
    return {"policy": policy.action, "total": total, "forced": early}


def _close_chunk(uow: UnitOfWork, pilot_id: str, period: Period, action: str,
                 batch: int) -> tuple[int, int, int, bool]:
    """Close the next ``batch`` budgets: returns how many, the cents carried over and
    lapsed, and whether the run is done."""
    s = session(uow)
    run = s.execute(select(BudgetPeriodRow).where(
        BudgetPeriodRow.pilot_id == pilot_id, BudgetPeriodRow.period == str(period))
        .with_for_update()).scalar_one()
    accounts = s.execute(select(AccountRow).where(
        AccountRow.pilot_id == pilot_id, AccountRow.kind == "budget", AccountRow.owner > run.cursor)
        .order_by(AccountRow.owner).limit(batch).with_for_update()).scalars().all()
    if not accounts:
        return 0, 0, 0, True
    policy = PeriodEndPolicy(action)
    holders = {"lapse": ("lapsed",), "carry-over": ("carried",)}.get(action, ("lapsed", "carried"))
    targets = {holder: ledger.account_id(s, pilot_id, holder) for holder in holders}
    ids = [a.id for a in accounts]
    month_net = _month_net(s, ids, period)
    month_in = _month_in(s, ids, period) if action == "carry-once" else {}
    carried = lapsed = 0
    for acc in accounts:
        available = acc.credits_posted - acc.debits_posted - acc.debits_pending
        # Only this month's money: with several months open, the next month's allocation
        # must not lapse with this one.
        net = month_net.get(acc.id, 0)
        left = min(available, net)
        if left <= 0:
            continue
        credits, carried_in = month_in.get(acc.id, (0, 0))
        carry, lapse = policy.split(left, carried_in, credits - net)
        for amount, kind, prefix, holder in ((carry, "carry-over", "carry-out", "carried"),
                                             (lapse, "lapse", "lapse", "lapsed")):
            if amount <= 0:
                continue
            memo = (f"carried into {period} and unused" if kind == "lapse" and action == "carry-once"
                    else f"unused budget of {period}")
            ledger.transfer(s, f"{prefix}:{pilot_id}:{period}:{acc.owner}", kind=kind, debit=acc.id,
                            credit=targets[holder], amount=amount, period=str(period), memo=memo,
                            on_date=period.last_day)
        carried, lapsed = carried + carry, lapsed + lapse
    run.cursor = accounts[-1].owner
    s.add(run)
    return len(accounts), carried, lapsed, len(accounts) < batch


def _month_in(s, account_ids: list[int], period: Period) -> dict[int, tuple[int, int]]:
    """What came into each budget in ``period`` (the credits ``_month_net`` counts) and,
    of it, what was carried in from the month before."""
    t = TransferRow
    carried_in = func.sum(case((t.kind == "carry-over", t.amount), else_=0))
    rows = s.execute(select(t.credit_account_id, func.sum(t.amount), carried_in).where(
        t.period == str(period), t.credit_account_id.in_(account_ids), t.pending.is_(False),
        t.kind.not_in(("post", "void", "release"))).group_by(t.credit_account_id)).all()
    return {acc: (int(total), int(carried)) for acc, total, carried in rows}


def _month_net(s, account_ids: list[int], period: Period) -> dict[int, int]:
    """What each budget's transfers of ``period`` left available: credits in, minus what
    was committed (net of releases) or moved out, all in that month's transfers."""
    t = TransferRow
    ids = account_ids
    credit_in = select(t.credit_account_id.label("acc"), t.amount.label("x")).where(
        t.period == str(period), t.credit_account_id.in_(ids), t.pending.is_(False),
        t.kind.not_in(("post", "void", "release")))
    debit_out = select(t.debit_account_id.label("acc"), (-t.amount).label("x")).where(
        t.period == str(period), t.debit_account_id.in_(ids), t.kind.not_in(("post", "void", "release")))
    released = select(t.debit_account_id.label("acc"), t.amount.label("x")).where(
        t.period == str(period), t.debit_account_id.in_(ids), t.kind.in_(("void", "release")))
    parts = credit_in.union_all(debit_out, released).subquery()
    rows = s.execute(select(parts.c.acc, func.sum(parts.c.x)).group_by(parts.c.acc)).all()
    return {acc: int(total) for acc, total in rows}


def _finish_close(uow: UnitOfWork, pilot_id: str, period: Period, action: str, carried: int, lapsed: int,
                  clients: int, forced: bool) -> dict[str, Any]:
    s = session(uow)
    run = s.get(BudgetPeriodRow, (pilot_id, str(period)))
    run.status, run.cursor, run.closed_at = "closed", "", dt.datetime.now(dt.UTC)
    s.add(run)
    expired = purchases.expire_proposals(uow, pilot_id, period)
    moved = carried + lapsed
    summary = {"pilot": pilot_id, "period": str(period), "policy": action, "clients": clients,
               "amount": moved, "amount_fi": Money(moved).fi(), "carried": carried, "lapsed": lapsed,
               "proposals_expired": expired, "forced": forced}
    record(uow, "budget.period_closed", f"{pilot_id}:{period}", stream=ORGANISER, after=summary)
    return summary


def close_period(app: App, actor: Actor, pilot_id: str, period: Period, *,
                 batch: int = DEFAULT_BATCH, today: dt.date | None = None, force: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``avain budget close-period``: lapse or carry over every budget's unused remainder
    (money reserved by open commitments stays reserved), expire the month's proposals no
    one decided, then close the month.

    Refused before the month's last day (``today``, default the date today), saying what
    is still committed in it, unless ``force``; a forced close says so in its audit event."""
    today = today or dt.date.today()
    start = app.run(actor, _start_close, pilot_id, period, today, force)
    done = carried = lapsed = 0
    while True:
        n, c, lap, finished = app.run(actor, _close_chunk, pilot_id, period, start["policy"], batch)
        done, carried, lapsed = done + n, carried + c, lapsed + lap
        if progress:
            progress(done, start["total"])
        if finished:
            break
    return app.run(actor, _finish_close, pilot_id, period, start["policy"], carried, lapsed, done,
                   start["forced"])


def periods(uow: UnitOfWork, pilot_id: str) -> list[dict[str, Any]]:
    """``avain budget show``: the months of a pilot and what was allocated."""
    check_actor(uow, "budget.read")
    pilots.get(uow, pilot_id)
    in_pilot(uow, pilot_id, "budget.read")
    rows = session(uow).execute(select(BudgetPeriodRow).where(
        BudgetPeriodRow.pilot_id == pilot_id).order_by(BudgetPeriodRow.period)).scalars()
    return [{"period": r.period, "status": r.status, "clients": r.allocated,
             "allocated": r.allocated_cents, "allocated_fi": Money(r.allocated_cents).fi()}
            for r in rows]


def period_status(uow: UnitOfWork, pilot_id: str, period: Period) -> str | None:
    row = session(uow).get(BudgetPeriodRow, (pilot_id, str(period)))
    return row.status if row else None
