"""``avain provider …``, ``avain proposal …``, ``avain commitment …``, ``avain invoice …``"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import i18n, outfiles
from ..errors import AvainError
from ..i18n import _, ngettext
from .lazy import lazy_module
from .output import dumps, echo, emit, json_option, progress_bar, render_table
from .params import DATE, MONEY, MONEY_ANY, key_values
from .state import state

# read only inside the commands: imported when one of them runs
bank_files = lazy_module("avain.core.services.bank_files")
catalogue = lazy_module("avain.core.services.catalogue")
finance = lazy_module("avain.core.services.finance")
plans = lazy_module("avain.core.services.plans")
provider_bank = lazy_module("avain.core.services.provider_bank")
providers = lazy_module("avain.core.services.providers")
purchases = lazy_module("avain.core.services.purchases")


@click.group()
def provider() -> None:
    """Service providers, by business id (Y-tunnus)."""


@provider.command("add")
@click.option("--ytunnus", "business_id", required=True, help="Business id, e.g. 1572860-0.")
@click.option("--name", required=True)
@click.option("--iban", help="Account for payments.")
@click.option("--einvoice", help="E-invoice address (OVT code or IBAN).")
@click.option("--contact", help="The company's service contact (not published).")
@click.option("--area", "areas", multiple=True, help="Municipality or area served; repeatable.")
@json_option
def provider_add(business_id, name, iban, einvoice, contact, areas, as_json):
    """Register a provider."""
    data = state().run(providers.add, business_id=business_id, name=name, iban=iban,
                       einvoice_address=einvoice, contact=contact, areas=areas)
    emit(data, as_json, lambda c, d: c.print(d["id"]))


def _checks(values: tuple[str, ...]) -> dict[str, tuple[str, dt.date]]:
    out = {}
    for criterion, evidence in key_values(values, "--check").items():
        text, sep, day = evidence.rpartition("@")
        if sep:
            try:
                out[criterion] = (text, dt.date.fromisoformat(day))
            except ValueError:
                raise click.BadParameter(f"{criterion}: {day!r} is not a date", param_hint="--check") from None
        else:
            out[criterion] = (evidence, dt.date.today())
    return out


@provider.command("approve")
@click.argument("business_id", metavar="Y-TUNNUS")
@click.option("--pilot", "pilot_id", required=True)
@click.option("--service", "services", multiple=True, required=True, help="Service code; repeatable.")
@click.option("--check", "checks", multiple=True, metavar="CRITERION=EVIDENCE[@DATE]",
              help="Evidence for each approval criterion (569/2009 §5 and the pilot's own); repeatable.")
@click.option("--from", "valid_from", type=DATE, help="First day (default today).")
@click.option("--to", "valid_to", type=DATE, help="Last day (default: the pilot's approval validity).")
@json_option
def provider_approve(business_id, pilot_id, services, checks, valid_from, valid_to, as_json):
    """Approve a provider for services in a pilot, with the checklist's evidence."""
    data = state().run(providers.approve, business_id, pilot_id=pilot_id, services=list(services),
                       checks=_checks(checks), valid_from=valid_from or dt.date.today(), valid_to=valid_to)
    for warning in data.get("warnings", ()):
        echo(_("warning:") + f" {warning}", err=True)
    emit(data, as_json, lambda c, d: c.print(_("{provider} approved in {pilot} for {services}: {start} – {end}").format(
        provider=d["provider"], pilot=d["pilot"], services=", ".join(d["services"]), start=i18n.date(d["valid_from"]),
        end=i18n.date(d["valid_to"]))))


