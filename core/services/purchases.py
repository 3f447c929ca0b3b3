"""The purchase workflow, each step one service call that checks the role, writes the
audit event and queues the event hooks:

propose → approve (issues a payment commitment: a pending transfer) | reject
→ [confirm receipt, when the pilot uses it] → record invoice (posts the commitment, never
above it, releases the rest) → approve invoice (the role the pilot names) → pay.
A commitment can instead be cancelled or expire; its money is released at once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import case, select, update

from .. import auth, i18n, ledger, sealed
from ..domain import Commitment, Invoice, Money, Period, Proposal, PurchaseFacts, positive_amount
from ..errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from ..i18n import _
from ..models import (
    BudgetPeriodRow,
    ClientRow,
    CommitmentRow,
    DecisionRow,
    InvoiceRow,
    ProposalRow,
)
from ..references import fi_reference, parse_reference, rf_reference
from ..text import clean, clean_reason, refuse_hetu
from ..uow import UnitOfWork
from . import catalogue, messages, pilots, plans, providers
from .common import actor_pilot, check_actor, in_pilot, reach_client, record, scope_clause, session

SERVICE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _service_name(uow: UnitOfWork, code: str) -> str:
    """The service's name in the current language (Finnish where the catalogue has no other)."""
    row = catalogue.get_service(uow, code)
    if row is None:
        return code
    return {"sv": row.name_sv, "en": row.name_en}.get(i18n.language()) or row.name_fi


def _by(uow: UnitOfWork) -> str:
    return messages.role_label(uow.actor.role)


def _tell(uow: UnitOfWork, client: ClientRow | str, event: str, text: Callable[[], str],
          ref: tuple[str, int]) -> None:
    """Write a workflow step into the client's dialogue thread, in this transaction, in the
    client's language whoever takes the step: ``text`` is composed in that language."""
    if isinstance(client, str):
        client = session(uow).get(ClientRow, client)
    with i18n.using(client.language):
        body = text()
    messages.system(uow, client, event, body, ref=ref)


def proposal_words(ring, row: ProposalRow) -> dict[str, str | None]:
    """The proposal's text and the decider's reason, opened in memory (they are sealed)."""
    return {f: sealed.open_(ring, row.key_id, getattr(row, f), "proposal", row.id, f) for f in ("text", "reason")}


def _sealed_words(uow: UnitOfWork, row: ProposalRow, **words: str | None) -> dict[str, Any]:
    """Column values sealing the proposal's text and reason (``words`` replace the stored
    ones) under the current key: both at once, so the row is under one key."""
    current = proposal_words(sealed.ring_for_reading(uow), row) if row.key_id else {"text": None, "reason": None}
    current.update(words)
    ring = sealed.ring_for_sealing(uow)
    return {"key_id": ring.current.id, **{f: sealed.seal(ring, v, "proposal", row.id, f) for f, v in current.items()}}


def proposal_record(uow: UnitOfWork, row: ProposalRow) -> Proposal:
    text = proposal_words(sealed.ring_for_reading(uow), row)["text"] if row.key_id else None
    return Proposal(row.id, row.client_code, row.pilot_id, row.service, row.provider_id,
                    Money(row.amount), row.service_date, text, row.status, row.units)


def commitment_record(row: CommitmentRow) -> Commitment:
    return Commitment(row.id, row.client_code, row.provider_id, Money(row.amount), row.reference,
                      row.expires_on, row.status)


def invoice_record(row: InvoiceRow) -> Invoice:
    return Invoice(row.id, row.client_code, row.provider_id, row.number, Money(row.amount),
                   row.commitment_id, row.status)


def proposal_dict(row: ProposalRow, ring=None) -> dict[str, Any]:
    """The proposal; with its text and reason opened when ``ring`` is given (the audit
    trail gets the proposal without them: words that quote people are kept sealed)."""
    words = proposal_words(ring, row) if ring is not None and row.key_id else {}
    return {"id": row.id, "client": row.client_code, "pilot": row.pilot_id,
            "service": row.service, "units": row.units, "provider": row.provider_id, "amount": row.amount,
            "amount_fi": Money(row.amount).fi(), "date": row.service_date.isoformat(),
            "text": words.get("text"), "status": row.status, "proposed_by": row.proposed_by,
            "decided_by": row.decided_by, "reason": words.get("reason")}


