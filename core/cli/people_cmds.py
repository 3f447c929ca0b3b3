"""``avain worker …`` and ``avain client …``"""

from __future__ import annotations

import sys

import click

from .. import i18n
from ..domain import ROLES
from ..i18n import LANGUAGES, _, ngettext
from .lazy import lazy_module
from .output import emit, json_option, render_mapping, render_table
from .params import key_values
from .state import state

# read only inside the commands: imported when one of them runs
people = lazy_module("avain.core.services.people")

WORKER_ROLES = [r for r in ROLES if r != "client"]


@click.group()
def worker() -> None:
    """Personal workers, supervisors, finance, evaluators, HB assistants, administrators."""


@worker.command("add")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id.")
@click.option("--code", required=True, help="Worker code, unique in the pilot (e.g. 01).")
@click.option("--name", required=True, help="The worker's name.")
@click.option("--role", type=click.Choice(WORKER_ROLES), default="worker", show_default=True)
@click.option("--supervisor", "supervisor_id", help="Worker id of the supervisor.")
@json_option
def worker_add(pilot_id, code, name, role, supervisor_id, as_json):
    """Add a worker; prints the worker id (``<pilot>-<code>``) used with --as and --worker."""
    data = state().run(people.add_worker, pilot_id=pilot_id, code=code, name=name, role=role,
                       supervisor_id=supervisor_id)
    emit(data, as_json, lambda c, d: c.print(d["id"]))


@worker.command("list")
@click.option("--pilot", "pilot_id", help="Only this pilot.")
@json_option
def worker_list(pilot_id, as_json):
    """Workers, by pilot and code."""
    data = state().read(people.list_workers, pilot_id=pilot_id)
    emit(data, as_json, render_table([_("id"), _("pilot"), _("code"), _("name"), _("role"), _("supervisor"),
                                      _("status")],
                                     ["id", "pilot", "code", "name", "role", "supervisor", "status"],
                                     _("Workers")))


@worker.command("deactivate")
@click.argument("worker_id", metavar="ID")
@click.option("--reassign-to", "reassign_to", metavar="WORKER",
              help="Active worker of the same pilot who takes over the clients (needed while there are any).")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), help="Default today.")
@json_option
def worker_deactivate(worker_id, reassign_to, on_date, as_json):
    """Deactivate a worker: their clients move to another worker; they can no longer act."""
    data = state().run(people.deactivate_worker, worker_id, reassign_to=reassign_to,
                       on_date=on_date.date() if on_date else None)
    emit(data, as_json, lambda c, d: c.print(
        ngettext("{id} deactivated; {n} client reassigned to {worker}",
                 "{id} deactivated; {n} clients reassigned to {worker}", d["clients"]).format(
            id=d["id"], n=d["clients"], worker=d["reassigned_to"]) if d["reassigned_to"] else
        _("{id} deactivated").format(id=d["id"])))


@click.group()
def client() -> None:
    """Clients: enrolment, lookup, end of the client relationship."""


HETU_HELP = ("Henkilötunnus (never printed or logged); '-' reads it from standard input, and "
             "left out on a terminal it is asked for with hidden input.")


def read_hetu(value: str | None) -> str:
    """The henkilötunnus from ``--hetu``, standard input (``-``) or a hidden prompt, so it
    need not stand in the shell history or in ``ps``."""
    if value == "-":
        line = sys.stdin.readline().strip()
        if not line:
            raise click.BadParameter(_("standard input held no henkilötunnus"), param_hint="--hetu")
        return line
    if value is not None:
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        return click.prompt(_("Henkilötunnus"), hide_input=True, err=True).strip()
    raise click.UsageError(_("give --hetu - to read the henkilötunnus from standard input "
                             "(or run on a terminal to be asked for it)"))


@client.command("enroll")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id.")
@click.option("--hetu", help=HETU_HELP)
@click.option("--name", required=True, help="The client's name (never printed or logged).")
@click.option("--worker", "worker_id", required=True, help="Worker id of the personal worker.")
@click.option("--group", "group_id", help="Client group id or code (needed when several).")
@click.option("--control", is_flag=True, help="Enroll as a control (verrokki), without a budget.")
@click.option("--assess", multiple=True, metavar="KEY=VALUE",
              help="A need-assessment fact the pilot's eligibility rules read; repeatable.")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]),
              help="Enrolment date (default today).")
