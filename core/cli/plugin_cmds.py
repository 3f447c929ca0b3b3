"""``avain plugin list``, ``avain plugin new``"""

from __future__ import annotations

from pathlib import Path

import click

from .. import scaffold
from ..i18n import _
from ..plugins import loaded_plugins
from .output import emit, json_option, render_table
from .state import state


@click.group()
def plugin() -> None:
    """Loaded plugins."""


@plugin.command("list")
@json_option
def list_(as_json):
    """Each plugin, where it came from and the hooks it implements."""
    data = [
        {"name": p.name, "source": p.source, "module": p.module, "hooks": list(p.hooks)}
        for p in loaded_plugins(state().pm)
    ]
    emit(data, as_json, render_table([_("name"), _("from"), _("hooks")], ["name", "source", "hooks"],
                                     _("Plugins")))


@plugin.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to write the package folder avain-NAME.")
@json_option
def new(name, parent, as_json):
    """Scaffold an installable pilot plugin: pyproject with the entry point, pilot.toml, a hookimpl, a test."""
    root = scaffold.new_plugin(name, Path(parent))
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    data = {"name": name, "path": str(root), "files": files,
            "next": f"cd {root} && pip install -e '.[test]' && avain plugin list && pytest"}
    emit(data, as_json, lambda c, d: c.print(_("wrote {path}: {files}").format(path=d["path"],
                                                                               files=", ".join(d["files"]))
                                             + "\n" + _("next: {command}").format(command=d["next"]),
                                             markup=False, highlight=False, soft_wrap=True))


COMMANDS = [plugin]