def commitment_dict(row: CommitmentRow) -> dict[str, Any]:
    return {"id": row.id, "proposal": row.proposal_id, "client": row.client_code,
            "provider": row.provider_id, "amount": row.amount, "amount_fi": Money(row.amount).fi(),
            "posted": row.amount_posted, "posted_fi": Money(row.amount_posted).fi(),
            "left": row.amount - row.amount_posted if row.status == "pending" else 0,
            "period": row.period, "reference": row.reference,
            "reference_rf": rf_reference(row.reference), "status": row.status,
            "expires_on": row.expires_on.isoformat(), "flag": row.flag,
            "received_on": row.received_on.isoformat() if row.received_on else None}


def invoice_dict(row: InvoiceRow) -> dict[str, Any]:
    return {"id": row.id, "provider": row.provider_id, "number": row.number,
            "amount": row.amount, "amount_fi": Money(row.amount).fi(),
            "reference": row.reference, "commitment": row.commitment_id,
            "client": row.client_code, "status": row.status, "batch": row.batch_id,
            "due_date": row.due_date.isoformat() if row.due_date else None,
            "bank_reason_code": row.bank_reason_code, "bank_reason": row.bank_reason,
            "recorded_by": row.recorded_by,
            "approved_by": row.approved_by,
            "paid_at": row.paid_at.isoformat() if row.paid_at else None}


def _get(uow: UnitOfWork, model, ident: int, noun: str):
    row = session(uow).get(model, ident)
    if row is None:
        raise NotFound(f"no {noun} {ident}")
    return row


def transition(uow: UnitOfWork, model, ident: int, *, frm: str, to: dict[str, Any]) -> None:
    """Move a row from status ``frm`` exactly once: a concurrent or repeated step finds
    no row in that status and is refused."""
    result = session(uow).execute(
        update(model).where(model.id == ident, model.status == frm).values(**to)
        .execution_options(synchronize_session="fetch"))
    if result.rowcount != 1:
        current = session(uow).get(model, ident)
        raise Conflict(f"{model.__tablename__} {ident} is "
                       f"{current.status if current else 'missing'}, not {frm}")


# --- proposals -------------------------------------------------------------------------


def propose(uow: UnitOfWork, code: str, *, service: str, provider_id: str, amount: Money,
            service_date: dt.date, text: str | None = None, units: int = 1) -> dict[str, Any]:
    """The client (or their HB assistant, or their worker on their behalf) proposes a
    purchase."""
    client = reach_client(uow, code, "proposal.create")
    if client.control:
        raise Refused(f"{code} is a control client without a budget")
    if client.ended_on is not None:
        raise Refused(f"{code}'s client relationship has ended")
    if not SERVICE_CODE.match(service or ""):
        raise ValidationError(f"--service: {service!r} is not a service code")
    positive_amount(amount, field_name="--amount")
    provider = providers.get_row(uow, provider_id)
    text = refuse_hetu(clean(text, "--text", multiline=True), "--text")
    if text is not None and len(text) > 2000:
        raise ValidationError("--text: at most 2 000 characters")
    if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= 1000:
        raise ValidationError("--units: a whole number of units from 1 to 1000")
    if catalogue.get_service(uow, service) is None:
        raise NotFound(f"--service: {service!r} is not in the catalogue; see `avain catalogue search`")
    _check_service_date(uow, client, service_date)
    row = ProposalRow(client_code=code, pilot_id=client.pilot_id, service=service, units=units,
                      provider_id=provider.id, amount=amount.cents, service_date=service_date,
                      status="proposed", proposed_by=str(uow.actor), proposed_at=_now())
    s = session(uow)
    s.add(row)
    s.flush()  # the id is part of what the text is bound to
    for column, value in _sealed_words(uow, row, text=text).items():
        setattr(row, column, value)
    s.flush()
    data = proposal_dict(row, sealed.ring_for_reading(uow))
    record(uow, "proposal.made", code, after={**proposal_dict(row), "text": "given" if text else None})
    _tell(uow, client, "proposal.made", lambda: _(
        "Proposal {id} by the {role}: {service} from {provider} ({business_id}), {amount}, on {date}").format(
        id=row.id, role=_by(uow), service=_service_name(uow, service), provider=provider.name,
        business_id=provider.id, amount=i18n.money(amount.cents), date=i18n.date(service_date))
        + (f". “{text}”" if text else "."), ("proposal", row.id))
    uow.emit("avain_proposal_made", pilot=pilots.get(uow, client.pilot_id),
             proposal=proposal_record(uow, row))
    return data


