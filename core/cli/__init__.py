"""The ``avain`` command line. Commands call services; only this layer turns errors into
messages and exit codes (0 done, 1 refused, 2 usage)."""

from __future__ import annotations

import logging
import sys

import click

from ..auth import Actor
from ..errors import AvainError, PluginError, ValidationError
from ..i18n import LANGUAGES, _, set_language
from .state import State


class AvainGroup(click.Group):
    """Adds the plugins' commands and turns avain errors into one-line messages."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        if "plugin_commands" not in root.meta:
            from ..plugins import collect

            state = State.of(root)
            commands = {c.name: c for c in collect(state.pm, "avain_commands")}
            clash = sorted(set(commands) & set(self.commands))
            if clash:
                raise PluginError(f"avain_commands: a plugin's command {', '.join(clash)} has the name "
                                  "of a core command")
            root.meta["plugin_commands"] = commands
        return root.meta["plugin_commands"]

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        if ctx.parent is None:
            try:
                names |= set(self._plugin_commands(ctx))
            except AvainError:
                pass
        return sorted(names)

    def get_command(self, ctx, name):
        if ctx.parent is None and not ctx.resilient_parsing:
            plugin_commands = self._plugin_commands(ctx)  # refuses a clash with a core command
            return super().get_command(ctx, name) or plugin_commands.get(name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except AvainError as exc:
            report(exc)
            ctx.exit(exc.exit_code)
        finally:
            State.of(ctx).close()


def report(exc: AvainError) -> None:
    """Every error of a ValidationError on its own line; others as ``error: …``."""
    if isinstance(exc, ValidationError) and len(exc.errors) > 1:
        for line in exc.errors:
            click.echo(line, err=True)
    else:
        click.echo(_("error: {message}").format(message=exc), err=True)


@click.group(cls=AvainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", metavar="URL", envvar=None,
              help="Database URL or SQLite file (default: AVAIN_DB, else ./avain.db).")
@click.option("--as", "as_", metavar="ROLE[:ID]",
              help="Act as this user, e.g. worker:example-01 (default: admin).")
@click.option("--lang", type=click.Choice(LANGUAGES),
              help="Language of the output: fi, sv or en (default: from LANGUAGE, LC_ALL, LC_MESSAGES or LANG).")
@click.version_option(package_name="avain", prog_name="avain")
@click.pass_context
def cli(ctx: click.Context, db: str | None, as_: str | None, lang: str | None) -> None:
    """avain: personal budgets (HB) in social care, one engine for every pilot."""
    set_language(lang)
    state = State.of(ctx)
    state.db = db
    try:
        state.actor = Actor.parse(as_)
    except AvainError as exc:
        raise click.BadParameter(str(exc).removeprefix("--as: "), param_hint="--as") from exc


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    cli.main(prog_name="avain")


from . import (  # noqa: E402
    audit_cmds,
    budget_cmds,
    db_cmds,
    demo_cmds,
    message_cmds,
    people_cmds,
    pilot_cmds,
    plugin_cmds,
    workflow_cmds,
)

for module in (db_cmds, demo_cmds, pilot_cmds, people_cmds, budget_cmds, workflow_cmds, message_cmds, audit_cmds,
               plugin_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)
