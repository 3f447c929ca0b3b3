"""``avain pay import``: the bank's answers close the payment loop.

A pain.002 status report accepts or rejects a payment batch, or single payments in it; a
camt.054 debit notification says a payment was booked. Accepted or booked payments are
paid exactly as ``pay confirm`` pays them; a rejected one returns its invoice to the
payable queue (approved, out of the batch) with the bank's reason code and text, for the
next batch. The whole file is one transaction: a file that names something avain does not
know is refused with the entry, and nothing of it is applied. A file is recorded by its
digest, so reading it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from .. import bankfiles
from ..errors import Conflict, NotFound, ValidationError
from ..models import BankFileRow, InvoiceRow, PaymentBatchRow
from ..uow import UnitOfWork
from . import purchases
from .common import check_actor, record, session
from .finance import batch_dict, end_to_end_id

_END_TO_END = re.compile(r"^AVAIN-([0-9]{1,18})$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def import_bank_file(uow: UnitOfWork, path: str | Path) -> dict[str, Any]:
    """Read one pain.002 or camt.054 file and apply it; see the module's docstring."""
    check_actor(uow, "invoice.pay")
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file") from exc
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    message = bankfiles.read(data, source=path.name)
    s = session(uow)
    seen = s.execute(select(BankFileRow).where(BankFileRow.digest == bankfiles.digest(data))).scalar_one_or_none()
    if seen is not None:
        return {"file": str(path), "kind": seen.kind, "message_id": seen.message_id, "already_applied": True,
                "applied_at": seen.applied_at.isoformat(), **json.loads(seen.summary)}
    other = s.execute(select(BankFileRow).where(BankFileRow.kind == message.kind,
                                                BankFileRow.message_id == message.message_id)).scalar_one_or_none()
    if other is not None:
        raise Conflict(f"{path.name}: GrpHdr/MsgId {message.message_id}: this {message.kind} message was applied "
                       f"already from {other.source}, with other content")
    if isinstance(message, bankfiles.StatusReport):
        summary = _apply_status_report(uow, message, path.name)
    else:
        summary = _apply_debit_notification(uow, message, path.name)
    s.add(BankFileRow(kind=message.kind, message_id=message.message_id, digest=bankfiles.digest(data),
                      source=path.name[:255], summary=json.dumps(summary), applied_by=str(uow.actor),
                      applied_at=_now()))
    s.flush()
    record(uow, "payment.bank_file_applied", "finance", stream="organiser",
           after={"file": path.name, "kind": message.kind, "message_id": message.message_id, **summary})
    return {"file": str(path), "kind": message.kind, "message_id": message.message_id,
            "already_applied": False, **summary}


def _batched(uow: UnitOfWork, batch: PaymentBatchRow) -> dict[str, InvoiceRow]:
    """The batch's invoices still waiting for the bank, by their EndToEndId."""
    rows = session(uow).execute(select(InvoiceRow).where(InvoiceRow.batch_id == batch.id)
                                .order_by(InvoiceRow.id)).scalars()
    return {end_to_end_id(r.id): r for r in rows}


def _decision(status: str | None) -> str | None:
    if status in bankfiles.ACCEPTED:
        return "paid"
    if status == bankfiles.REJECTED:
        return "rejected"
    return None


def _apply_status_report(uow: UnitOfWork, report: bankfiles.StatusReport, source: str) -> dict[str, Any]:
    s = session(uow)
    batch = s.execute(select(PaymentBatchRow).where(
        PaymentBatchRow.message_id == report.original_message_id)).scalar_one_or_none()
    if batch is None:
        raise NotFound(f"{source}: OrgnlGrpInfAndSts/OrgnlMsgId {report.original_message_id}: "
                       "no payment batch avain sent has this message id")
    invoices = _batched(uow, batch)
    problems = [f"{source}: OrgnlPmtInfAndSts ({block}): not a payment information block of batch {batch.id} "
                f"({batch.message_id})" for block in report.block_status if block != batch.message_id]
    problems += [f"{source}: {tx.entry}: no payment of batch {batch.id} has this EndToEndId"
                 for tx in report.transactions if tx.end_to_end_id not in invoices]
    if problems:
        raise ValidationError("\n".join(problems), problems)
    block_status, block_reason = report.block_status.get(batch.message_id, (None, None))
    # The most specific status wins: the transaction's, its block's, the whole file's. A
    # partly accepted file (PART) accepts what it does not reject one by one.
    default = "ACCP" if (block_status or report.group_status) == "PART" else (block_status or report.group_status)
    default_reason = block_reason or report.group_reason
    decided: dict[str, tuple[str, bankfiles.Reason | None]] = {}
    for key in invoices:
        decided[key] = (default, default_reason)
    for tx in report.transactions:
        decided[tx.end_to_end_id] = (tx.status or default, tx.reason or default_reason)
    paid, rejected, unchanged = [], [], []
    for key, inv in invoices.items():
        status, reason = decided[key]
        outcome = _decision(status)
        if inv.status != "batched" or outcome is None:
            unchanged.append(inv.id)
        elif outcome == "paid":
            purchases.pay(uow, inv.id)
            paid.append(inv.id)
        else:
            _return_to_queue(uow, inv, reason)
            rejected.append({"invoice": inv.id, "code": reason.code if reason else None,
                             "reason": reason.text if reason else None})
    _settle_batch(uow, batch)
    return {"batch": batch.id, "paid": paid, "rejected": rejected, "unchanged": unchanged}


