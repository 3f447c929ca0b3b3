"""``avain demo``"""

from __future__ import annotations

import click

from .. import demo as demo_mod
from .. import i18n
from ..i18n import _, ngettext
from .output import emit, json_option, render_table
from .state import state


@click.command()
@click.option("--pilot", "pilot_ids", multiple=True, help="Only this pilot (repeatable); default all.")
@click.option("--reset", is_flag=True, help="Empty a database that holds data first.")
@click.option("--seed", default=2018, show_default=True, help="Seed of the synthetic people.")
@click.option("--clients", default=5, show_default=True, type=click.IntRange(1, 200),
              help="HB clients per client group, and as many controls.")
@json_option
def demo(pilot_ids, reset, seed, clients, as_json):
    """Run a realistic month (January 2018) on synthetic people, in the database the CLI
    opens, and print each client's statement and the ledger check."""
    st = state()
    app = st.app()
    if reset and not demo_mod.is_empty(app):
        demo_mod.reset(app)
    summary = demo_mod.run(app, pilot_ids=list(pilot_ids) or None, seed=seed,
                           clients_per_group=clients)

    def render(console, d):
        for p in d["pilots"]:
            console.rule(f"[bold]{p['pilot']}[/bold] · {d['period']}")
            console.print(
                ngettext("{n} HB client", "{n} HB clients", p["clients"]).format(n=p["clients"]) + " · "
                + ngettext("{n} control", "{n} controls", p["controls"]).format(n=p["controls"]) + " · "
                + ngettext("{amount} allocated to {n} budget", "{amount} allocated to {n} budgets",
                           p["opened"]["clients"]).format(amount=i18n.money(p["opened"]["amount"]),
                                                          n=p["opened"]["clients"]))
            for rule in p["pilot_rules"]:
                console.print(f"  rule: {rule}", markup=False, highlight=False, soft_wrap=True)
            if "rail" in p:
                console.print(_rail_line(p["rail"]), markup=False, highlight=False, soft_wrap=True)
            else:
                w = p["workflow"]
                console.print(f"{w['proposed']} proposals: {w['approved']} approved, {w['rejected']} rejected, "
                              f"{w['refused_budget']} refused for lack of budget, {w['refused_rules']} by the "
                              f"pilot's rules; {w['cancelled']} commitments "
                              f"cancelled; {w['invoiced']} invoices recorded, {w['paid']} paid in SEPA batch "
                              f"{w.get('payment_batch', '—')}")
            render_table([_("client"), _("granted"), _("spent"), _("cancelled"), _("released"), _("lapsed"),
                          _("reserved"), _("entries")],
                         ["client", "granted", "spent", "corrected", "released", "lapsed", "reserved", "lines"],
                         _("Statements"))(console, p["statements"])
            console.print(_dialogue_line(p["dialogue"]), markup=False, highlight=False, soft_wrap=True)
            ev = p["evaluation"]
            console.print(f"evaluation: {ev['responses']} responses (start and end), {ev['time_entries']} time and "
                          "cost entries", markup=False, highlight=False)
            console.print(_("month closed: {amount} lapsed").format(amount=i18n.money(p["closed"]["amount"]))
                          if p["closed"]["policy"] == "lapse" else
                          _("month closed: {amount} carried over").format(amount=i18n.money(p["closed"]["amount"])))
        for s in d.get("skipped", []):
            console.print(f"[yellow]pilot {s['pilot']} not run: it {s['why']}[/yellow]")
        ledger = d["ledger"]
        status = "[green]ok[/green]" if ledger["ok"] else f"[red]{ledger['problems'][0]}[/red]"
        console.print(_("ledger verify: {status}").format(status=status) + " ("
                      + ngettext("{n} transfer", "{n} transfers", ledger["transfers"]).format(n=ledger["transfers"])
                      + ", " + ngettext("{n} account", "{n} accounts", ledger["accounts"]).format(n=ledger["accounts"])
                      + "); " + ngettext("{n} audit event", "{n} audit events", d["audit_events"]).format(
                          n=d["audit_events"]))
        console.print(f"messages encrypted with key {d['message_key']['key']} in {d['message_key']['where']}"
                      + (f"; notifications in {d['notifications']}" if d["notifications"] else ""),
                      markup=False, highlight=False, soft_wrap=True)
        console.print("Try: avain client list · avain ledger statement CODE · avain audit verify · "
                      "avain --as worker:ID message inbox · avain message stats · "
                      "avain eval report --all --out report · avain --as evaluator eval export --out export")

    emit(summary, as_json, render)
    if not summary["ledger"]["ok"]:
        click.get_current_context().exit(1)


def _dialogue_line(d: dict) -> str:
    share = d["share_by_next_working_day"]
    return (f"dialogue: {d['messages']} messages; {d['questions']} client questions, "
            + ("none due" if share is None else f"{share:.0%} answered by the next working day")
            + (f", median {d['median_hours_to_answer']} h" if d["median_hours_to_answer"] is not None else ""))


def _rail_line(r: dict) -> str:
    """A month on a payment rail in one sentence: what providers did, what the rail
    refused, what was imported, and whether the rail and the ledger agree."""
    refused = ", ".join(f"{n} {why}" for why, n in r["refused"].items()) or "none"
    did = (f"{r['charges']} wallet charges ({r['cancelled']} cancelled the same day)" if "charges" in r
           else f"{r['events']} service events")
    imported = ", ".join(f"{n} {k}" for k, n in r["imported"].items())
    agree = ("in step" if not r["differences"] else
             f"{len(r['differences'])} differences (first: {r['differences'][0].get('detail', r['differences'][0])})")
    return (f"{r['rail']} simulator: {did}; refused: {refused}; imported: {imported}; "
            f"{r['rail']} and the ledger: {agree}")


COMMANDS = [demo]