@provider.command("update")
@click.argument("business_id", metavar="Y-TUNNUS")
@click.option("--name", help="The company's name.")
@click.option("--iban", help="Account for payments (checked).")
@click.option("--bic", help="The account's bank (BIC), for banks that want it in the payment file.")
@click.option("--einvoice", help="E-invoice address (OVT code or IBAN).")
@click.option("--contact", help="The company's service contact (not published).")
@click.option("--area", "areas", multiple=True, help="Municipality or area served; repeatable; replaces the list.")
@json_option
def provider_update(business_id, name, iban, bic, einvoice, contact, areas, as_json):
    """Correct a provider's record; the audit trail keeps the old values."""
    data = state().run(providers.update, business_id, name=name, iban=iban, bic=bic, einvoice_address=einvoice,
                       contact=contact, areas=list(areas) if areas else None)
    def render(c, d):
        c.print(_("{id}: updated {fields}").format(id=d["id"], fields=", ".join(d["changed"])) if d["changed"]
                else _("{id}: nothing changed").format(id=d["id"]))
        if (d.get("bank") or {}).get("status") == "pending":
            c.print("[yellow]" + _("the new bank details are not paid to until a second person approves them: "
                                   "{command}").format(command=f"avain provider approve-bank {d['id']}") + "[/yellow]")

    emit(data, as_json, render)


@provider.command("approve-bank")
@click.argument("business_id", metavar="Y-TUNNUS")
@json_option
def provider_approve_bank(business_id, as_json):
    """Approve a provider's changed bank details, as a second person (named: --as ROLE:ID)."""
    data = state().run(provider_bank.approve, business_id)
    emit(data, as_json, lambda c, d: c.print(_("{provider}: bank details {iban} approved (changed by {who})").format(
        provider=d["provider"], iban=d["iban"], who=d["changed_by"])))


@provider.command("revoke")
@click.argument("business_id", metavar="Y-TUNNUS")
@click.option("--pilot", "pilot_id", required=True)
@click.option("--reason", required=True)
@click.option("--date", "on_date", type=DATE, help="Default today: revocation takes effect at once.")
@json_option
def provider_revoke(business_id, pilot_id, reason, on_date, as_json):
    """Revoke a provider's approval; its open commitments are flagged."""
    data = state().run(providers.revoke, business_id, pilot_id=pilot_id, reason=reason, on_date=on_date)

    def render(c, d):
        c.print(_("{provider}: approval in {pilot} revoked on {date}").format(
            provider=d["provider"], pilot=d["pilot"], date=i18n.date(d["revoked_on"])))
        if d["flagged_commitments"]:
            c.print("[yellow]" + _("open commitments flagged: {ids}").format(
                ids=", ".join(map(str, d["flagged_commitments"]))) + "[/yellow]")

    emit(data, as_json, render)


@provider.command("list")
@click.option("--pilot", "pilot_id", help="Approvals in this pilot only.")
@json_option
def provider_list(pilot_id, as_json):
    """Registered providers and where they are approved today."""
    data = state().read(providers.list_providers, pilot_id=pilot_id)
    emit(data, as_json, render_table(["Y-tunnus", _("name"), _("approved in"), _("services"), _("areas")],
                                     ["id", "name", "approved_in", "services", "areas"], _("Providers")))


@provider.command("show")
@click.argument("business_id", metavar="Y-TUNNUS")
@json_option
def provider_show(business_id, as_json):
    """A provider: details, approvals with their checklists, prices, rating."""
    data = state().read(providers.show, business_id)

    def render(c, d):
        c.print(f"[bold]{d['name']}[/bold] {d['id']} · "
                + _("areas: {areas}").format(areas=", ".join(d["areas"]) or "—"))
        if d["bank"]:
            status = {"in force": _("in force"), "pending": _("waiting for a second approval"),
                      "unapproved": _("not approved")}[d["bank"]["status"]]
            c.print(_("bank: {iban} {bic} ({status})").format(iban=d["iban"], bic=d["bic"] or "", status=status))
        r = d["rating"]
        c.print(_("rating: {average}").format(average=r["average"] if r["average"] is not None else "—") + " ("
                + ngettext("{n} rating", "{n} ratings", r["ratings"]).format(n=r["ratings"]) + ")")
        for a in d["approvals"]:
            state_ = (_("revoked {date}: {reason}").format(date=i18n.date(a["revoked_on"]), reason=a["revoke_reason"])
                      if a["revoked_on"] else _("in force"))
            c.print(_("approval {id} in {pilot}: {start} – {end} ({state}); services {services}").format(
                id=a["id"], pilot=a["pilot"], start=i18n.date(a["valid_from"]), end=i18n.date(a["valid_to"]),
                state=state_, services=", ".join(a["services"])))
            for ev in a["checklist"].values():
                c.print(f"  ✓ {ev['criterion']}: {ev['evidence']} ({ev['checked_on']})")
        render_table([_("service"), _("price"), _("from"), _("to")], ["service", "price", "valid_from", "valid_to"],
                     _("Prices"), money=["price"], whole=["service"])(c, d["prices"])

    emit(data, as_json, render)


