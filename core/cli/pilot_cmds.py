"""``avain pilot …``"""

from __future__ import annotations

import click

from ..errors import ConfigError
from ..i18n import _
from ..services import pilots
from .output import emit, json_option, render_table
from .state import state


@click.group()
def pilot() -> None:
    """Pilots: their rules and settings."""


@pilot.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every pilot in the database with its number of HB clients."""
    data = state().read(pilots.list_pilots)
    emit(data, as_json, render_table([_("id"), _("name"), _("HB clients"), _("from")],
                                     ["id", "name", "clients", "source"], _("Pilots")))


@pilot.command()
@click.argument("pilot_id", metavar="ID")
@json_option
def show(pilot_id: str, as_json: bool) -> None:
    """A pilot's rules in words, and warnings about its targets."""
    data = state().read(pilots.show, pilot_id)

    def render(console, d):
        console.print(f"[bold]{d['name']}[/bold] ("
                      + _("{id}, client codes {code}-…").format(id=d["id"], code=d["code"]) + ")")
        if d["organiser"]:
            console.print(_("organiser: {organiser}").format(organiser=d["organiser"]))
        console.print(_("HB clients: {clients}, controls: {controls}").format(clients=d["clients"],
                                                                             controls=d["controls"]))
        for rule in d["rules"]:
            console.print(f"  • {rule}")
        for warning in d["warnings"]:
            console.print("[yellow]" + _("warning:") + f"[/yellow] {warning}")

    emit(data, as_json, render)


@pilot.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
def check(path: str, as_json: bool) -> None:
    """Validate a pilot.toml: every error at once, each with its key path."""
    st = state()
    try:
        p = pilots.check_file(st.pm, path)
    except ConfigError as exc:
        if as_json:
            emit({"file": path, "ok": False, "errors": exc.errors}, True, None)
            click.get_current_context().exit(1)
        raise
    emit({"file": path, "ok": True, "id": p.id}, as_json,
         lambda c, d: c.print(_("{file}: pilot {id} is valid").format(file=path, id=d["id"])))


@pilot.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
def add(path: str, as_json: bool) -> None:
    """Add a data-only pilot from its pilot.toml."""
    p = state().run(pilots.add_file, path)
    emit({"id": p.id, "name": p.name}, as_json,
         lambda c, d: c.print(_("pilot {id} added").format(id=d["id"])))


COMMANDS = [pilot]