@click.option("--phone", help="Phone number, for payment rails that need it (never printed or logged).")
@click.option("--consent", "consents", multiple=True, type=click.Choice(["evaluation", "dialogue"]),
              help="A consent the client gives on joining (repeatable): evaluation, dialogue.")
@click.option("--lang", "language", type=click.Choice(LANGUAGES), default="fi", show_default=True,
              help="The client's language: the dialogue's system messages and letters are written in it.")
@json_option
def client_enroll(pilot_id, hetu, name, worker_id, group_id, control, assess, on_date, phone, consents, language,
                  as_json):
    """Enroll a client; prints the pseudonymous client code."""
    data = state().run(people.enroll, pilot_id=pilot_id, hetu=read_hetu(hetu), name=name,
                       worker_id=worker_id, group_id=group_id, control=control,
                       assessment=key_values(assess, "--assess"),
                       on_date=on_date.date() if on_date else None, phone=phone, consents=consents,
                       language=language)
    emit(data, as_json, lambda c, d: c.print(d["code"]))


@client.command("show")
@click.argument("code")
@click.option("--reason", default="client show", show_default=True,
              help="Why the identity is looked at (written to the access log).")
@json_option
def client_show(code, reason, as_json):
    """A client's record; name and henkilötunnus only for roles that may see them."""
    data = state().run(people.show, code, reason=reason)

    def render(console, d):
        shown = dict(d)
        if "assessment" in d:  # an evaluator's view holds the export's record only
            a = d["assessment"]
            shown["assessment"] = _("none") if a is None else _(
                "version {version} of {date} by {by}: {facts}").format(
                version=a["version"], date=i18n.date(a["assessed_on"]), by=a["assessed_by"],
                facts=", ".join(f"{k}={v}" for k, v in a["facts"].items()))
        render_mapping(_("Client {code}").format(code=code), {
            "code": _("code"), "pilot": _("pilot"), "group": _("group"), "worker": _("worker"),
            "assistant": _("assistant"), "control": _("control"), "enrolled_on": _("enrolled"),
            "ended_on": _("ended"), "language": _("language"), "name": _("name"), "hetu": _("henkilötunnus"),
            "phone": _("phone"), "assessment": _("need assessment"),
            "assessments": _("assessment versions")})(console, shown)

    emit(data, as_json, render)


@client.command("find")
@click.option("--hetu", help=HETU_HELP.replace("never printed or logged", "never logged") + " Or:")
@click.option("--name", "name_part", metavar="PART", help="Part of the name (at least two letters).")
@click.option("--reason", required=True, help="Why the identity is looked at (written to the access log).")
@json_option
def client_find(hetu, name_part, reason, as_json):
    """Find clients by henkilötunnus or part of the name (roles that may identify)."""
    if name_part is not None and hetu is not None:
        raise click.UsageError(_("give --hetu or --name, not both"))
    data = state().run(people.find, hetu=read_hetu(hetu) if name_part is None else None, name=name_part,
                       reason=reason)
    emit(data, as_json, render_table([_("code"), _("pilot"), _("group"), _("worker"), _("name"), _("ended")],
                                     ["code", "pilot", "group", "worker", "name", "ended_on"], _("Clients")))


@client.command("assess")
@click.argument("code")
@click.option("--assess", "facts", multiple=True, required=True, metavar="KEY=VALUE",
              help="A need-assessment fact; repeatable. The new version replaces the whole assessment.")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), help="Day of the assessment (default today).")
@json_option
def client_assess(code, facts, on_date, as_json):
    """Record a new version of a client's need assessment."""
    data = state().run(people.assess, code, key_values(facts, "--assess"),
                       on_date=on_date.date() if on_date else None)

    def render(console, d):
        console.print(_("{code}: need assessment version {version} of {date} recorded").format(
            code=d["code"], version=d["version"], date=i18n.date(d["assessed_on"])))
        for reason in d["eligibility"]:
            console.print("[yellow]" + _("note:") + f"[/yellow] {reason}")

    emit(data, as_json, render)