@click.group("catalogue")
def catalogue_group() -> None:
    """The service catalogue (palvelutarjotin): prices, search, ratings, the public register."""


@catalogue_group.command("import")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
def catalogue_import(path, as_json):
    """Import services or prices from CSV or JSON: good rows are stored, bad rows named."""
    with progress_bar(_("importing {file}").format(file=Path(path).name)) as progress:
        data = state().run(catalogue.import_file, path, progress=progress)

    def render(c, d):
        c.print(_("{file}: {added} added, {unchanged} unchanged, {rejected} rejected").format(
            file=d["file"], added=d["added"], unchanged=d["unchanged"], rejected=len(d["rejected"])))
        for r in d["rejected"]:
            c.print(f"  {d['file']}: {r['where']}: {r['reason']}")

    emit(data, as_json, render)
    if data["rejected"]:
        click.get_current_context().exit(1)


@catalogue_group.command("export")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Folder for catalogue.json and catalogue.csv.")
@click.option("--date", "on_date", type=DATE, help="Approvals and prices in force on this day (default today).")
@json_option
def catalogue_export(out, on_date, as_json):
    """Publish approved providers with their services and prices (no personal data)."""
    data = state().read(catalogue.export, on_date=on_date)
    if out:
        written = catalogue.write_export(data, Path(out))
        if not as_json:
            click.echo(ngettext("wrote {files} ({n} offer)", "wrote {files} ({n} offers)", len(data["offers"])).format(
                files=", ".join(written), n=len(data["offers"])))
            return
    if as_json or not out:
        click.echo(dumps(data))


@catalogue_group.command("search")
@click.option("--service", help="Service code.")
@click.option("--area", help="Area served.")
@click.option("--min", "min_price", type=MONEY_ANY, help="Lowest price (euros).")
@click.option("--max", "max_price", type=MONEY_ANY, help="Highest price (euros).")
@click.option("--pilot", "pilot_id", help="Approved in this pilot.")
@click.option("--date", "on_date", type=DATE, help="Default today.")
@click.option("--sort", type=click.Choice(["price", "rating"]), default="price", show_default=True)
@json_option
def catalogue_search(service, area, min_price, max_price, pilot_id, on_date, sort, as_json):
    """Find and compare approved providers by service, area and price."""
    data = state().read(catalogue.search, service=service, area=area, min_price=min_price,
                       max_price=max_price, on_date=on_date, pilot_id=pilot_id, sort=sort)
    emit(data, as_json, render_table(
        [_("service"), _("provider"), _("name"), _("price"), _("per"), _("rating"), _("ratings"), _("areas")],
        ["service_fi", "provider", "provider_name", "price_fi", "unit", "rating", "ratings", "areas"], _("Offers")))


@catalogue_group.command("rate")
@click.argument("invoice_id", type=int, metavar="INVOICE")
@click.option("--stars", type=int, required=True, help="1–5.")
@click.option("--text", help="A few words for other clients.")
@json_option
def catalogue_rate(invoice_id, stars, text, as_json):
    """Rate the provider of a paid purchase (the client or their HB assistant)."""
    data = state().run(catalogue.rate, invoice_id, stars=stars, text=text)
    emit(data, as_json, lambda c, d: c.print(ngettext(
        "{provider}: {average} average from {n} rating", "{provider}: {average} average from {n} ratings",
        d["ratings"]).format(provider=d["provider"], average=d["average"], n=d["ratings"])))


@catalogue_group.command("services")
@json_option
def catalogue_services(as_json):
    """Every service of the catalogue."""
    data = state().read(catalogue.list_services)
    emit(data, as_json, render_table([_("code"), "nimi", "namn", _("name"), _("category"), _("unit"), _("note")],
                                     ["code", "name_fi", "name_sv", "name_en", "category", "unit", "note"],
                                     _("Services"), whole=["code"]))


@click.group()
def plan() -> None:
    """Care and service plans: services and monthly quantities."""