def _check_service_date(uow: UnitOfWork, client: ClientRow, service_date: dt.date) -> None:
    """A proposal's date must be one its budget can pay for: not before the client was
    enrolled, in a month the pilot has open."""
    if service_date < client.enrolled_on:
        raise ValidationError(f"--date: {service_date.isoformat()} is before the client was enrolled "
                              f"({client.enrolled_on.isoformat()})")
    period = Period.of(service_date)
    status = session(uow).get(BudgetPeriodRow, (client.pilot_id, str(period)))
    if status is None or status.status != "open":
        raise Refused(f"--date: {service_date.isoformat()} is in a month that is not open: "
                      f"{client.pilot_id} {period} is not open for spending "
                      f"({status.status if status else 'not opened'})")


def refuse_closed_day(uow: UnitOfWork, pilot_id: str, day: dt.date | None, what: str) -> None:
    """A workflow step replayed on a past ``day`` (``--date``) must fall in a month of the
    pilot that is not closed: a closed month's money is settled."""
    if day is None:
        return
    period = Period.of(day)
    status = session(uow).get(BudgetPeriodRow, (pilot_id, str(period)))
    if status is not None and status.status in ("closing", "closed"):
        raise Refused(f"--date: {day.isoformat()} is in {period}, which {pilot_id} has closed; "
                      f"{what} can be dated in a month that is not closed (today, or a day of an open month)",
                      field="--date")


def _proposal_for_decision(uow: UnitOfWork, proposal_id: int) -> tuple[ProposalRow, ClientRow]:
    row = _get(uow, ProposalRow, proposal_id, "proposal")
    client = reach_client(uow, row.client_code, "proposal.decide")
    if auth.same_person(row.proposed_by, str(uow.actor)):
        raise PermissionDenied(f"proposal {proposal_id} was made by {row.proposed_by}: "
                               "a proposal is decided by someone other than who proposed it")
    return row, client