@client.command("list")
@click.option("--pilot", "pilot_id", help="Only this pilot.")
@click.option("--all", "include_ended", is_flag=True, help="Include ended clients.")
@json_option
def client_list(pilot_id, include_ended, as_json):
    """Client codes the acting user may see."""
    data = state().read(people.list_clients, pilot_id=pilot_id, include_ended=include_ended)
    emit(data, as_json, render_table(
        [_("code"), _("pilot"), _("group"), _("worker"), _("control"), _("enrolled"), _("ended")],
        ["code", "pilot", "group", "worker", "control", "enrolled_on", "ended_on"], _("Clients")))


@client.command("end")
@click.argument("code")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), help="Default today.")
@json_option
def client_end(code, on_date, as_json):
    """End a client relationship (history is kept)."""
    data = state().run(people.end, code, on_date=on_date.date() if on_date else None)
    emit(data, as_json, lambda c, d: c.print(_("{code} ended on {date}").format(code=d["code"],
                                                                                 date=i18n.date(d["ended_on"]))))


@client.command("assist")
@click.argument("code")
@click.option("--assistant", "assistant_id", required=True, help="Worker id of the HB assistant.")
@json_option
def client_assist(code, assistant_id, as_json):
    """Give a client an HB assistant, who may then act for them."""
    data = state().run(people.assign_assistant, code, assistant_id)
    emit(data, as_json, lambda c, d: c.print(_("{code}: assistant {assistant}").format(code=d["code"],
                                                                                        assistant=d["assistant"])))


@client.command("expire")
@click.option("--pilot", "pilot_id", required=True, help="Pilot id (its intake.relationship_ends).")
@click.option("--date", "on_date", type=click.DateTime(["%Y-%m-%d"]), help="Today (default: the real one).")
@json_option
def client_expire(pilot_id, on_date, as_json):
    """End the fixed-term relationships that no decision extends beyond the pilot's last day."""
    data = state().run(people.expire_fixed_term, pilot_id, on_date=on_date.date() if on_date else None)
    emit(data, as_json, lambda c, d: c.print(
        ngettext("{pilot}: {n} relationship ended on {date}", "{pilot}: {n} relationships ended on {date}",
                 len(d["ended"])).format(pilot=d["pilot"], n=len(d["ended"]), date=i18n.date(d["relationship_ends"]))
        + (f" ({', '.join(d['ended'])})" if d["ended"] else "")
        + ngettext("; {n} continues under a decision beyond it", "; {n} continue under a decision beyond it",
                   len(d["continuing"])).format(n=len(d["continuing"])), markup=False, soft_wrap=True))


@client.command("phone")
@click.argument("code")
@click.argument("phone", metavar="PHONE", required=False)
@click.option("--remove", is_flag=True, help="Remove the number instead.")
@json_option
def client_phone(code, phone, remove, as_json):
    """Set the phone number a payment rail (an e-wallet) knows the client by; never printed."""
    if (phone is None) == (not remove):
        raise click.UsageError(_("give a PHONE or --remove, not both"))
    data = state().run(people.set_phone, code, None if remove else phone)
    emit(data, as_json, lambda c, d: c.print(
        (_("{code}: phone number set") if d["phone"] == "set" else _("{code}: phone number removed")).format(
            code=d["code"]) + ("" if d["changed"] else _(" (unchanged)"))))


@client.command("language")
@click.argument("code")
@click.argument("language", metavar="LANG", type=click.Choice(LANGUAGES))
@json_option
def client_language(code, language, as_json):
    """Set the language the client reads (fi, sv, en): the dialogue's system messages and
    letters are written in it from now on."""
    data = state().run(people.set_language, code, language)
    emit(data, as_json, lambda c, d: c.print(
        _("{code}: language {language}").format(code=d["code"], language=d["language"])
        + ("" if d["changed"] else _(" (unchanged)"))))


COMMANDS = [worker, client]
