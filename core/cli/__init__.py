"""The ``avain`` command line. Commands call services; only this layer turns errors into
messages and exit codes (0 done, 1 refused, 2 usage)."""

from __future__ import annotations

import gc
import logging
import re
import sys
from typing import Any

import click

from ..errors import AvainError, FileError, PluginError, ValidationError
from ..i18n import LANGUAGES, _, set_language
from ..text import for_terminal, redact_hetu
from .hints import hint, present
from .lazy import LazyCommand
from .state import State

#: The core's commands: name, where the command is, and the first paragraph of its help
#: (what ``avain --help`` shows). A command's module is imported only when that command runs
#: or its help is shown; a contract test keeps these helps equal to the commands' own.
#: ``decision``, ``ledger`` and ``commitment`` come through ``letter_cmds`` and ``client``
#: through ``message_cmds``: those modules add the ``letter`` and ``message`` subcommands.
CORE_COMMANDS = (
    LazyCommand("audit", "avain.core.cli.audit_cmds:audit", "The audit trail and the access log."),
    LazyCommand("budget", "avain.core.cli.budget_cmds:budget_group",
                "Monthly budget periods: open (allocate), close (lapse or carry over)."),
    LazyCommand("catalogue", "avain.core.cli.workflow_cmds:catalogue_group",
                "The service catalogue (palvelutarjotin): prices, search, ratings, the public register."),
    LazyCommand("client", "avain.core.cli.message_cmds:client",
                "Clients: enrolment, lookup, end of the client relationship."),
    LazyCommand("commitment", "avain.core.cli.letter_cmds:commitment", "Payment commitments (maksusitoumus)."),
    LazyCommand("db", "avain.core.cli.db_cmds:db", "The database schema."),
    LazyCommand("decision", "avain.core.cli.letter_cmds:decision",
                "Decisions granting HB, and how each month's budget is computed."),
    LazyCommand("demo", "avain.core.cli.demo_cmds:demo",
                "Run a realistic month (January 2018) on synthetic people, in the database the CLI opens, "
                "and print each client's statement and the ledger check."),
    LazyCommand("init", "avain.core.cli.db_cmds:init",
                "Create the database (or bring it up to date) and load the plugins' pilots."),
    LazyCommand("invoice", "avain.core.cli.workflow_cmds:invoice", "Provider invoices: record, approve, pay."),
    LazyCommand("ledger", "avain.core.cli.letter_cmds:ledger", "Balances, statements and the ledger's own check."),
    LazyCommand("message", "avain.core.cli.message_cmds:message",
                "The client's secure dialogue with the personal worker (Omasote): one thread per client, "
                "encrypted at rest, for its participants only."),
    LazyCommand("pay", "avain.core.cli.workflow_cmds:pay",
                "Payments to providers: SEPA credit-transfer batches (pain.001)."),
    LazyCommand("pilot", "avain.core.cli.pilot_cmds:pilot", "Pilots: their rules and settings."),
    LazyCommand("plan", "avain.core.cli.workflow_cmds:plan",
                "Care and service plans: services and monthly quantities."),
    LazyCommand("plugin", "avain.core.cli.plugin_cmds:plugin", "Loaded plugins."),
    LazyCommand("proposal", "avain.core.cli.workflow_cmds:proposal",
                "Proposals to use a budget: made by the client, decided by the worker."),
    LazyCommand("provider", "avain.core.cli.workflow_cmds:provider", "Service providers, by business id (Y-tunnus)."),
    LazyCommand("worker", "avain.core.cli.people_cmds:worker",
                "Personal workers, supervisors, finance, evaluators, HB assistants, administrators."),
)