def approve(uow: UnitOfWork, proposal_id: int, *, note: str | None = None,
            today: dt.date | None = None, on_date: dt.date | None = None) -> dict[str, Any]:
    """The personal worker approves: the pilot's purchase rules are checked, then a payment
    commitment reserves the amount from the budget for that provider.

    ``on_date`` replays the approval on a past day (``--date``; ``today`` is its older
    name): the provider's approval is judged and the commitment's validity counted from
    it; the commitment itself is dated by the service date, whose month it reserves.
    A day in a closed month is refused."""
    row, client = _proposal_for_decision(uow, proposal_id)
    clean_reason(note, "--note")
    if row.status != "proposed":
        raise Conflict(f"proposal {proposal_id} is {row.status}, not proposed")
    refuse_closed_day(uow, row.pilot_id, on_date, "an approval")
    today = on_date or today
    pilot = pilots.get(uow, row.pilot_id)
    s = session(uow)
    period = Period.of(row.service_date)
    status = s.get(BudgetPeriodRow, (row.pilot_id, str(period)))
    if status is None or status.status != "open":
        raise Refused(f"{row.pilot_id} {period} is not open for spending "
                      f"({status.status if status else 'not opened'})")
    decision = s.execute(select(DecisionRow.id).where(
        DecisionRow.client_code == row.client_code, DecisionRow.revoked_on.is_(None),
        DecisionRow.valid_from <= row.service_date, DecisionRow.valid_to >= row.service_date)).first()
    if decision is None:
        raise Refused(f"{row.client_code} has no decision in force on {row.service_date.isoformat()}")
    today = today or dt.date.today()
    facts = purchase_facts(uow, row, pilot, today)
    reasons = [r for res in uow.hooks.avain_validate_purchase(pilot=pilot, proposal=proposal_record(uow, row),
                                                               facts=facts)
               for r in (res or [])]
    if reasons:
        raise Refused(f"proposal {proposal_id} cannot be approved: " + "; ".join(reasons), reasons)
    options = uow.hooks.avain_workflow_options(pilot=pilot)
    budget = ledger.account_id(s, row.pilot_id, "budget", row.client_code)
    payable = ledger.account_id(s, row.pilot_id, "payable", row.provider_id)
    tid = f"commit:{row.id}"
    ledger.transfer(s, tid, kind="commitment", debit=budget, credit=payable, amount=row.amount,
                    pending=True, period=str(period), memo=f"{row.service} from {row.provider_id}",
                    on_date=row.service_date)
    transition(uow, ProposalRow, row.id, frm="proposed",
                to={"status": "approved", "decided_by": str(uow.actor), "decided_at": _now(),
                    **_sealed_words(uow, row, reason=note)})
    commitment = CommitmentRow(
        proposal_id=row.id, client_code=row.client_code, pilot_id=row.pilot_id,
        provider_id=row.provider_id, amount=row.amount, period=str(period),
        reference=fi_reference(row.id), transfer_id=tid, status="pending",
        expires_on=max(today, row.service_date) + dt.timedelta(days=options.commitment_days),
        issued_at=_now())
    s.add(commitment)
    s.flush()
    s.refresh(row)
    data = {"proposal": proposal_dict(row, sealed.ring_for_reading(uow)), "commitment": commitment_dict(commitment)}
    record(uow, "proposal.approved", row.client_code, before={"status": "proposed"},
           after={"status": "approved", "note": "given" if note else None, "commitment": commitment_dict(commitment)})
    _tell(uow, client, "proposal.approved",
          lambda: _("Proposal {id} approved by the {role}").format(id=row.id, role=_by(uow))
          + (f": {note}" if note else "."), ("proposal", row.id))
    provider = providers.get_row(uow, row.provider_id)
    _tell(uow, client, "commitment.issued", lambda: _(
        "Payment commitment {id} issued to {provider} ({business_id}): {amount} for {service} on {date}, "
        "reference {reference}, valid until {expires}.").format(
        id=commitment.id, provider=provider.name, business_id=provider.id, amount=i18n.money(commitment.amount),
        service=_service_name(uow, row.service), date=i18n.date(row.service_date),
        reference=commitment.reference, expires=i18n.date(commitment.expires_on)), ("commitment", commitment.id))
    uow.emit("avain_proposal_approved", pilot=pilot, proposal=proposal_record(uow, row),
             commitment=commitment_record(commitment))
    return data


def purchase_facts(uow: UnitOfWork, row: ProposalRow, pilot, today: dt.date) -> PurchaseFacts:
    """What the catalogue, the approvals and the client's plan say about a proposal."""
    service = catalogue.get_service(uow, row.service)
    provider = providers.get_row(uow, row.provider_id)
    approved, note = providers.approval_on(uow, row.provider_id, row.pilot_id, row.service,
                                           row.service_date, today)
    price = catalogue.price_on(uow, row.provider_id, row.service, row.service_date)
    plan = plans.plan_in_force(uow, row.client_code, row.service_date)
    plan_services = tuple(i["service"] for i in json.loads(plan.items)) if plan else None
    allowed = pilot.raw.get("services")
    return PurchaseFacts(
        service=catalogue.service_record(service) if service else None,
        provider_name=provider.name, provider_approved=approved, approval_note=note,
        catalogue_price=Money(price) if price is not None else None,
        plan_services=plan_services, pilot_services=tuple(allowed) if allowed is not None else None)


def reject(uow: UnitOfWork, proposal_id: int, *, reason: str) -> dict[str, Any]:
    """The worker rejects with a reason; the proposal is kept."""
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the proposal is rejected")
    clean_reason(reason)
    row, client = _proposal_for_decision(uow, proposal_id)
    transition(uow, ProposalRow, row.id, frm="proposed",
                to={"status": "rejected", "decided_by": str(uow.actor), "decided_at": _now(),
                    **_sealed_words(uow, row, reason=reason.strip())})
    session(uow).refresh(row)
    record(uow, "proposal.rejected", row.client_code, before={"status": "proposed"},
           after={"status": "rejected", "reason": "given", "proposal": row.id})
    _tell(uow, client, "proposal.rejected", lambda: _("Proposal {id} rejected by the {role}: {reason}").format(
        id=row.id, role=_by(uow), reason=reason.strip()), ("proposal", row.id))
    uow.emit("avain_proposal_rejected", pilot=pilots.get(uow, row.pilot_id),
             proposal=proposal_record(uow, row), reason=reason.strip())
    return proposal_dict(row, sealed.ring_for_reading(uow))


