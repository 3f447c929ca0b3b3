"""``avain plugin list``"""

from __future__ import annotations

import click

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
    emit(data, as_json, render_table(["name", "from", "hooks"], ["name", "source", "hooks"],
                                     "Plugins"))


COMMANDS = [plugin]
