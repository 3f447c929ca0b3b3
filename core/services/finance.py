"""The finance rail: e-invoices in (Finvoice 3.0), payments out (SEPA credit transfers).

Invoices that cannot be recorded by themselves — no commitment with their reference,
above the commitment, an unknown provider, a number seen with other content — go to a
review queue with the reason. Payments go out only in batches: ``pay batch`` writes the
pain.001 file and marks its invoices *batched*; ``pay confirm`` (the bank accepted it)
pays them; ``pay cancel`` puts them back, so an aborted batch leaves nothing half-paid.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from .. import finvoice, sepa
from ..domain import Money
from ..errors import Conflict, NotFound, Refused, ValidationError
from ..models import CommitmentRow, InvoiceReviewRow, InvoiceRow, PaymentBatchRow, ProviderRow, TransferRow
from ..text import clean_reason
from ..uow import UnitOfWork
from . import pilots, provider_bank, providers, purchases
from .common import actor_pilot, check_actor, in_pilot, reach_pilot, record, session


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- e-invoices in ---------------------------------------------------------------------


def import_invoice_file(uow: UnitOfWork, path: str | Path) -> dict[str, Any]:
    """``avain invoice import FILE``: read a Finvoice file and record each invoice against
    the commitment its reference names; what cannot be recorded goes to the review queue.
    Importing the same file again changes nothing."""
    check_actor(uow, "invoice.record")
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    invoices = finvoice.read(path, source=path.name)
    s = session(uow)
    out = {"file": str(path), "recorded": [], "queued": [], "unchanged": 0}
    for inv in invoices:
        existing = s.execute(select(InvoiceRow).where(
            InvoiceRow.provider_id == inv.seller_id, InvoiceRow.number == inv.number)).scalar_one_or_none()
        if existing is not None and existing.amount == inv.amount.cents and existing.reference == inv.reference:
            out["unchanged"] += 1
            continue
        queued = s.execute(select(InvoiceReviewRow.id).where(
            InvoiceReviewRow.provider_id == inv.seller_id, InvoiceReviewRow.number == inv.number,
            InvoiceReviewRow.amount == inv.amount.cents)).first()
        if queued is not None:
            out["unchanged"] += 1
            continue
        try:
            with s.begin_nested():
                provider = s.get(ProviderRow, inv.seller_id)
                if provider is None:
                    raise NotFound(f"the seller {inv.seller_id} ({inv.seller_name}) is not a registered provider")
                if inv.iban and provider.iban and inv.iban != provider.iban:
                    raise Refused(iban_differs(provider.id, inv.iban, provider.iban))
                data = purchases.record_invoice(uow, provider_id=inv.seller_id, number=inv.number,
                                                amount=inv.amount, reference=inv.reference, on_date=inv.date,
                                                due_date=inv.due_date)
            out["recorded"].append(data["id"])
        except (NotFound, Refused, Conflict, ValidationError) as exc:
            review = InvoiceReviewRow(source=path.name, provider_id=inv.seller_id, provider_name=inv.seller_name,
                                      number=inv.number, amount=inv.amount.cents, reference=inv.reference,
                                      iban=inv.iban, due_date=inv.due_date, reason=str(exc), received_at=_now())
            s.add(review)
            s.flush()
            record(uow, "invoice.queued", "finance", stream="organiser",
                   after={"review": review.id, "provider": inv.seller_id, "number": inv.number,
                          "amount": inv.amount.cents, "reason": str(exc)})
            out["queued"].append({"review": review.id, "number": inv.number, "reason": str(exc)})
    return out


def iban_differs(provider_id: str, invoice_iban: str, provider_iban: str) -> str:
    """Why an e-invoice asking payment to another account waits for finance. The accounts
    are named by their last digits only: the reason also goes to the audit trail; the
    review queue shows finance both in full."""
    return (f"the invoice's IBAN (…{invoice_iban[-4:]}) differs from the IBAN of provider {provider_id} "
            f"on record (…{provider_iban[-4:]}): check the account with the provider; a new account is set "
            f"with `avain provider update {provider_id} --iban IBAN` and approved by a second person")


def review_queue(uow: UnitOfWork, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """``avain invoice queue``: e-invoices waiting for finance, with the reason, the soonest
    due first (those without a due date last)."""
    check_actor(uow, "finance.read")
    q = select(InvoiceReviewRow).order_by(InvoiceReviewRow.id)
    if not include_resolved:
        q = q.where(InvoiceReviewRow.status == "open")
    rows = sorted(session(uow).execute(q).scalars(),
                  key=lambda r: (r.due_date is None, r.due_date or dt.date.max, r.id))
    ibans = dict(session(uow).execute(select(ProviderRow.id, ProviderRow.iban).where(
        ProviderRow.id.in_({r.provider_id for r in rows}))).all()) if rows else {}
    return [{"id": r.id, "source": r.source, "provider": r.provider_id, "provider_name": r.provider_name,
             "number": r.number, "amount": r.amount, "amount_fi": Money(r.amount).fi(),
             "reference": r.reference, "due_date": r.due_date.isoformat() if r.due_date else None,
             "iban": r.iban, "provider_iban": ibans.get(r.provider_id),
             "reason": r.reason, "status": r.status, "resolution": r.resolution}
            for r in rows]


def resolve_review(uow: UnitOfWork, review_id: int, *, note: str) -> dict[str, Any]:
    """Finance closes a queued e-invoice with what was done about it."""
    check_actor(uow, "invoice.record")
    if not note or not note.strip():
        raise ValidationError("--note: say what was done with the invoice")
    clean_reason(note, "--note")
    s = session(uow)
    result = s.execute(update(InvoiceReviewRow).where(
        InvoiceReviewRow.id == review_id, InvoiceReviewRow.status == "open").values(
        status="resolved", resolved_by=str(uow.actor), resolution=note.strip()))
    if result.rowcount != 1:
        raise NotFound(f"no open review item {review_id}")
    record(uow, "invoice.review_resolved", "finance", stream="organiser",
           after={"review": review_id, "note": note.strip()})
    return {"id": review_id, "status": "resolved"}


# --- payments out ----------------------------------------------------------------------


def end_to_end_id(invoice_id: int) -> str:
    """The id a payment of the invoice carries through the bank and back (EndToEndId)."""
    return f"AVAIN-{invoice_id}"


def _debtor(pilot) -> sepa.Debtor:
    pay = pilot.raw.get("payment", {})
    if not pay.get("debtor_iban") or not pay.get("debtor_name"):
        raise Refused(f"pilot {pilot.id} names no account to pay from: set payment.debtor_name and "
                      "payment.debtor_iban in its pilot.toml")
    return sepa.Debtor(pay["debtor_name"], pay["debtor_iban"], pay.get("debtor_bic"))


def create_batch(uow: UnitOfWork, *, pilot_id: str, execution_date: dt.date,
                 version: str = "09") -> dict[str, Any]:
    """``avain pay batch``: every approved invoice of the pilot into one SEPA credit
    transfer (pain.001), validated against the official schema before anything is stored.
    Invoices whose provider has no IBAN, or bank details not approved by a second person
    (see :mod:`.provider_bank`), stay approved and are listed with the fix."""
    check_actor(uow, "invoice.pay")
    if version not in sepa.VERSIONS:
        raise ValidationError(f"--version: one of {', '.join(sepa.VERSIONS)}")
    pilot = pilots.get(uow, pilot_id)
    reach_pilot(uow, pilot.id, "invoice.pay")
    debtor = _debtor(pilot)
    s = session(uow)
    rows = s.execute(select(InvoiceRow).where(InvoiceRow.pilot_id == pilot.id, InvoiceRow.status == "approved")
                     .order_by(InvoiceRow.id)).scalars().all()
    payments, batched, skipped = [], [], []
    unpayable: dict[str, str | None] = {}
    posted = _posted_for(s, rows)
    approved, paid = _approved_in_trail(s, rows), _paid_in_ledger(s, rows)
    for inv in rows:
        if inv.id not in approved or inv.id in paid:
            skipped.append({"invoice": inv.id, "provider": inv.provider_id, "reason": _not_approved_in_avain(
                inv, paid=inv.id in paid)})
            continue
        if posted.get(inv.id) != inv.amount:
            skipped.append({"invoice": inv.id, "provider": inv.provider_id,
                            "reason": _not_as_posted(inv, posted.get(inv.id))})
            continue
        provider = s.get(ProviderRow, inv.provider_id)
        if provider.id not in unpayable:
            unpayable[provider.id] = (providers.missing_iban(provider.id) if not provider.iban
                                      else provider_bank.why_not_payable(uow, provider))
        if unpayable[provider.id]:
            skipped.append({"invoice": inv.id, "provider": provider.id, "reason": unpayable[provider.id]})
            continue
        payments.append(sepa.Payment(end_to_end_id=end_to_end_id(inv.id), creditor_name=provider.name,
                                     creditor_iban=provider.iban, creditor_bic=provider.bic,
                                     amount=Money(inv.amount),
                                     reference=inv.reference, remittance_text=f"Invoice {inv.number}"))
        batched.append(inv)
    if not payments:
        fixes = sorted({s["reason"] for s in skipped})
        raise Refused(f"pilot {pilot.id} has no approved invoice to pay"
                      + (f" ({len(skipped)} waiting for a provider's IBAN or its approval): " + "; ".join(fixes)
                         if skipped else ""), fixes)
    created = _now()
    batch = PaymentBatchRow(pilot_id=pilot.id, message_id="pending", execution_date=execution_date,
                            version=version, status="prepared", count=len(payments),
                            total=sum(p.amount.cents for p in payments), document="", created_by=str(uow.actor),
                            created_at=created)
    s.add(batch)
    s.flush()
    batch.message_id = f"AVAIN-{pilot.code}-{batch.id:06d}"
    document = sepa.build(message_id=batch.message_id, debtor=debtor, payments=payments,
                          execution_date=execution_date, created_at=created, version=version)
    batch.document = document.decode("utf-8")
    s.add(batch)
    for inv in batched:
        purchases.transition(uow, InvoiceRow, inv.id, frm="approved", to={"status": "batched", "batch_id": batch.id})
    data = batch_dict(batch) | {"skipped": skipped}
    record(uow, "payment.batch_prepared", "finance", stream="organiser",
           after={k: v for k, v in data.items() if k != "skipped"})
    return data


#: The audit events that leave an invoice approved and waiting for a batch.
APPROVING = ("invoice.approved", "invoice.payment_rejected")


def _approved_in_trail(s, invoices: list[InvoiceRow]) -> set[int]:
    """The invoices whose approval is in the audit trail (keyed, so not written by hand):
    an invoice set to ``approved`` in the database alone is not among them."""
    from ..models import AuditEventRow

    if not invoices:
        return set()
    found: set[int] = set()
    for after in s.execute(select(AuditEventRow.after).where(
            AuditEventRow.action.in_(APPROVING),
            AuditEventRow.subject.in_({i.client_code for i in invoices}))).scalars():
        value = json.loads(after or "{}").get("invoice")
        if isinstance(value, int):
            found.add(value)
    return found


def _paid_in_ledger(s, invoices: list[InvoiceRow]) -> set[int]:
    """The invoices the ledger has already paid (their ``pay`` transfer exists)."""
    if not invoices:
        return set()
    ids = {f"pay:{i.id}": i.id for i in invoices}
    return {ids[t] for t in s.execute(select(TransferRow.id).where(TransferRow.id.in_(list(ids)))).scalars()}


def _not_approved_in_avain(inv: InvoiceRow, *, paid: bool) -> str:
    if paid:
        return (f"invoice {inv.id} ({inv.provider_id} {inv.number}) was already paid (the ledger holds its "
                "payment): its status was changed outside avain; see `avain ledger verify`")
    return (f"invoice {inv.id} ({inv.provider_id} {inv.number}) has no approval in the audit trail: it was "
            "set approved outside avain; see `avain audit verify`")


def _posted_for(s, invoices: list[InvoiceRow]) -> dict[int, int]:
    """What the ledger posted for each invoice when it was recorded (its ``post`` transfer)."""
    if not invoices:
        return {}
    commitments = dict(s.execute(select(CommitmentRow.id, CommitmentRow.transfer_id).where(
        CommitmentRow.id.in_({i.commitment_id for i in invoices}))).all())
    ids = {f"post:{commitments.get(i.commitment_id)}:{i.provider_id}:{i.number}": i.id for i in invoices}
    amounts = dict(s.execute(select(TransferRow.id, TransferRow.amount).where(TransferRow.id.in_(list(ids)))).all())
    return {invoice: amounts[tid] for tid, invoice in ids.items() if tid in amounts}


def _not_as_posted(inv: InvoiceRow, posted: int | None) -> str:
    ledger_says = f"the {Money(posted).fi()} the ledger posted for it" if posted is not None else \
        "what the ledger posted for it (nothing)"
    return (f"invoice {inv.id}: its amount {Money(inv.amount).fi()} is not {ledger_says}: it was changed "
            "outside avain; see `avain ledger verify`")


def batch_dict(b: PaymentBatchRow) -> dict[str, Any]:
    return {"id": b.id, "pilot": b.pilot_id, "message_id": b.message_id,
            "execution_date": b.execution_date.isoformat(), "version": b.version, "status": b.status,
            "count": b.count, "total": b.total, "total_fi": Money(b.total).fi()}


def batch_document(uow: UnitOfWork, batch_id: int) -> bytes:
    check_actor(uow, "finance.read")
    b = session(uow).get(PaymentBatchRow, batch_id)
    if b is None:
        raise NotFound(f"no payment batch {batch_id}")
    in_pilot(uow, b.pilot_id, "finance.read")
    return b.document.encode("utf-8")


def _batch(uow: UnitOfWork, batch_id: int, status: str) -> PaymentBatchRow:
    s = session(uow)
    found = s.get(PaymentBatchRow, batch_id)
    if found is not None:
        in_pilot(uow, found.pilot_id, "invoice.pay")
    result = s.execute(update(PaymentBatchRow).where(
        PaymentBatchRow.id == batch_id, PaymentBatchRow.status == "prepared").values(
        status=status, resolved_at=_now()).execution_options(synchronize_session="fetch"))
    b = s.get(PaymentBatchRow, batch_id)
    if b is None:
        raise NotFound(f"no payment batch {batch_id}")
    if result.rowcount != 1:
        raise Conflict(f"payment batch {batch_id} is {b.status}, not prepared")
    s.refresh(b)
    return b


def confirm_batch(uow: UnitOfWork, batch_id: int) -> dict[str, Any]:
    """``avain pay confirm``: the bank accepted the batch; every invoice in it not yet paid
    (a bank file may have paid some already) is paid (in the ledger too), all in one
    transaction."""
    check_actor(uow, "invoice.pay")
    b = _batch(uow, batch_id, "confirmed")
    ids = session(uow).execute(select(InvoiceRow.id).where(InvoiceRow.batch_id == b.id,
                                                           InvoiceRow.status == "batched")
                               .order_by(InvoiceRow.id)).scalars().all()
    for invoice_id in ids:
        purchases.pay(uow, invoice_id)
    record(uow, "payment.batch_confirmed", "finance", stream="organiser", after=batch_dict(b))
    return batch_dict(b) | {"invoices": list(ids)}


def cancel_batch(uow: UnitOfWork, batch_id: int) -> dict[str, Any]:
    """``avain pay cancel``: the batch did not go out; its invoices are approved again."""
    check_actor(uow, "invoice.pay")
    s = session(uow)
    found = s.get(PaymentBatchRow, batch_id)
    if found is not None:
        in_pilot(uow, found.pilot_id, "invoice.pay")
    paid = s.execute(select(InvoiceRow.id).where(InvoiceRow.batch_id == batch_id, InvoiceRow.status == "paid")
                     .order_by(InvoiceRow.id)).scalars().all()
    if paid:
        raise Conflict(f"payment batch {batch_id} went out: the bank paid invoice "
                       f"{', '.join(map(str, paid))} of it; it cannot be cancelled")
    b = _batch(uow, batch_id, "cancelled")
    s.execute(update(InvoiceRow).where(InvoiceRow.batch_id == b.id, InvoiceRow.status == "batched")
              .values(status="approved", batch_id=None))
    record(uow, "payment.batch_cancelled", "finance", stream="organiser", after=batch_dict(b))
    return batch_dict(b)


def list_batches(uow: UnitOfWork) -> list[dict[str, Any]]:
    check_actor(uow, "finance.read")
    q = select(PaymentBatchRow).order_by(PaymentBatchRow.id)
    own = actor_pilot(uow)
    if own is not None:
        q = q.where(PaymentBatchRow.pilot_id == own)
    return [batch_dict(b) for b in session(uow).execute(q).scalars()]


