"""``avain decision …``, ``avain budget …``, ``avain ledger …``"""

from __future__ import annotations

import datetime as dt

import click

from .. import i18n
from ..domain import PERIOD_BATCH, Period
from ..i18n import _, ngettext
from .lazy import lazy_module
from .output import emit, json_option, progress_bar, render_table
from .params import DATE, MONEY, PERIOD, key_values
from .state import state

# read only inside the commands: imported when one of them runs
budget = lazy_module("avain.core.services.budget")
statements = lazy_module("avain.core.services.statements")


@click.group()
def decision() -> None:
    """Decisions granting HB, and how each month's budget is computed."""


@decision.command("grant")
@click.argument("code")
@click.option("--from", "valid_from", type=DATE, required=True, help="First day in force.")
@click.option("--to", "valid_to", type=DATE, required=True, help="Last day in force.")
@click.option("--amount", type=MONEY, help="Monthly budget written on the decision (euros).")
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE",
              help="An input the pilot's budget rules read (e.g. hours=10); repeatable.")
@json_option
def grant(code, valid_from, valid_to, amount, inputs, as_json):
    """Grant HB to a client for a validity range."""
    data = state().run(budget.grant, code, valid_from=valid_from, valid_to=valid_to,
                       monthly_amount=amount, inputs=key_values(inputs, "--input"))
    emit(data, as_json, lambda c, d: c.print(_("granted decision {id}: {client} {start} – {end}").format(
        id=d["id"], client=d["client"], start=i18n.date(d["from"]), end=i18n.date(d["to"]))))


@decision.command("show")
@click.argument("code")
@json_option
def show(code, as_json):
    """A client's decisions."""
    data = state().read(budget.decisions, code)
    emit(data, as_json, render_table(
        [_("id"), _("from"), _("to"), _("monthly"), _("decided by"), _("pilot version"), _("amends"),
         _("replaced on"), _("reason")],
        ["id", "from", "to", "monthly_amount", "decided_by", "pilot_version", "amends", "revoked_on",
         "change_reason"], _("Decisions"), money=["monthly_amount"]))


@decision.command("amend")
@click.argument("decision_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why the decision changes (kept with it and in the audit trail).")
@click.option("--from", "valid_from", type=DATE,
              help="First day the amendment is in force (default: the decision's first day).")
@click.option("--to", "valid_to", type=DATE, help="New last day.")
@click.option("--amount", type=MONEY, help="New monthly budget written on the decision (euros).")
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE",
              help="A changed input of the pilot's budget rules; repeatable.")
@json_option
def amend(decision_id, reason, valid_from, valid_to, amount, inputs, as_json):
    """Amend a decision: a new decision pointing at the old one, which is kept."""
    data = state().run(budget.amend, decision_id, reason=reason, valid_from=valid_from, valid_to=valid_to,
                       monthly_amount=amount, inputs=key_values(inputs, "--input"))
    emit(data, as_json, lambda c, d: c.print(
        _("decision {id} amends decision {amends}: {client} {start} – {end}").format(
            id=d["id"], amends=d["amends"], client=d["client"], start=i18n.date(d["from"]), end=i18n.date(d["to"]))))


@decision.command("end")
@click.argument("decision_id", metavar="ID", type=int)
@click.option("--on", "on", type=DATE, required=True, help="The decision's new last day.")
@click.option("--reason", required=True, help="Why it ends (kept with it and in the audit trail).")
@json_option
def end(decision_id, on, reason, as_json):
    """End a decision early; it is kept with its new last day and the reason."""
    data = state().run(budget.end_decision, decision_id, on=on, reason=reason)
    emit(data, as_json, lambda c, d: c.print(_("decision {id} ({client}) now ends on {date}").format(
        id=d["id"], client=d["client"], date=i18n.date(d["to"]))))


