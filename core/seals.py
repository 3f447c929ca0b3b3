"""Keyed seals on the rows whose money facts are not in the ledger: what an invoice asks
for and where a provider is paid.

An invoice's amount and a provider's IBAN and BIC decide what a payment batch pays and to
whom. Each row carries ``mac``, an HMAC with the integrity key (purpose ``invoice`` or
``provider``) over those facts, set whenever avain writes the row (a mapper event, so
every ORM write path is covered). ``avain ledger verify`` recomputes them: an amount or
bank account changed outside avain no longer matches.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import event, select
from sqlmodel import Session

from . import integrity_key
from .models import InvoiceRow, ProviderRow


def _url(connection) -> str:
    return connection.engine.url.render_as_string(hide_password=False)


def invoice_mac(key: integrity_key.IntegrityKey, row) -> str:
    """Over what the invoice asks for and what it is held against; its (provider, number)
    is unique, so a seal cannot be moved to another invoice."""
    return key.mac("invoice", _facts_invoice(row))


def provider_mac(key: integrity_key.IntegrityKey, row) -> str:
    return key.mac("provider", _facts_provider(row))


@event.listens_for(InvoiceRow, "before_insert")
@event.listens_for(InvoiceRow, "before_update")
def _seal_invoice(mapper, connection, target) -> None:
    target.mac = invoice_mac(integrity_key.require(_url(connection)), target)


@event.listens_for(ProviderRow, "before_insert")
@event.listens_for(ProviderRow, "before_update")
def _seal_provider(mapper, connection, target) -> None:
    target.mac = provider_mac(integrity_key.require(_url(connection)), target)


def verify(s: Session, key: integrity_key.IntegrityKey) -> list[str]:
    """Invoices and providers whose sealed facts were changed outside avain."""
    problems: list[str] = []
    invoices: Iterable[InvoiceRow] = s.execute(select(InvoiceRow).order_by(InvoiceRow.id)).scalars()
    for inv in invoices:
        if not key.check("invoice", _facts_invoice(inv), inv.mac or ""):
            problems.append(f"invoice {inv.id} ({inv.provider_id} {inv.number}): its amount or details "
                            "were changed outside avain (the seal does not match)")
    for p in s.execute(select(ProviderRow).order_by(ProviderRow.id)).scalars():
        if not key.check("provider", _facts_provider(p), p.mac or ""):
            problems.append(f"provider {p.id}: its IBAN or BIC was changed outside avain (the seal does not match)")
    return problems


def _facts_invoice(row) -> str:
    return "\0".join(map(str, (row.provider_id, row.number, row.amount, row.reference, row.commitment_id,
                               row.client_code, row.pilot_id)))


def _facts_provider(row) -> str:
    return "\0".join((row.id, row.iban or "", row.bic or ""))
