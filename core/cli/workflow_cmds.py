"""``avain provider …``, ``avain proposal …``, ``avain commitment …``, ``avain invoice …``"""

from __future__ import annotations

import click

from ..services import providers, purchases
from .output import emit, json_option, render_table
from .params import DATE, MONEY
from .state import state


@click.group()
def provider() -> None:
    """Service providers, by business id (Y-tunnus)."""


@provider.command("add")
@click.option("--ytunnus", "business_id", required=True, help="Business id, e.g. 1572860-0.")
@click.option("--name", required=True)
@click.option("--iban", help="Account for payments.")
@json_option
def provider_add(business_id, name, iban, as_json):
    """Register a provider."""
    data = state().run(providers.add, business_id=business_id, name=name, iban=iban)
    emit(data, as_json, lambda c, d: c.print(d["id"]))


@provider.command("list")
@json_option
def provider_list(as_json):
    """Registered providers."""
    data = state().run(providers.list_providers)
    emit(data, as_json, render_table(["Y-tunnus", "name", "IBAN"], ["id", "name", "iban"], "Providers"))


@click.group()
def proposal() -> None:
    """Proposals to use a budget: made by the client, decided by the worker."""


@proposal.command("create")
@click.argument("code")
@click.option("--service", required=True, help="Service code.")
@click.option("--provider", "provider_id", required=True, help="Provider's Y-tunnus.")
@click.option("--amount", type=MONEY, required=True, help="Price in euros, e.g. 45,50.")
@click.option("--date", "service_date", type=DATE, required=True, help="When the service is bought.")
@click.option("--text", help="Free text for the worker.")
@json_option
def proposal_create(code, service, provider_id, amount, service_date, text, as_json):
    """Propose a purchase from a client's budget."""
    data = state().run(purchases.propose, code, service=service, provider_id=provider_id,
                       amount=amount, service_date=service_date, text=text)
    emit(data, as_json, lambda c, d: c.print(f"proposal {d['id']}"))


@proposal.command("approve")
@click.argument("proposal_id", type=int, metavar="ID")
@click.option("--note", help="A word to the client, kept with the decision.")
@json_option
def proposal_approve(proposal_id, note, as_json):
    """Approve; issues a payment commitment that reserves the amount."""
    data = state().run(purchases.approve, proposal_id, note=note)
    emit(data, as_json, lambda c, d: c.print(
        f"proposal {proposal_id} approved: commitment {d['commitment']['id']}, reference "
        f"{d['commitment']['reference']} ({d['commitment']['reference_rf']}), valid until "
        f"{d['commitment']['expires_on']}"))


@proposal.command("reject")
@click.argument("proposal_id", type=int, metavar="ID")
@click.option("--reason", required=True, help="Why: the client is told.")
@json_option
def proposal_reject(proposal_id, reason, as_json):
    """Reject with a reason (the proposal is kept)."""
    data = state().run(purchases.reject, proposal_id, reason=reason)
    emit(data, as_json, lambda c, d: c.print(f"proposal {d['id']} rejected"))


@proposal.command("list")
@click.option("--status", type=click.Choice(["proposed", "approved", "rejected"]))
@click.option("--client", "code")
@json_option
def proposal_list(status, code, as_json):
    """Proposals the acting user may see."""
    data = state().run(purchases.list_proposals, status=status, code=code)
    emit(data, as_json, render_table(
        ["id", "client", "service", "provider", "amount", "date", "status", "reason"],
        ["id", "client", "service", "provider", "amount_fi", "date", "status", "reason"], "Proposals"))


@click.group()
def commitment() -> None:
    """Payment commitments (maksusitoumus)."""


@commitment.command("list")
@click.option("--status", type=click.Choice(["pending", "posted", "voided", "expired"]))
@click.option("--client", "code")
@json_option
def commitment_list(status, code, as_json):
    """Commitments the acting user may see."""
    data = state().run(purchases.list_commitments, status=status, code=code)
    emit(data, as_json, render_table(
        ["id", "client", "provider", "amount", "reference", "status", "expires"],
        ["id", "client", "provider", "amount_fi", "reference", "status", "expires_on"], "Commitments"))


@commitment.command("cancel")
@click.argument("commitment_id", type=int, metavar="ID")
@json_option
def commitment_cancel(commitment_id, as_json):
    """Cancel a pending commitment; its money returns to the budget."""
    data = state().run(purchases.cancel, commitment_id)
    emit(data, as_json, lambda c, d: c.print(f"commitment {d['id']} cancelled"))


@commitment.command("expire")
@click.option("--date", "on_date", type=DATE, help="Expire what was valid only before this day (default today).")
@json_option
def commitment_expire(on_date, as_json):
    """Expire pending commitments past their last valid day."""
    data = state().run(purchases.expire, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(f"{d['expired']} commitments expired"))


@commitment.command("confirm")
@click.argument("commitment_id", type=int, metavar="ID")
@click.option("--date", "on_date", type=DATE, help="Day the service was received (default today).")
@json_option
def commitment_confirm(commitment_id, on_date, as_json):
    """The client confirms the service was received (pilots that use this step)."""
    data = state().run(purchases.confirm_receipt, commitment_id, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(f"commitment {d['id']} received {d['received_on']}"))


@click.group()
def invoice() -> None:
    """Provider invoices: record, approve, pay."""


@invoice.command("record")
@click.option("--provider", "provider_id", required=True)
@click.option("--number", required=True, help="The provider's invoice number.")
@click.option("--amount", type=MONEY, required=True)
@click.option("--ref", "reference", required=True, help="Reference number from the commitment (national or RF).")
@click.option("--date", "on_date", type=DATE, help="Day the invoice arrived (default today).")
@json_option
def invoice_record(provider_id, number, amount, reference, on_date, as_json):
    """Record an arrived invoice; posts its commitment."""
    data = state().run(purchases.record_invoice, provider_id=provider_id, number=number,
                       amount=amount, reference=reference, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(f"invoice {d['id']} recorded"))


@invoice.command("approve")
@click.argument("invoice_id", type=int, metavar="ID")
@json_option
def invoice_approve(invoice_id, as_json):
    """Confirm the invoice is in order (the role the pilot names)."""
    data = state().run(purchases.approve_invoice, invoice_id)
    emit(data, as_json, lambda c, d: c.print(f"invoice {d['id']} approved"))


@invoice.command("pay")
@click.argument("invoice_id", type=int, metavar="ID")
@json_option
def invoice_pay(invoice_id, as_json):
    """Pay an approved invoice to the provider."""
    data = state().run(purchases.pay, invoice_id)
    emit(data, as_json, lambda c, d: c.print(f"invoice {d['id']} paid"))


@invoice.command("list")
@click.option("--status", type=click.Choice(["recorded", "approved", "paid"]))
@json_option
def invoice_list(status, as_json):
    """Invoices the acting user may see."""
    data = state().run(purchases.list_invoices, status=status)
    emit(data, as_json, render_table(
        ["id", "provider", "number", "amount", "client", "status"],
        ["id", "provider", "number", "amount_fi", "client", "status"], "Invoices"))


COMMANDS = [provider, proposal, commitment, invoice]