@plan.command("set")
@click.argument("code")
@click.option("--from", "valid_from", type=DATE, required=True, help="In force from.")
@click.option("--item", "items", multiple=True, metavar="SERVICE=QUANTITY",
              help="A planned service and its monthly quantity; repeatable.")
@click.option("--carer-days-off", is_flag=True, help="The plan includes the carer's statutory days off.")
@click.option("--round-the-clock", is_flag=True, help="The care is round-the-clock (3 days off a month).")
@json_option
def plan_set(code, valid_from, items, carer_days_off, round_the_clock, as_json):
    """Record a new version of a client's plan."""
    parsed = {}
    for service, qty in key_values(items, "--item").items():
        try:
            parsed[service] = int(qty)
        except ValueError:
            raise click.BadParameter(f"{service}={qty}: the quantity is a whole number", param_hint="--item") from None
    data = state().run(plans.set_plan, code, valid_from=valid_from, items=parsed,
                       carer_days_off=carer_days_off, round_the_clock=round_the_clock)
    emit(data, as_json, lambda c, d: c.print(_("{client}: plan version {version} from {date}").format(
        client=d["client"], version=d["version"], date=i18n.date(d["valid_from"]))))


@plan.command("show")
@click.argument("code")
@json_option
def plan_show(code, as_json):
    """Every version of a client's plan."""
    data = state().read(plans.show, code)
    emit(data, as_json, render_table([_("version"), _("from"), _("items"), _("carer's days off"), _("round-the-clock")],
                                     ["version", "valid_from", "items", "carer_days_off", "round_the_clock"],
                                     _("Plan {code}").format(code=code)))


@click.group()
def proposal() -> None:
    """Proposals to use a budget: made by the client, decided by the worker."""


@proposal.command("create")
@click.argument("code")
@click.option("--service", required=True, help="Service code.")
@click.option("--provider", "provider_id", required=True, help="Provider's Y-tunnus.")
@click.option("--amount", type=MONEY, required=True, help="Price in euros, e.g. 45,50.")
@click.option("--date", "service_date", type=DATE, required=True, help="When the service is bought.")
@click.option("--units", type=int, default=1, show_default=True, help="How many units (hours, visits…).")
@click.option("--text", help="Free text for the worker.")
@json_option
def proposal_create(code, service, provider_id, amount, service_date, units, text, as_json):
    """Propose a purchase from a client's budget."""
    data = state().run(purchases.propose, code, service=service, provider_id=provider_id,
                       amount=amount, service_date=service_date, text=text, units=units)
    emit(data, as_json, lambda c, d: c.print(_("proposal {id}").format(id=d["id"])))


@proposal.command("approve")
@click.argument("proposal_id", type=int, metavar="ID")
@click.option("--note", help="A word to the client, kept with the decision.")
@click.option("--date", "on_date", type=DATE,
              help="Day of the approval, to replay a past month (default today; not in a closed month).")
@json_option
def proposal_approve(proposal_id, note, on_date, as_json):
    """Approve; issues a payment commitment that reserves the amount."""
    data = state().run(purchases.approve, proposal_id, note=note, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(_(
        "proposal {id} approved: commitment {commitment}, reference {reference} ({reference_rf}), valid until "
        "{expires}").format(id=proposal_id, commitment=d["commitment"]["id"], reference=d["commitment"]["reference"],
                            reference_rf=d["commitment"]["reference_rf"],
                            expires=i18n.date(d["commitment"]["expires_on"]))))


@proposal.command("reject")
@click.argument("proposal_id", type=int, metavar="ID")
@click.option("--reason", required=True, help="Why: the client is told.")
@json_option
def proposal_reject(proposal_id, reason, as_json):
    """Reject with a reason (the proposal is kept)."""
    data = state().run(purchases.reject, proposal_id, reason=reason)
    emit(data, as_json, lambda c, d: c.print(_("proposal {id} rejected").format(id=d["id"])))


@proposal.command("list")
@click.option("--status", type=click.Choice(["proposed", "approved", "rejected"]))
@click.option("--client", "code")
@json_option
def proposal_list(status, code, as_json):
    """Proposals the acting user may see."""
    data = state().read(purchases.list_proposals, status=status, code=code)
    emit(data, as_json, render_table(
        [_("id"), _("client"), _("service"), _("provider"), _("amount"), _("date"), _("status"), _("reason")],
        ["id", "client", "service", "provider", "amount_fi", "date", "status", "reason"], _("Proposals")))


