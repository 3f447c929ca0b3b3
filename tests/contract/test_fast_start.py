"""A fast start: ``avain --version``, ``avain --help``, ``avain GROUP --help`` and plugin
discovery import no database, report or chart library, and a read command imports no
report or chart library. Each case runs in a fresh interpreter (a subprocess), since this
test session has long imported everything."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from avain.core import db as dbmod
from avain.core.cli import CORE_COMMANDS, cli
from avain.core.cli.lazy import LazyCommand
from avain.core.hookspecs import hookimpl
from avain.core.plugins import collect, make_plugin_manager

#: What a start must not pay for: the database layer and the migrations.
DATABASE = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")
#: What only reports, charts, statistics and letters need.
REPORTS = ("matplotlib", "scipy", "numpy", "jinja2", "weasyprint")

#: Runs ``code`` as the ``avain`` program would, then prints, whatever happened, the
#: top-level packages of interest it imported as one JSON line on stderr's last line.
PROBE = """
import json, sys
WATCHED = {watched!r}
try:
{code}
except SystemExit:
    pass
finally:
    sys.stdout.flush()
    loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set(WATCHED))
    print(json.dumps(loaded), file=sys.stderr)
"""


def imported_by(code: str) -> tuple[list[str], str]:
    """The watched packages ``code`` leaves in sys.modules of a new interpreter, and its
    stdout."""
    body = "\n".join("    " + line for line in inspect.cleandoc(code).splitlines())
    script = PROBE.format(watched=DATABASE + REPORTS, code=body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert last.startswith("["), f"the probe failed:\n{proc.stderr}"
    return json.loads(last), proc.stdout


def run_avain(*args: str) -> tuple[list[str], str]:
    return imported_by(f"from avain.core.cli import main\nsys.argv = ['avain', *{list(args)!r}]\nmain()")


def test_version_imports_no_database_or_report_library():
    loaded, out = run_avain("--version")
    assert "avain, version" in out
    assert loaded == []


def test_plugin_discovery_imports_only_the_plugins_light_entry_modules():
    loaded, out = imported_by("""
        from avain.core.plugins import make_plugin_manager
        pm = make_plugin_manager()
        print(len(pm.get_plugins()))
    """)
    assert int(out) > 10, "the built-in and entry-point plugins were all registered"
    assert loaded == []


def test_help_lists_every_command_without_importing_them():
    loaded, out = run_avain("--help")
    assert loaded == []
    listed = out.split("Commands:", 1)[1]
    for command in CORE_COMMANDS:
        assert f"\n  {command.name} " in listed
    for plugin_command in ("eval", "psop", "epassi"):
        assert f"\n  {plugin_command} " in listed


@pytest.mark.parametrize("name", [c.name for c in CORE_COMMANDS])
def test_a_core_group_help_imports_no_database_or_report_library(name):
    loaded, out = run_avain(name, "--help")
    assert f"Usage: avain {name}" in out
    assert loaded == []


def test_the_evaluation_help_imports_no_database_or_report_library():
    loaded, out = run_avain("eval", "--help")
    assert "report" in out and "export" in out
    assert loaded == []


@pytest.fixture
def database_with_pilots(db_url):
    from conftest import open_app

    open_app(db_url).close()
    return db_url


def test_a_read_command_imports_no_report_library(database_with_pilots):
    loaded, out = run_avain("--db", database_with_pilots, "pilot", "list", "--json")
    assert "example" in {p["id"] for p in json.loads(out)}
    assert "sqlalchemy" in loaded  # it did read the database
    assert not set(loaded) & set(REPORTS)


def _first_paragraph(command: click.Command) -> str:
    return " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())


def announced() -> list[LazyCommand]:
    """The core's announced commands and the built-in plugins'."""
    return [*CORE_COMMANDS, *(c for c in collect(make_plugin_manager(), "avain_commands")
                              if isinstance(c, LazyCommand))]


@pytest.mark.parametrize("stub", announced(), ids=lambda c: c.name)
def test_an_announced_command_is_the_real_one_with_its_own_help(stub):
    """What ``avain --help`` shows for a command not loaded yet is its own help."""
    real = stub.load()
    assert real.name == stub.name
    assert stub.help == _first_paragraph(real), f"{stub.import_path}: announce it with its help's first paragraph"


def test_help_reads_the_same_before_and_after_every_command_is_loaded():
    runner = CliRunner()
    before = runner.invoke(cli, ["--help"], terminal_width=100)
    ctx = click.Context(cli, info_name="avain")
    for name in cli.list_commands(ctx):
        cli.get_command(ctx, name)
    after = runner.invoke(cli, ["--help"], terminal_width=100)
    assert before.exit_code == after.exit_code == 0
    assert before.output == after.output


def test_a_plugin_command_that_cannot_be_loaded_is_a_plugin_error(monkeypatch):
    class Broken:
        @hookimpl
        def avain_commands(self):
            return [LazyCommand("broken", "avain.plugins.no_such_module:cmd", "Never there.")]

    from avain.core.cli import state as cli_state

    monkeypatch.setattr(cli_state, "make_plugin_manager", lambda: make_plugin_manager(extra=[Broken()]))
    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"])
    assert re.search(r"\n  broken +Never there\.\n", listed.output)  # listed from its announcement
    result = runner.invoke(cli, ["broken"])
    assert result.exit_code == 1
    assert "error: avain_commands: the command broken cannot be loaded" in result.output
    assert "Traceback" not in result.output


def test_the_schema_check_reads_the_revisions_as_alembic_does():
    """The start-up check reads the migration files itself; alembic must agree on the head
    and on every revision."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(dbmod.alembic_config())
    assert dbmod.head_revision() == script.get_current_head()
    assert dbmod._known_revisions() == {r.revision for r in script.walk_revisions()}
