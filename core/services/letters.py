"""The facts of the documents an authority gives (hallintolaki 434/2003 §44–49 g): a
decision letter for the client, a payment commitment for the provider, a monthly statement
for the client. Each function checks the role and scope, writes one audit event saying
which document was made for whom, and returns the document as plain data; ``avain.core.
letters`` renders it. A provider's document never holds the client's name or
henkilötunnus; a client's letter holds the name only when the acting role may identify
clients, and that read is logged like ``avain client show``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select

from .. import auth
from ..domain import Period
from ..errors import NotFound, Refused
from ..letters import check_language, group_reference
from ..models import (
    ClientRow,
    CommitmentRow,
    DecisionRow,
    InvoiceRow,
    ProposalRow,
    ProviderRow,
    ServiceRow,
    WorkerRow,
)
from ..references import rf_reference
from ..uow import UnitOfWork
from ..workdays import is_working_day, next_working_day
from . import people, pilots, statements
from .common import reach_client, record, session

#: Days to a request for review after notification (hallintolaki §49 c).
REVIEW_DAYS = 30
#: A letter sent by post is taken to be received on this day after sending (§59).
POST_NOTIFICATION_DAYS = 7


def letter_language(client: ClientRow) -> str:
    """The language a client's letters are written in when ``--lang`` is not given: the
    client's own language (``avain client enroll --lang``, ``avain client language``)."""
    return client.language


def review_deadline(sent_on: dt.date) -> tuple[dt.date, dt.date]:
    """(notified on, last day for a request for review) for a letter posted on ``sent_on``:
    received on the seventh day, then 30 days; a deadline on a Saturday, Sunday or public
    holiday moves to the next working day."""
    notified = sent_on + dt.timedelta(days=POST_NOTIFICATION_DAYS)
    deadline = notified + dt.timedelta(days=REVIEW_DAYS)
    if not is_working_day(deadline):
        deadline = next_working_day(deadline)
    return notified, deadline


def _organiser(uow: UnitOfWork, pilot_id: str) -> dict[str, Any]:
    pilot = pilots.get(uow, pilot_id)
    letters = dict(pilot.raw.get("letters", {}))
    payment = pilot.raw.get("payment", {})
    return {"name": pilot.organiser or pilot.name, "pilot": pilot.name, "pilot_id": pilot.id,
            "review_body": letters.get("review_body"), "review_address": letters.get("review_address"),
            "einvoice_address": letters.get("einvoice_address"),
            "einvoice_operator": letters.get("einvoice_operator"),
            "buyer": payment.get("debtor_name") or pilot.organiser or pilot.name}


def _recipient(uow: UnitOfWork, code: str, reason: str) -> dict[str, Any]:
    """The client's name when the acting role may identify clients (the read is logged
    with ``reason``), else only the code."""
    if uow.actor.role in auth.MATRIX["client.identify"]:
        return {"code": code, "name": people.identify(uow, code, reason=reason)["name"]}
    return {"code": code, "name": None}


def _service_names(uow: UnitOfWork, codes, lang: str) -> dict[str, dict[str, str]]:
    rows = session(uow).execute(select(ServiceRow).where(ServiceRow.code.in_(set(codes)))).scalars()
    return {r.code: {"name": {"sv": r.name_sv, "en": r.name_en}.get(lang) or r.name_fi, "unit": r.unit}
            for r in rows}


def _worker(uow: UnitOfWork, actor_text: str | None) -> dict[str, str] | None:
    """A worker named by an actor string (``worker:example-01``), by name and role: the
    official who decided, whom the client may ask (hallintolaki §44)."""
    if not actor_text or ":" not in actor_text:
        return None
    role, _, ident = actor_text.partition(":")
    row = session(uow).get(WorkerRow, ident)
    return {"name": row.name, "role": row.role} if row is not None else None