@click.group()
def commitment() -> None:
    """Payment commitments (maksusitoumus)."""


@commitment.command("list")
@click.option("--status", type=click.Choice(["pending", "posted", "closed", "voided", "expired"]))
@click.option("--client", "code")
@json_option
def commitment_list(status, code, as_json):
    """Commitments the acting user may see, with what is invoiced of each so far."""
    data = state().read(purchases.list_commitments, status=status, code=code)
    emit(data, as_json, render_table(
        [_("id"), _("client"), _("provider"), _("amount"), _("invoiced"), _("reference"), _("status"), _("expires"),
         _("flag")],
        ["id", "client", "provider", "amount_fi", "posted_fi", "reference", "status", "expires_on", "flag"],
        _("Commitments")))


@commitment.command("cancel")
@click.argument("commitment_id", type=int, metavar="ID")
@json_option
def commitment_cancel(commitment_id, as_json):
    """Cancel a pending commitment; its money returns to the budget."""
    data = state().run(purchases.cancel, commitment_id)
    emit(data, as_json, lambda c, d: c.print(_("commitment {id} cancelled").format(id=d["id"])))


@commitment.command("close")
@click.argument("commitment_id", type=int, metavar="ID")
@click.option("--note", help="Why it is closed (kept in the audit log).")
@json_option
def commitment_close(commitment_id, note, as_json):
    """The provider bills no more: release what is not invoiced back to the budget."""
    data = state().run(purchases.close, commitment_id, note=note)
    emit(data, as_json, lambda c, d: c.print(
        _("commitment {id} closed: {invoiced} invoiced, {released} back to the budget").format(
            id=d["id"], invoiced=i18n.money(d["posted"]), released=i18n.money(d["released"]))))


@commitment.command("expire")
@click.option("--date", "on_date", type=DATE, help="Expire what was valid only before this day (default today).")
@json_option
def commitment_expire(on_date, as_json):
    """Expire pending commitments past their last valid day."""
    data = state().run(purchases.expire, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(ngettext("{n} commitment expired", "{n} commitments expired",
                                                      d["expired"]).format(n=d["expired"])))


@commitment.command("confirm")
@click.argument("commitment_id", type=int, metavar="ID")
@click.option("--date", "on_date", type=DATE,
              help="Day the service was received (default today; not in a closed month).")
@json_option
def commitment_confirm(commitment_id, on_date, as_json):
    """The client confirms the service was received (pilots that use this step)."""
    data = state().run(purchases.confirm_receipt, commitment_id, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(_("commitment {id} received {date}").format(
        id=d["id"], date=i18n.date(d["received_on"]))))


@click.group()
def invoice() -> None:
    """Provider invoices: record, approve, pay."""


@invoice.command("record")
@click.option("--provider", "provider_id", required=True)
@click.option("--number", required=True, help="The provider's invoice number.")
@click.option("--amount", type=MONEY, required=True)
@click.option("--ref", "reference", required=True, help="Reference number from the commitment (national or RF).")
@click.option("--date", "on_date", type=DATE,
              help="Day the invoice arrived; what it posts is dated by it (default today; not in a closed month).")
@click.option("--due", "due_date", type=DATE, help="The invoice's due date.")
@click.option("--final", is_flag=True, help="The provider's last invoice for this commitment: close it and "
              "release the rest.")
@json_option
def invoice_record(provider_id, number, amount, reference, on_date, due_date, final, as_json):
    """Record an arrived invoice; posts it against its commitment (one of several, up to the
    commitment's amount)."""
    data = state().run(purchases.record_invoice, provider_id=provider_id, number=number,
                       amount=amount, reference=reference, on_date=on_date, due_date=due_date, final=final)
    emit(data, as_json, lambda c, d: c.print(
        _("invoice {id} recorded; commitment {commitment} {status}, {left} still open").format(
            id=d["id"], commitment=d["commitment"], status=d["commitment_status"],
            left=i18n.money(d["commitment_left"])) if d["commitment_left"] else
        _("invoice {id} recorded; commitment {commitment} {status}").format(
            id=d["id"], commitment=d["commitment"], status=d["commitment_status"])))


