"""``avain pilot …``"""

from __future__ import annotations

import click

from ..errors import AvainError, ConfigError, DatabaseError
from ..i18n import _
from .lazy import lazy_module
from .output import emit, json_option, render_table
from .state import state

# read only inside the commands: imported when one of them runs
db = lazy_module("avain.core.db")
pilots = lazy_module("avain.core.services.pilots")


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
@click.option("--version", "version", type=click.IntRange(1), help="Show this version of its configuration.")
@click.option("--history", is_flag=True, help="List every version of its configuration instead.")
@json_option
def show(pilot_id: str, version: int | None, history: bool, as_json: bool) -> None:
    """A pilot's rules in words, its version, and warnings about its targets and plugins."""
    data = state().read(pilots.show, pilot_id, version=version)
    if history:
        emit(data["versions"], as_json, render_table([_("version"), _("source"), _("changed by"), _("at")],
                                                     ["version", "source", "changed_by", "changed_at"],
                                                     _("Versions of {pilot}").format(pilot=pilot_id)))
        return

    def render(console, d):
        console.print(f"[bold]{d['name']}[/bold] ("
                      + _("{id}, client codes {code}-…").format(id=d["id"], code=d["code"]) + ")")
        console.print(_("configuration version {version}").format(version=d["version"])
                      if d["version"] == d["current_version"] else
                      _("configuration version {version} (current is {current})").format(
                          version=d["version"], current=d["current_version"]))
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
        p = pilots.check_file(st.pm, path, catalogue=_catalogue(st))
    except AvainError as exc:
        if as_json:
            problems = exc.problems if isinstance(exc, ConfigError) else [{"path": "", "message": str(exc)}]
            emit({"file": path, "ok": False, "errors": problems}, True, None)
            click.get_current_context().exit(1)
        raise
    emit({"file": path, "ok": True, "id": p.id, "errors": []}, as_json,
         lambda c, d: c.print(_("{file}: pilot {id} is valid").format(file=path, id=d["id"])))


def _catalogue(st) -> set[str]:
    """Service codes of the catalogue, when there is a database to read them from: a
    check needs no database, but knows imported services when there is one."""
    path = db.sqlite_path(db.resolve_url(st.db))
    if path is not None and not path.exists():
        return set()
    try:
        st.app(create=False)
        return st.read(pilots.catalogue_services)
    except DatabaseError:
        return set()


@pilot.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
def update(path: str, as_json: bool) -> None:
    """Replace a file-added pilot's configuration with FILE: its next version."""
    data = state().run(pilots.update_file, path)
    emit(data, as_json, lambda c, d: c.print(
        _("pilot {id} is now at version {version}").format(id=d["id"], version=d["version"]) if d["changed"]
        else _("pilot {id} unchanged (version {version})").format(id=d["id"], version=d["version"])))


@pilot.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
def add(path: str, as_json: bool) -> None:
    """Add a data-only pilot from its pilot.toml."""
    p = state().run(pilots.add_file, path)
    emit({"id": p.id, "name": p.name}, as_json,
         lambda c, d: c.print(_("pilot {id} added").format(id=d["id"])))


COMMANDS = [pilot]