@decision.command("explain")
@click.argument("code")
@click.option("--period", type=PERIOD, help="Month (default: this month).")
@json_option
def explain(code, period, as_json):
    """The budget a month gets under the decision in force, and why."""
    data = state().read(budget.explain, code, period or Period.of(dt.date.today()))

    def render(console, d):
        console.print("[bold]" + _("{client}: budget for {period} is {amount}").format(
            client=d["client"], period=d["period"], amount=i18n.money(d["amount"])) + "[/bold]")
        for part in d["parts"]:
            console.print(_("decision {id} ({days}), rule {rule}:").format(id=part["decision"], days=part["days"],
                                                                           rule=part["rule"]))
            lines = (part["details"] or {}).get("lines")
            if lines:
                for line in lines:
                    console.print(f"  • {line['what']}: {line['detail']}")
            else:
                console.print(f"  • {part['explanation']}")

    emit(data, as_json, render)


@click.group("budget")
def budget_group() -> None:
    """Monthly budget periods: open (allocate), close (lapse or carry over)."""


def _run_with_progress(label: str, run, pilot_id: str, period, batch: int, **kw):
    """A bulk run (open or close a month) as the acting user, with a progress bar on stderr."""
    st = state()
    with progress_bar(label) as update:
        return run(st.app(), st.actor, pilot_id, period, batch=batch, progress=update, **kw)


@budget_group.command("open-period")
@click.option("--pilot", "pilot_id", required=True)
@click.argument("period", type=PERIOD)
@click.option("--batch", default=PERIOD_BATCH, show_default=True, type=click.IntRange(1, 100_000),
              help="Clients per transaction.")
@json_option
def open_period(pilot_id, period, batch, as_json):
    """Allocate every active decision's budget for the month (idempotent, resumable)."""
    data = _run_with_progress(_("allocating {pilot} {period}").format(pilot=pilot_id, period=period),
                              budget.open_period, pilot_id, period, batch)
    emit(data, as_json, lambda c, d: c.print(
        ngettext("opened {period} for {pilot}: {n} budget, {amount} allocated",
                 "opened {period} for {pilot}: {n} budgets, {amount} allocated", d["clients"]).format(
            period=d["period"], pilot=d["pilot"], n=d["clients"], amount=i18n.money(d["amount"]))))


@budget_group.command("close-period")
@click.option("--pilot", "pilot_id", required=True)
@click.argument("period", type=PERIOD)
@click.option("--batch", default=PERIOD_BATCH, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--force", is_flag=True,
              help="Close before the month's last day (refused otherwise); the audit event says it was forced.")
@json_option
def close_period(pilot_id, period, batch, force, as_json):
    """Lapse or carry over the month's unused budgets (the pilot's policy), expire the
    month's undecided proposals, then close it. Refused before the month's last day."""
    data = _run_with_progress(_("closing {pilot} {period}").format(pilot=pilot_id, period=period),
                              budget.close_period, pilot_id, period, batch, force=force)

    def render(console, d):
        closed = (ngettext("closed {period} for {pilot}: {amount} lapsed from {n} budget",
                           "closed {period} for {pilot}: {amount} lapsed from {n} budgets", d["clients"])
                  if d["policy"] == "lapse" else
                  ngettext("closed {period} for {pilot}: {carried} carried over once and {lapsed} carried in "
                           "before lapsed, from {n} budget",
                           "closed {period} for {pilot}: {carried} carried over once and {lapsed} carried in "
                           "before lapsed, from {n} budgets", d["clients"])
                  if d["policy"] == "carry-once" else
                  ngettext("closed {period} for {pilot}: {amount} carried over from {n} budget",
                           "closed {period} for {pilot}: {amount} carried over from {n} budgets", d["clients"]))
        console.print(closed.format(period=d["period"], pilot=d["pilot"], n=d["clients"],
                                    amount=i18n.money(d["amount"]), carried=i18n.money(d["carried"]),
                                    lapsed=i18n.money(d["lapsed"]))
                      + (" " + _("(forced before its end)") if d["forced"] else "") + ", "
                      + ngettext("{n} undecided proposal expired", "{n} undecided proposals expired",
                                 d["proposals_expired"]).format(n=d["proposals_expired"]))

    emit(data, as_json, render)