def _lang(client: ClientRow, lang: str | None) -> str:
    return check_language(lang) if lang else letter_language(client)


def _dates(sent_on: dt.date | None) -> dict[str, dt.date]:
    sent = sent_on or dt.date.today()
    notified, deadline = review_deadline(sent)
    return {"sent_on": sent, "notified_on": notified, "deadline": deadline}


def decision_letter(uow: UnitOfWork, code: str, *, decision_id: int | None = None, lang: str | None = None,
                    reason: str = "decision letter", sent_on: dt.date | None = None) -> dict[str, Any]:
    """``avain decision letter``: the decision with its budget, validity, services, how the
    money is paid, reasons and the instructions for a request for review."""
    client = reach_client(uow, code, "decision.read")
    lang = _lang(client, lang)
    s = session(uow)
    q = select(DecisionRow).where(DecisionRow.client_code == code)
    if decision_id is not None:
        row = s.execute(q.where(DecisionRow.id == decision_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"--decision: {code} has no decision {decision_id}; see `avain decision show {code}`")
    else:
        row = s.execute(q.where(DecisionRow.revoked_on.is_(None)).order_by(DecisionRow.id.desc())
                        .limit(1)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"{code} has no decision in force; see `avain decision show {code}`")
    inputs = json.loads(row.inputs)
    at_grant = json.loads(row.explanation) if row.explanation else {}
    details = at_grant.get("details") or {}
    plan = inputs.get("plan")
    names = _service_names(uow, [i["service"] for i in (plan or {}).get("items", ())]
                           + [x["what"] for x in details.get("lines", ())], lang)
    lines = [{**x, "what": names.get(x["what"], {}).get("name", x["what"])} for x in details.get("lines", ())]
    services = [{"code": i["service"], "quantity": i["quantity"], **names.get(i["service"], {
        "name": i["service"], "unit": "item"})} for i in (plan or {}).get("items", ())]
    commitments = s.execute(select(CommitmentRow, ProposalRow.service, ProviderRow.name)
                            .join(ProposalRow, ProposalRow.id == CommitmentRow.proposal_id)
                            .join(ProviderRow, ProviderRow.id == CommitmentRow.provider_id)
                            .where(CommitmentRow.client_code == code,
                                   CommitmentRow.period >= str(Period.of(row.valid_from)),
                                   CommitmentRow.period <= str(Period.of(row.valid_to)))
                            .order_by(CommitmentRow.id)).all()
    more = _service_names(uow, [c[1] for c in commitments], lang)
    decided = _worker(uow, row.decided_by)
    contact = s.get(WorkerRow, client.worker_id)
    doc = {
        "kind": "decision", "lang": lang, "organiser": _organiser(uow, client.pilot_id),
        "recipient": _recipient(uow, code, reason),
        "decision": {"id": row.id, "date": row.decided_at.date(), "valid_from": row.valid_from,
                     "valid_to": row.valid_to, "rule": row.rule or at_grant.get("rule") or "decision",
                     "revoked_on": row.revoked_on},
        "budget": {"period": at_grant.get("period") or str(Period.of(row.valid_from)),
                   "amount": at_grant.get("amount", row.monthly_amount or 0),
                   "monthly": details.get("monthly", row.monthly_amount if row.monthly_amount is not None
                                          else at_grant.get("amount", 0)),
                   "lines": lines, "explanation": at_grant.get("explanation")},
        "plan": None if plan is None else {"version": plan["version"], "valid_from": plan["valid_from"],
                                           "carer_days_off": plan.get("carer_days_off", False),
                                           "services": services},
        "commitments": [{"id": c.id, "provider": provider, "amount": c.amount, "expires_on": c.expires_on,
                         "status": c.status, "service": more.get(service, {"name": service})["name"]}
                        for c, service, provider in commitments],
        "decided_by": decided,
        "contact": {"name": contact.name, "role": contact.role} if contact else None,
        **_dates(sent_on),
    }
    record(uow, "letter.decision_written", code,
           after={"decision": row.id, "lang": lang, "named": doc["recipient"]["name"] is not None})
    return doc


def commitment_letter(uow: UnitOfWork, commitment_id: int, *, lang: str = "fi",
                      sent_on: dt.date | None = None) -> dict[str, Any]:
    """``avain commitment letter``: the payment commitment for the provider — what, how
    much, until when, the reference the invoice must carry and how to invoice; the client
    appears by code only."""
    check_language(lang)
    s = session(uow)
    c = s.get(CommitmentRow, commitment_id)
    if c is None:
        raise NotFound(f"no commitment {commitment_id}; see `avain commitment list`")
    reach_client(uow, c.client_code, "proposal.read")
    if c.status in ("voided", "expired"):
        raise Refused(f"commitment {c.id} is {c.status}: it is no longer a promise to pay, so no letter is made")
    proposal = s.get(ProposalRow, c.proposal_id)
    provider = s.get(ProviderRow, c.provider_id)
    names = _service_names(uow, [proposal.service], lang)
    doc = {
        "kind": "commitment", "lang": lang, "organiser": _organiser(uow, c.pilot_id),
        "provider": {"id": provider.id, "name": provider.name},
        "commitment": {"id": c.id, "client": c.client_code, "amount": c.amount, "expires_on": c.expires_on,
                       "issued_on": c.issued_at.date(), "status": c.status, "period": c.period,
                       "reference": c.reference, "reference_grouped": group_reference(c.reference),
                       "reference_rf": rf_reference(c.reference),
                       "service": names.get(proposal.service, {"name": proposal.service})["name"],
                       "units": proposal.units, "service_date": proposal.service_date},
        **_dates(sent_on),
    }
    record(uow, "letter.commitment_written", c.client_code,
           after={"commitment": c.id, "provider": provider.id, "lang": lang})
    return doc


def statement_letter(uow: UnitOfWork, code: str, period: Period, *, lang: str | None = None,
                     reason: str = "statement letter", sent_on: dt.date | None = None) -> dict[str, Any]:
    """``avain ledger letter``: a client's month — the budget, what was committed,
    invoiced and paid, carried over or lapsed — and the balance on the day it is made."""
    client = reach_client(uow, code, "ledger.read")
    lang = _lang(client, lang)
    data = statements.statement(uow, code, period=str(period))
    sums = dict.fromkeys(("granted", "carried_in", "committed", "released", "invoiced", "paid",
                          "carried_out", "lapsed", "corrected"), 0)
    for line in data["lines"]:
        what = line["what"]
        if what == "carried over":
            sums["carried_in" if line["effect_on_available"] > 0 else "carried_out"] += line["amount"]
        elif what == "spent":
            sums["invoiced"] += line["amount"]
        elif what in sums:
            sums[what] += line["amount"]
    sums["paid"] = session(uow).execute(
        select(func.coalesce(func.sum(InvoiceRow.amount), 0))
        .join(CommitmentRow, CommitmentRow.id == InvoiceRow.commitment_id)
        .where(InvoiceRow.client_code == code, InvoiceRow.status == "paid",
               CommitmentRow.period == str(period))).scalar_one()
    dates = _dates(sent_on)
    doc = {
        "kind": "statement", "lang": lang, "organiser": _organiser(uow, client.pilot_id),
        "recipient": _recipient(uow, code, reason), "period": str(period),
        "summary": {k: int(v) for k, v in sums.items()},
        "events": [{"date": line["date"], "what": line["what"], "amount": line["amount"],
                    "effect": line["effect_on_available"]} for line in data["lines"]],
        "balance": data["balance"], "balance_on": dt.date.today(), **dates,
    }
    record(uow, "letter.statement_written", code,
           after={"period": str(period), "lang": lang, "named": doc["recipient"]["name"] is not None})
    return doc