class AvainGroup(click.Group):
    """Adds the plugins' commands, loads each command when it is used, and turns avain
    errors into one-line messages."""

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
            command = super().get_command(ctx, name)
            if command is None:
                command = plugin_commands.get(name)
                if isinstance(command, LazyCommand) and not ctx.meta.get("avain_listing"):
                    command = plugin_commands[name] = _load(command, plugin=True)
        else:
            command = super().get_command(ctx, name)
        if isinstance(command, LazyCommand) and not ctx.meta.get("avain_listing"):
            command = self.commands[name] = _load(command)
        return command

    def format_commands(self, ctx, formatter):
        """Lists every command with its short help without importing the commands'
        modules: a command not loaded yet shows the help it was announced with."""
        ctx.meta["avain_listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            del ctx.meta["avain_listing"]

    def parse_args(self, ctx, args):
        if ctx.parent is None:
            # Known before any option is converted, so that even a bad value is reported as
            # a JSON error document when the command was asked for JSON.
            ctx.meta["avain_json"] = "--json" in args[:args.index("--")] if "--" in args else "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        if ctx.parent is not None:
            return super().invoke(ctx)
        as_json = ctx.meta.get("avain_json", False)
        try:
            return super().invoke(ctx)
        except AvainError as exc:
            report(exc, as_json=as_json)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:  # bad usage: click prints it and exits 2
            if as_json:
                click.echo(_dumps(usage_document(exc)))
            raise
        except OSError as exc:  # a file that cannot be read or written, named
            error = FileError.of(exc)
            report(error, as_json=as_json)
            ctx.exit(error.exit_code)
        finally:
            State.of(ctx).close()


def _dumps(data: Any) -> str:
    from .output import dumps  # the output's libraries (rich) only when there is output

    return dumps(data)


def _load(command: LazyCommand, *, plugin: bool = False) -> click.Command:
    try:
        return command.load()
    except (ImportError, TypeError) as exc:
        if not plugin:
            raise
        raise PluginError(f"avain_commands: the command {command.name} cannot be loaded: {exc}") from exc


#: ``error: --amount: …``, ``error: pilot.toml: …``: what the message names first.
_FIELD = re.compile(r"^(--[\w-]+|[^\s:,]+)(?=[:,] )")


def error_document(exc: AvainError) -> dict[str, Any]:
    """The JSON error document of a refusal: its kind (``type``, from the error's class)
    and stable ``code``, the field, file or option it names (or null), the values that
    explain it (money in cents, dates as ISO) and every reason."""
    message = redact_hetu(str(exc))
    field = getattr(exc, "field", None)
    if field is None:
        match = _FIELD.match(message)
        field = match.group(1) if match else None
    reasons = [redact_hetu(str(r)) for r in getattr(exc, "errors", None) or getattr(exc, "reasons", None) or [message]]
    return {"error": {"type": exc.error_code, "code": getattr(exc, "code", exc.error_code), "field": field,
                      "option": getattr(exc, "option", None), "values": plain(getattr(exc, "values", {})),
                      "message": message, "reasons": reasons}}


def plain(value: Any) -> Any:
    """``values`` as JSON holds them: money as integer cents, dates as ISO text."""
    import datetime as dt

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if hasattr(value, "cents") and not isinstance(value, (int, float, str)):
        return value.cents
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return redact_hetu(str(value))


def usage_document(exc: click.ClickException) -> dict[str, Any]:
    """The JSON error document of bad usage (exit 2): an unknown option, a bad date or amount."""
    field = None
    if isinstance(exc, click.BadParameter):
        if isinstance(exc.param, click.Option):
            field = max(exc.param.opts, key=len)  # --date, not -d
        elif exc.param is not None:
            field = exc.param.human_readable_name  # PERIOD, FILE: as the usage line shows it
        else:
            field = exc.param_hint if isinstance(exc.param_hint, str) else None
    elif isinstance(exc, click.NoSuchOption):
        field = exc.option_name
    message = exc.format_message()
    return {"error": {"type": "usage", "code": "usage", "field": field, "option": field, "values": {},
                      "message": message, "reasons": [message]}}


def report(exc: AvainError, *, as_json: bool = False) -> None:
    """Every error of a ValidationError on its own line; others as ``error: …``. With
    ``--json``, also the error document on stdout (the only thing there). Whatever raised
    it, a message never shows a henkilötunnus or a control character (its text may repeat
    what somebody typed or stored)."""
    if isinstance(exc, ValidationError) and len(exc.errors) > 1:
        for line in exc.errors:
            click.echo(for_terminal(redact_hetu(str(line))), err=True)
        extra = hint(exc)
        if extra:
            click.echo(for_terminal(redact_hetu(extra)), err=True)
    else:
        message = present(exc, str(exc))
        click.echo(for_terminal(redact_hetu(_("error: {message}").format(message=message))), err=True)
    if as_json:
        click.echo(_dumps(error_document(exc)))


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
    from ..auth import Actor

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
    try:
        cli.main(prog_name="avain")
    finally:
        # The command is done and its database closed. The interpreter's last garbage
        # collection at exit would walk every object the database and model libraries made
        # (~0.1 s of a read command) to find nothing that needs it: freeze them out of it.
        # atexit handlers still run.
        gc.freeze()


for command in CORE_COMMANDS:
    cli.add_command(command)