def _return_to_queue(uow: UnitOfWork, inv: InvoiceRow, reason: bankfiles.Reason | None) -> None:
    """The bank rejected the invoice's payment: it waits, approved, for the next batch."""
    code, text = (reason.code, reason.text) if reason else (None, None)
    purchases.transition(uow, InvoiceRow, inv.id, frm="batched", to={
        "status": "approved", "batch_id": None, "bank_reason_code": (code or "RJCT")[:35],
        "bank_reason": text or "rejected by the bank without a reason"})
    record(uow, "invoice.payment_rejected", inv.client_code, before={"status": "batched", "batch": inv.batch_id},
           after={"status": "approved", "invoice": inv.id, "code": code, "reason": text})


def _settle_batch(uow: UnitOfWork, batch: PaymentBatchRow) -> None:
    """A prepared batch whose payments all have the bank's answer is confirmed (something
    was paid) or rejected (nothing was)."""
    s = session(uow)
    s.refresh(batch)
    if batch.status != "prepared":
        return
    left = s.execute(select(InvoiceRow.status).where(InvoiceRow.batch_id == batch.id)).scalars().all()
    if "batched" in left:
        return
    status = "confirmed" if left else "rejected"
    s.execute(update(PaymentBatchRow).where(PaymentBatchRow.id == batch.id, PaymentBatchRow.status == "prepared")
              .values(status=status, resolved_at=_now()).execution_options(synchronize_session="fetch"))
    s.refresh(batch)
    record(uow, f"payment.batch_{status}", "finance", stream="organiser", after=batch_dict(batch))


def _apply_debit_notification(uow: UnitOfWork, note: bankfiles.DebitNotification, source: str) -> dict[str, Any]:
    s = session(uow)
    targets: list[tuple[bankfiles.BookedDebit, list[InvoiceRow], PaymentBatchRow]] = []
    problems = []
    for debit in note.debits:
        if debit.end_to_end_id is not None:
            match = _END_TO_END.match(debit.end_to_end_id)
            inv = s.get(InvoiceRow, int(match.group(1))) if match else None
            batch = s.get(PaymentBatchRow, inv.batch_id) if inv is not None and inv.batch_id else None
            if batch is None:
                problems.append(f"{source}: {debit.entry}: no payment avain sent has this EndToEndId")
                continue
            found = [inv]
        else:
            batch = s.execute(select(PaymentBatchRow).where(
                PaymentBatchRow.message_id == debit.payment_info_id)).scalar_one_or_none()
            if batch is None:
                problems.append(f"{source}: {debit.entry}: no payment batch avain sent has this PmtInfId")
                continue
            found = list(_batched(uow, batch).values())
        total = sum(i.amount for i in found)
        if total != debit.amount:
            problems.append(f"{source}: {debit.entry}: the bank booked {debit.amount / 100:.2f} EUR, "
                            f"avain sent {total / 100:.2f} EUR")
            continue
        targets.append((debit, found, batch))
    if problems:
        raise ValidationError("\n".join(problems), problems)
    paid, unchanged, batches = [], [], {}
    for _, found, batch in targets:
        batches[batch.id] = batch
        for inv in found:
            if inv.status == "batched":
                purchases.pay(uow, inv.id)
                paid.append(inv.id)
            else:
                unchanged.append(inv.id)
    for batch in batches.values():
        _settle_batch(uow, batch)
    return {"batches": sorted(batches), "paid": paid, "rejected": [], "unchanged": unchanged,
            "ignored_entries": note.ignored}