def expire_proposals(uow: UnitOfWork, pilot_id: str, period: Period) -> int:
    """Proposals of the month still waiting for a decision when the month closes expire
    (called by closing the month, in its last transaction): each is marked ``expired``,
    audited, and the client's thread says why. Returns how many expired."""
    s = session(uow)
    due = s.execute(select(ProposalRow).where(
        ProposalRow.pilot_id == pilot_id, ProposalRow.status == "proposed",
        ProposalRow.service_date >= period.first_day, ProposalRow.service_date <= period.last_day)
        .order_by(ProposalRow.id)).scalars().all()
    for row in due:
        transition(uow, ProposalRow, row.id, frm="proposed",
                   to={"status": "expired", "decided_by": str(uow.actor), "decided_at": _now(),
                       **_sealed_words(uow, row, reason=f"{period} closed")})
        record(uow, "proposal.expired", row.client_code, before={"status": "proposed"},
               after={"status": "expired", "proposal": row.id, "period": str(period)})
        _tell(uow, row.client_code, "proposal.expired", lambda row=row: _(
              "Proposal {id} expired: the month {period} closed before it was decided. "
              "Make a new proposal for a day in an open month.").format(id=row.id, period=period),
              ("proposal", row.id))
    return len(due)


def _scoped_rows(uow: UnitOfWork, model, action: str, *, status: str | None, code: str | None) -> list:
    """Rows of ``model`` (which has client_code and status) the actor may see, filtered."""
    check_actor(uow, action)
    q = select(model).order_by(model.id)
    clause = scope_clause(uow, model.client_code)
    if clause is not None:
        q = q.where(clause)
    if status:
        q = q.where(model.status == status)
    if code:
        q = q.where(model.client_code == code)
    return list(session(uow).execute(q).scalars())


def list_proposals(uow: UnitOfWork, *, status: str | None = None,
                   code: str | None = None) -> list[dict[str, Any]]:
    rows = _scoped_rows(uow, ProposalRow, "proposal.read", status=status, code=code)
    ring = sealed.ring_for_reading(uow) if any(r.key_id for r in rows) else None
    return [proposal_dict(r, ring) for r in rows]


# --- commitments -----------------------------------------------------------------------


def _release(uow: UnitOfWork, c: CommitmentRow, amount: int, *, kind: str, memo: str,
             on_date: dt.date | None = None) -> None:
    """Give reserved money back to the budget (on ``on_date``, default today); if the
    commitment's month is closed and the pilot lets remainders lapse (or carries them
    over once: the month's carry-over was made when it closed), the released money lapses
    too."""
    s = session(uow)
    ledger.resolve(s, f"{kind}:{c.transfer_id}", pending_id=c.transfer_id, kind=kind,
                   amount=amount, memo=memo, on_date=on_date)
    period = Period.parse(c.period)
    status = s.get(BudgetPeriodRow, (c.pilot_id, c.period))
    if status is not None and status.status == "closed":
        policy = uow.hooks.avain_period_end_policy(pilot=pilots.get(uow, c.pilot_id), period=period)
        if policy.action in ("lapse", "carry-once"):  # carry-once: the month's carry-over is done
            budget = ledger.account_id(s, c.pilot_id, "budget", c.client_code)
            lapsed = ledger.account_id(s, c.pilot_id, "lapsed")
            ledger.transfer(s, f"lapse:{kind}:{c.transfer_id}", kind="lapse", debit=budget,
                            credit=lapsed, amount=amount, period=c.period,
                            memo=f"released after {c.period} closed", on_date=period.last_day)


