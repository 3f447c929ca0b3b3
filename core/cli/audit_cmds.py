"""``avain audit …``"""

from __future__ import annotations

import click

from ..i18n import _, ngettext
from .lazy import lazy_module
from .output import emit, helsinki_time, json_option, render_table
from .state import state

# read only inside the commands: imported when one of them runs
audit_log = lazy_module("avain.core.services.audit_log")


@click.group()
def audit() -> None:
    """The audit trail and the access log."""


@audit.command("log")
@click.option("--subject", help="Only events about this client code, worker or pilot id.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@json_option
def log_(subject, limit, as_json):
    """Events, oldest first: who did or read what, when and why."""
    data = state().read(audit_log.log, subject=subject, limit=limit)
    shown = [{**event, "at": helsinki_time(event["at"])} for event in data]
    emit(data, as_json, lambda console, _data: render_table(
        [_("at (Helsinki)"), _("actor"), _("action"), _("subject"), _("why")],
        ["at", "actor", "action", "subject", "purpose"], _("Audit log"))(console, shown))


@audit.command()
@json_option
def verify(as_json):
    """Recompute every keyed hash chain and check it against the signed checkpoints; exit 1
    when anything was altered or removed."""
    data = state().read(audit_log.verify)

    def render(console, d):
        if d["ok"]:
            console.print(ngettext("audit trail intact: {n} event", "audit trail intact: {n} events",
                                   d["events"]).format(n=d["events"]))
        for p in d["problems"]:
            console.print(f"[red]{p}[/red]")

    emit(data, as_json, render)
    if not data["ok"]:
        click.get_current_context().exit(1)


@audit.command()
@json_option
def checkpoint(as_json):
    """Write a signed checkpoint of every audit stream and ledger chain to the checkpoint
    file (and the avain_checkpoint_written hook)."""
    data = state().read(audit_log.checkpoint)

    def render(console, d):
        console.print(_("checkpoint of {streams} audit streams and {chains} ledger chains written to {file}")
                      .format(streams=d["streams"], chains=d["chains"], file=d["file"] or _("the hook only")))

    emit(data, as_json, render)


COMMANDS = [audit]