@invoice.command("approve")
@click.argument("invoice_id", type=int, metavar="ID")
@json_option
def invoice_approve(invoice_id, as_json):
    """Confirm the invoice is in order (the role the pilot names)."""
    data = state().run(purchases.approve_invoice, invoice_id)
    emit(data, as_json, lambda c, d: c.print(_("invoice {id} approved").format(id=d["id"])))


def _import_files(service, paths, label: str) -> tuple[list[dict], list[dict]]:
    """Each file in its own transaction: one refused file does not stop the others."""
    st = state()
    results, failed = [], []
    with progress_bar(label) as progress:
        for done, path in enumerate(paths):
            progress(done, len(paths))
            try:
                results.append(st.run(service, path))
            except AvainError as exc:
                failed.append({"file": path, "errors": getattr(exc, "errors", None) or [str(exc)]})
        progress(len(paths), len(paths))
    return results, failed


def _print_failures(failed: list[dict]) -> None:
    """A refused file's errors on stderr, each naming the file."""
    for f in failed:
        for e in f["errors"]:
            echo(e if e.startswith(Path(f["file"]).name) else f"{f['file']}: {e}", err=True)


@invoice.command("import")
@click.argument("paths", metavar="FILE…", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
def invoice_import(paths, as_json):
    """Read Finvoice 3.0 e-invoices; each is recorded against its commitment by reference,
    or queued for review with the reason."""
    results, failed = _import_files(finance.import_invoice_file, paths, _("importing e-invoices"))

    def render(c, d):
        for r in d["imported"]:
            c.print(_("{file}: {recorded} recorded, {queued} queued for review, {unchanged} already known").format(
                file=r["file"], recorded=len(r["recorded"]), queued=len(r["queued"]), unchanged=r["unchanged"]))
            for q in r["queued"]:
                c.print("  " + _("invoice {number}: {reason}").format(number=q["number"], reason=q["reason"]))
        _print_failures(d["failed"])

    emit({"imported": results, "failed": failed}, as_json, render)
    if failed:
        click.get_current_context().exit(1)


@invoice.command("queue")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved items.")
@json_option
def invoice_queue(include_resolved, as_json):
    """E-invoices waiting for finance's review, with the reason."""
    data = state().read(finance.review_queue, include_resolved=include_resolved)
    emit(data, as_json, render_table([_("id"), _("file"), _("provider"), _("number"), _("amount"), _("due"),
                                      _("reason"), _("status")],
                                     ["id", "source", "provider", "number", "amount_fi", "due_date", "reason",
                                      "status"], _("Review queue")))


@invoice.command("resolve")
@click.argument("review_id", type=int, metavar="ID")
@click.option("--note", required=True, help="What was done with it.")
@json_option
def invoice_resolve(review_id, note, as_json):
    """Close a queued e-invoice."""
    data = state().run(finance.resolve_review, review_id, note=note)
    emit(data, as_json, lambda c, d: c.print(_("review item {id} resolved").format(id=d["id"])))


@invoice.command("list")
@click.option("--status", type=click.Choice(["recorded", "approved", "batched", "paid"]))
@json_option
def invoice_list(status, as_json):
    """Invoices the acting user may see, the soonest due first; a payment the bank
    rejected shows its reason."""
    data = state().read(purchases.list_invoices, status=status)
    rows = [d | {"bank": " ".join(filter(None, (d["bank_reason_code"], d["bank_reason"])))} for d in data]
    emit(data, as_json, lambda c, _data: render_table(
        [_("id"), _("provider"), _("number"), _("amount"), _("due"), _("client"), _("status"), _("bank")],
        ["id", "provider", "number", "amount_fi", "due_date", "client", "status", "bank"], _("Invoices"))(c, rows))


@click.group()
def pay() -> None:
    """Payments to providers: SEPA credit-transfer batches (pain.001)."""


@pay.command("batch")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id: its payment.debtor account pays.")
@click.option("--date", "execution_date", type=DATE, required=True, help="Requested execution date.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write the pain.001 file here.")
@click.option("--version", type=click.Choice(["09", "03"]), default="09", show_default=True,
              help="pain.001.001.09, or .03 for older banks.")
@json_option
def pay_batch(pilot_id, execution_date, out, version, as_json):
    """Collect approved invoices into a SEPA batch; they are paid when it is confirmed."""
    st = state()
    if out:  # before the batch is made: a destination avain will not write is refused first
        outfiles.refuse_symlink(Path(out))
    data = st.run(finance.create_batch, pilot_id=pilot_id, execution_date=execution_date, version=version)
    if out:
        outfiles.write_file(Path(out), st.read(finance.batch_document, data["id"]))
        data["file"] = out

    def render(c, d):
        c.print(ngettext("batch {id} ({message_id}): {n} payment, {total}, execution {date}",
                         "batch {id} ({message_id}): {n} payments, {total}, execution {date}", d["count"]).format(
            id=d["id"], message_id=d["message_id"], n=d["count"], total=i18n.money(d["total"]),
            date=i18n.date(d["execution_date"])) + (f" → {d['file']}" if d.get("file") else ""))
        for s in d["skipped"]:
            c.print("[yellow]" + _("invoice {id} not included: {reason}").format(id=s["invoice"], reason=s["reason"])
                    + "[/yellow]")
        c.print(_("after the bank accepts it: {command}").format(command=f"avain pay confirm {d['id']}"))

    emit(data, as_json, render)


@pay.command("confirm")
@click.argument("batch_id", type=int, metavar="BATCH")
@json_option
def pay_confirm(batch_id, as_json):
    """The bank accepted the batch: pay its invoices."""
    data = state().run(finance.confirm_batch, batch_id)
    emit(data, as_json, lambda c, d: c.print(ngettext(
        "batch {id} confirmed: {n} invoice paid, {total}", "batch {id} confirmed: {n} invoices paid, {total}",
        d["count"]).format(id=d["id"], n=d["count"], total=i18n.money(d["total"]))))


@pay.command("import")
@click.argument("paths", metavar="FILE…", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
def pay_import(paths, as_json):
    """Read the bank's answers (pain.002 status reports, camt.054 debit notifications):
    accepted or booked payments are paid, rejected ones wait for the next batch with the
    bank's reason. Each file is applied whole or not at all, and once."""
    results, failed = _import_files(bank_files.import_bank_file, paths, _("reading bank files"))

    def render(c, d):
        for r in d["imported"]:
            if r["already_applied"]:
                c.print(_("{file}: {kind} {message} already applied on {date}; nothing changed").format(
                    file=r["file"], kind=r["kind"], message=r["message_id"], date=i18n.date(r["applied_at"][:10])))
                continue
            c.print(_("{file}: {kind} {message}: {paid} paid, {rejected} rejected, {unchanged} unchanged").format(
                file=r["file"], kind=r["kind"], message=r["message_id"], paid=len(r["paid"]),
                rejected=len(r["rejected"]), unchanged=len(r["unchanged"])))
            for x in r["rejected"]:
                c.print("  " + _("invoice {id} back in the payable queue: {reason}").format(
                    id=x["invoice"], reason=f"{x['code'] or ''} {x['reason'] or ''}".strip()))
        _print_failures(d["failed"])

    emit({"imported": results, "failed": failed}, as_json, render)
    if failed:
        click.get_current_context().exit(1)


@pay.command("cancel")
@click.argument("batch_id", type=int, metavar="BATCH")
@json_option
def pay_cancel(batch_id, as_json):
    """The batch did not go out: its invoices wait for the next batch."""
    data = state().run(finance.cancel_batch, batch_id)
    emit(data, as_json, lambda c, d: c.print(_("batch {id} cancelled").format(id=d["id"])))


@pay.command("list")
@json_option
def pay_list(as_json):
    """Payment batches."""
    data = state().read(finance.list_batches)
    emit(data, as_json, render_table([_("id"), _("pilot"), _("message"), _("date"), _("payments"), _("total"),
                                      _("status")],
                                     ["id", "pilot", "message_id", "execution_date", "count", "total_fi", "status"],
                                     _("Payment batches")))


COMMANDS = [provider, catalogue_group, plan, proposal, commitment, invoice, pay]
