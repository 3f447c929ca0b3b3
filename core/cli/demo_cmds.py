"""``avain demo``"""

from __future__ import annotations

import click

from .. import i18n
from ..i18n import _, ngettext
from .lazy import lazy_module
from .output import emit, json_option, progress_bar, render_table
from .state import state

# read only inside the commands: imported when one of them runs
demo_mod = lazy_module("avain.core.demo")


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
    app = st.app(create=True)
    if reset and not demo_mod.is_empty(app):
        demo_mod.reset(app)
    with progress_bar(_("demo month")) as progress:
        summary = demo_mod.run(app, pilot_ids=list(pilot_ids) or None, seed=seed,
                               clients_per_group=clients, progress=progress)

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
                console.print("  " + _("rule: {rule}").format(rule=rule), markup=False, highlight=False,
                              soft_wrap=True)
            if "rail" in p:
                console.print(_rail_line(p["rail"]), markup=False, highlight=False, soft_wrap=True)
            else:
                w = p["workflow"]
                console.print(_(
                    "{proposed} proposals: {approved} approved, {rejected} rejected, {refused_budget} refused for "
                    "lack of budget, {refused_rules} by the pilot's rules; {cancelled} commitments cancelled; "
                    "{invoiced} invoices recorded, {paid} paid in SEPA batch {batch}").format(
                    **w, batch=w.get("payment_batch", "—")))
            render_table([_("client"), _("granted"), _("spent"), _("cancelled"), _("released"), _("lapsed"),
                          _("reserved"), _("entries")],
                         ["client", "granted", "spent", "corrected", "released", "lapsed", "reserved", "lines"],
                         _("Statements"))(console, p["statements"])
            console.print(_dialogue_line(p["dialogue"]), markup=False, highlight=False, soft_wrap=True)
            ev = p["evaluation"]
            console.print(_("evaluation: {responses} responses (start and end), {entries} time and cost "
                            "entries").format(responses=ev["responses"], entries=ev["time_entries"]),
                          markup=False, highlight=False)
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
        console.print(_("messages encrypted with key {key} in {where}").format(**d["message_key"])
                      + (_("; notifications in {file}").format(file=d["notifications"]) if d["notifications"] else ""),
                      markup=False, highlight=False, soft_wrap=True)
        ikey = d["integrity_key"]
        console.print(_("audit and ledger chains signed with integrity key {key} in {where}").format(
            key=ikey["key"], where=ikey["where"])
            + (_("; checkpoints in {file}").format(file=d["checkpoints"]) if d.get("checkpoints") else ""),
            markup=False, highlight=False, soft_wrap=True)
        console.print(_("keep the key files apart from the database and back them up apart from it: "
                        "see docs/security.md"), markup=False, highlight=False, soft_wrap=True)
        console.print(_("Try: {commands}").format(commands=(
            "avain client list · avain ledger statement CODE · avain audit verify · "
            "avain --as worker:ID message inbox · avain message stats · "
            "avain eval report --all --out report · avain --as evaluator:ID eval export --out export")))

    emit(summary, as_json, render)
    if not summary["ledger"]["ok"]:
        click.get_current_context().exit(1)


def _dialogue_line(d: dict) -> str:
    share = d["share_by_next_working_day"]
    answers = (_("none due") if share is None
               else _("{share} answered by the next working day").format(share=f"{share:.0%}"))
    return (_("dialogue: {messages} messages; {questions} client questions, {answers}").format(
        messages=d["messages"], questions=d["questions"], answers=answers)
        + (_(", median {hours} h").format(hours=d["median_hours_to_answer"])
           if d["median_hours_to_answer"] is not None else ""))


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