def cancel(uow: UnitOfWork, commitment_id: int, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """Cancel a pending commitment: its money goes back to the budget at once (the
    release is dated ``on_date``, default today)."""
    c = _get(uow, CommitmentRow, commitment_id, "commitment")
    reach_client(uow, c.client_code, "commitment.cancel")
    if c.status == "pending" and c.amount_posted:
        raise Conflict(f"commitment {c.id} has {Money(c.amount_posted).fi()} invoiced already; "
                       f"close it instead (`avain commitment close {c.id}`) to release the rest")
    transition(uow, CommitmentRow, c.id, frm="pending",
                to={"status": "voided", "resolved_at": _now()})
    _release(uow, c, c.amount, kind="void", memo="commitment cancelled", on_date=on_date)
    session(uow).refresh(c)
    record(uow, "commitment.cancelled", c.client_code, before={"status": "pending"},
           after=commitment_dict(c))
    return commitment_dict(c)


def expire(uow: UnitOfWork, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """Expire every pending commitment whose last valid day is before ``on_date``; never
    one that is still valid on that day."""
    check_actor(uow, "commitment.expire")
    on_date = on_date or dt.date.today()
    s = session(uow)
    q = select(CommitmentRow).where(CommitmentRow.status == "pending", CommitmentRow.expires_on < on_date)
    own = actor_pilot(uow)
    if own is not None:  # a finance worker expires their own pilot's commitments only
        q = q.where(CommitmentRow.pilot_id == own)
    due = s.execute(q.order_by(CommitmentRow.id)).scalars().all()
    for c in due:
        transition(uow, CommitmentRow, c.id, frm="pending",
                    to={"status": "expired", "resolved_at": _now()})
        _release(uow, c, c.amount - c.amount_posted, kind="void",
                 memo=f"expired on {c.expires_on.isoformat()}", on_date=on_date)
        record(uow, "commitment.expired", c.client_code, before={"status": "pending"},
               after={"status": "expired", "commitment": c.id, "amount": c.amount,
                      "released": c.amount - c.amount_posted})
    return {"expired": len(due), "amount": sum(c.amount - c.amount_posted for c in due),
            "commitments": [c.id for c in due]}


def confirm_receipt(uow: UnitOfWork, commitment_id: int, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """The client marks the service received (only in pilots that use this step), on
    ``on_date`` (default today; a day in a closed month is refused)."""
    c = _get(uow, CommitmentRow, commitment_id, "commitment")
    reach_client(uow, c.client_code, "commitment.confirm")
    options = uow.hooks.avain_workflow_options(pilot=pilots.get(uow, c.pilot_id))
    if not options.confirm_receipt:
        raise Refused(f"pilot {c.pilot_id} does not use receipt confirmation")
    if c.status != "pending":
        raise Conflict(f"commitment {c.id} is {c.status}")
    if c.received_on is not None:
        raise Conflict(f"commitment {c.id} was confirmed received on {c.received_on.isoformat()}")
    refuse_closed_day(uow, c.pilot_id, on_date, "a receipt")
    c.received_on = on_date or dt.date.today()
    session(uow).add(c)
    record(uow, "commitment.received", c.client_code, after={"commitment": c.id,
                                                            "received_on": c.received_on.isoformat()})
    return commitment_dict(c)


def list_commitments(uow: UnitOfWork, *, status: str | None = None,
                     code: str | None = None) -> list[dict[str, Any]]:
    return [commitment_dict(r) for r in _scoped_rows(uow, CommitmentRow, "proposal.read", status=status, code=code)]


# --- invoices --------------------------------------------------------------------------


def record_invoice(uow: UnitOfWork, *, provider_id: str, number: str, amount: Money,
                   reference: str, on_date: dt.date | None = None, due_date: dt.date | None = None,
                   final: bool = False) -> dict[str, Any]:
    """Finance records an arrived invoice: it posts against the commitment its reference
    names, never above what is still open of it. Providers bill in parts, so the commitment
    stays pending until it is fully invoiced, closed or expired; ``final`` closes it with
    this invoice (the rest of the reservation is released). What it posts and releases is
    dated ``on_date``, the day the invoice arrived (default today; a day in a closed month
    is refused)."""
    check_actor(uow, "invoice.record")
    provider = providers.get_row(uow, provider_id)
    number = (number or "").strip()
    if not number or len(number) > 64:
        raise ValidationError("--number: the invoice number must be 1–64 characters")
    positive_amount(amount, field_name="--amount")
    ref = parse_reference(reference)
    s = session(uow)
    c = s.execute(select(CommitmentRow).where(CommitmentRow.reference == ref)).scalar_one_or_none()
    if c is None:
        raise NotFound(f"--ref: no payment commitment has reference {ref}")
    in_pilot(uow, c.pilot_id, "invoice.record")
    refuse_closed_day(uow, c.pilot_id, on_date, "an invoice")
    if c.provider_id != provider.id:
        raise Refused(f"--provider: commitment {c.id} was issued to {c.provider_id}, not {provider.id}")
    if s.execute(select(InvoiceRow.id).where(InvoiceRow.provider_id == provider.id,
                                             InvoiceRow.number == number)).first():
        raise Conflict(f"--number: invoice {number} of {provider.id} is recorded already")
    on_date = on_date or dt.date.today()
    if c.status == "pending" and on_date > c.expires_on:
        raise Refused(f"commitment {c.id} expired on {c.expires_on.isoformat()}; it cannot be posted")
    if c.status != "pending":
        raise Conflict(f"commitment {c.id} is {c.status}; an invoice can post only a pending one")
    options = uow.hooks.avain_workflow_options(pilot=pilots.get(uow, c.pilot_id))
    if options.confirm_receipt and c.received_on is None:
        raise Refused(f"the client has not confirmed receiving the service of commitment {c.id}")
    _post_part(uow, c, amount.cents, number)
    ledger.resolve(s, f"post:{c.transfer_id}:{provider.id}:{number}", pending_id=c.transfer_id,
                   kind="post", amount=amount.cents, memo=f"invoice {number}", on_date=on_date)
    s.refresh(c)
    if c.status == "posted":
        c.resolved_at = _now()
        s.add(c)
    elif final:
        _close(uow, c, memo=f"rest of invoice {number}", on_date=on_date)
    inv = InvoiceRow(provider_id=provider.id, number=number, amount=amount.cents, reference=ref,
                     commitment_id=c.id, client_code=c.client_code, pilot_id=c.pilot_id,
                     status="recorded", due_date=due_date, recorded_by=str(uow.actor), recorded_at=_now())
    s.add(inv)
    s.flush()
    data = invoice_dict(inv) | {"commitment_status": c.status,
                                "commitment_left": commitment_dict(c)["left"]}
    record(uow, "invoice.recorded", c.client_code, after=data)
    return data


def _post_part(uow: UnitOfWork, c: CommitmentRow, cents: int, number: str) -> None:
    """Add ``cents`` to what is posted of a pending commitment, as one conditional update
    (never above its amount, also when two invoices arrive at once); fully invoiced, it
    is posted."""
    s = session(uow)
    posted = CommitmentRow.amount_posted + cents
    done = posted == CommitmentRow.amount
    result = s.execute(update(CommitmentRow).where(
        CommitmentRow.id == c.id, CommitmentRow.status == "pending", posted <= CommitmentRow.amount)
        .values(amount_posted=posted, status=case((done, "posted"), else_="pending"))
        .execution_options(synchronize_session="fetch"))
    if result.rowcount != 1:
        s.refresh(c)
        if c.status != "pending":
            raise Conflict(f"commitment {c.id} is {c.status}; an invoice can post only a pending one")
        left = c.amount - c.amount_posted
        raise Refused(f"--amount: {Money(cents).fi()} of invoice {number} is above the commitment's "
                      f"remaining {Money(left).fi()} (commitment {c.id}: {Money(c.amount).fi()}, "
                      f"{Money(c.amount_posted).fi()} invoiced so far)")


def _close(uow: UnitOfWork, c: CommitmentRow, *, memo: str, on_date: dt.date | None = None) -> int:
    """Close a pending commitment: the part not invoiced goes back to the budget, in one
    release, exactly once. Returns the amount released."""
    transition(uow, CommitmentRow, c.id, frm="pending", to={"status": "closed", "resolved_at": _now()})
    session(uow).refresh(c)
    left = c.amount - c.amount_posted
    if left > 0:
        _release(uow, c, left, kind="release", memo=memo, on_date=on_date)
    return left


def close(uow: UnitOfWork, commitment_id: int, *, note: str | None = None) -> dict[str, Any]:
    """``avain commitment close``: the provider will bill no more; what is not invoiced of
    the commitment returns to the budget."""
    c = _get(uow, CommitmentRow, commitment_id, "commitment")
    reach_client(uow, c.client_code, "commitment.cancel")
    clean_reason(note, "--note")
    if c.status != "pending":
        raise Conflict(f"commitment {c.id} is {c.status}; only a pending one can be closed")
    released = _close(uow, c, memo=note or "commitment closed")
    data = commitment_dict(c) | {"released": released, "released_fi": Money(released).fi()}
    record(uow, "commitment.closed", c.client_code, before={"status": "pending"},
           after=data | {"note": note})
    return data


def approve_invoice(uow: UnitOfWork, invoice_id: int) -> dict[str, Any]:
    """The role the pilot names (supervisor by default) confirms the invoice is in order;
    not the person who recorded it."""
    inv = _get(uow, InvoiceRow, invoice_id, "invoice")
    options = uow.hooks.avain_workflow_options(pilot=pilots.get(uow, inv.pilot_id))
    actor = uow.actor
    if actor.role != options.invoice_approver:
        raise PermissionDenied(f"in pilot {inv.pilot_id} invoices are approved by the "
                               f"{options.invoice_approver}, not {actor.role}")
    reach_client(uow, inv.client_code, "invoice.approve")
    if auth.same_person(inv.recorded_by, str(actor)):
        raise PermissionDenied(f"invoice {inv.id} was recorded by {inv.recorded_by}: the invoice must be "
                               "approved by someone other than who recorded it")
    transition(uow, InvoiceRow, inv.id, frm="recorded",
                to={"status": "approved", "approved_by": str(actor), "approved_at": _now()})
    session(uow).refresh(inv)
    record(uow, "invoice.approved", inv.client_code, before={"status": "recorded"},
           after={"status": "approved", "invoice": inv.id})
    return invoice_dict(inv)


def pay(uow: UnitOfWork, invoice_id: int) -> dict[str, Any]:
    """An invoice in a confirmed payment batch is paid, exactly once (called by
    ``finance.confirm_batch``; invoices are paid only through batches)."""
    check_actor(uow, "invoice.pay")
    inv = _get(uow, InvoiceRow, invoice_id, "invoice")
    transition(uow, InvoiceRow, inv.id, frm="batched", to={"status": "paid", "paid_at": _now()})
    s = session(uow)
    payable = ledger.account_id(s, inv.pilot_id, "payable", inv.provider_id)
    bank = ledger.account_id(s, inv.pilot_id, "bank")
    c = s.get(CommitmentRow, inv.commitment_id)
    ledger.transfer(s, f"pay:{inv.id}", kind="payment", debit=payable, credit=bank,
                    amount=inv.amount, period=c.period if c else None,
                    memo=f"invoice {inv.number} to {inv.provider_id}")
    s.refresh(inv)
    record(uow, "invoice.paid", inv.client_code, before={"status": "approved"},
           after={"status": "paid", "invoice": inv.id, "amount": inv.amount})
    provider = providers.get_row(uow, inv.provider_id)
    _tell(uow, inv.client_code, "invoice.paid", lambda: _("Invoice {number} of {provider} paid: {amount}").format(
        number=inv.number, provider=provider.name, amount=i18n.money(inv.amount))
        + (_(" (commitment {id}).").format(id=c.id) if c else "."), ("invoice", inv.id))
    uow.emit("avain_invoice_paid", pilot=pilots.get(uow, inv.pilot_id), invoice=invoice_record(inv))
    return invoice_dict(inv)


def list_invoices(uow: UnitOfWork, *, status: str | None = None) -> list[dict[str, Any]]:
    """Invoices the actor may see, the soonest due first (those without a due date last)."""
    rows = _scoped_rows(uow, InvoiceRow, "invoice.read", status=status, code=None)
    rows.sort(key=lambda r: (r.due_date is None, r.due_date or dt.date.max, r.id))
    return [invoice_dict(r) for r in rows]