@budget_group.command("show")
@click.option("--pilot", "pilot_id", required=True)
@json_option
def budget_show(pilot_id, as_json):
    """The pilot's months and what was allocated."""
    data = state().read(budget.periods, pilot_id)
    emit(data, as_json, render_table([_("period"), _("status"), _("budgets"), _("allocated")],
                                     ["period", "status", "clients", "allocated_fi"], _("Periods")))


@click.group()
def ledger() -> None:
    """Balances, statements and the ledger's own check."""


@ledger.command("balance")
@click.argument("code")
@json_option
def balance(code, as_json):
    """What a client's budget holds: granted, spent, reserved, available."""
    data = state().read(statements.balance, code)
    emit(data, as_json, lambda c, d: c.print(_(
        "{client}: credited {credits}, debited {posted} (spent or lapsed), reserved {reserved}, available "
        "{available}").format(client=d["client"], credits=i18n.money(d["credits"]), posted=i18n.money(d["posted"]),
                              reserved=i18n.money(d["reserved"]), available=i18n.money(d["available"]))))


@ledger.command("statement")
@click.argument("code")
@click.option("--period", type=PERIOD, help="Only this month.")
@json_option
def statement(code, period, as_json):
    """Everything that happened to a client's budget, with dates."""
    data = state().read(statements.statement, code, period=str(period) if period else None)

    def render(console, d):
        what = _ledger_words()
        lines = [{**line, "what": what.get(line["what"], line["what"])} for line in d["lines"]]
        render_table([_("date"), _("period"), _("what"), _("amount"), _("note")],
                     ["date", "period", "what", "amount_fi", "memo"],
                     _("Statement {client}").format(client=d["client"]))(console, lines)
        b = d["balance"]
        totals = " · ".join(f"{what.get(k, k)} {i18n.money(v)}" for k, v in d["totals"].items())
        console.print(totals)
        console.print(_("reserved {reserved} · available {available}").format(
            reserved=i18n.money(b["reserved"]), available=i18n.money(b["available"])))

    emit(data, as_json, render)


@ledger.command("verify")
@json_option
def verify(as_json):
    """Recompute every balance from the transfers; exit 1 with the first discrepancy."""
    data = state().read(statements.verify)

    def render(console, d):
        if d["ok"]:
            console.print(_("ledger ok: {transfers}, {accounts}, books balance, no budget overspent").format(
                transfers=ngettext("{n} transfer", "{n} transfers", d["transfers"]).format(n=d["transfers"]),
                accounts=ngettext("{n} account", "{n} accounts", d["accounts"]).format(n=d["accounts"])))
        else:
            console.print(f"[red]{d['problems'][0]}[/red]")
            if len(d["problems"]) > 1:
                console.print(_("(+{n} more; --json lists all)").format(n=len(d["problems"]) - 1))

    emit(data, as_json, render)
    if not data["ok"]:
        click.get_current_context().exit(1)


@ledger.command("correct")
@click.argument("transfer_id", metavar="TRANSFER")
@click.option("--reason", required=True, help="Why (kept with the correction).")
@json_option
def correct(transfer_id, reason, as_json):
    """Reverse a posted transfer with a correcting one (nothing is edited or deleted)."""
    data = state().run(statements.correct, transfer_id, reason=reason)
    emit(data, as_json, lambda c, d: c.print(_("{transfer} reverses {reverses}").format(
        transfer=d["transfer"], reverses=d["reverses"])))


def _ledger_words() -> dict[str, str]:
    """The statement's words for what happened (services.statements.LABELS), in the output's language."""
    return {"granted": _("granted"), "carried over": _("carried over"), "committed": _("committed"),
            "spent": _("spent"), "released": _("released"), "lapsed": _("lapsed"), "corrected": _("corrected")}


COMMANDS = [decision, budget_group, ledger]
