"""Every command of the tree (the core's and the built-in plugins'), run with what an
operator mistypes: an unknown id, a bad date, month or amount, a missing file, a file that
is not UTF-8, an empty file, an image where a file is read, an unknown option. Each must be
refused cleanly: exit 1 (refused) or 2 (bad usage), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from operator_cli import avain, copy_of, initialised

from avain.core.cli import cli
from avain.core.cli.params import AnyMoneyType, DateType, MoneyType, PeriodType
from avain.core.cli.state import State


def leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) of every command that runs, plugins' commands included."""
    root = click.Context(cli, info_name="avain")
    State.of(root)
    found = []

    def walk(group: click.Group, ctx: click.Context, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                walk(command, click.Context(command, parent=ctx, info_name=name), (*path, name))
            else:
                found.append(((*path, name), command))

    walk(cli, root, ())
    return found


COMMANDS = leaf_commands()

#: Commands that serve (they would run until stopped): only their bad-usage cases run.
SERVERS = {("epassi", "simulator", "serve"), ("psop", "simulator", "serve")}

#: Commands that succeed with any well-formed text where the others take an id: they make
#: something new of it (a plugin's folder, a provider, a worker's message).
MAKE_NEW = {("plugin", "new")}

#: Commands that check or import many files: under --json their refusal is their own
#: report, naming each file's problems (still one JSON document, still exit 1).
REPORTS = {("invoice", "import"), ("pay", "import"), ("pilot", "check")}

#: The codes of the JSON error document (docs/cli.md lists them).
CODES = {"usage", "invalid", "config", "not_found", "conflict", "permission_denied", "refused", "insufficient_funds",
         "database", "service_unavailable", "plugin", "file", "message_key", "error"}

#: A well-formed value of each kind, so that the one bad value is what is refused.
GOOD = {DateType: "2018-01-15", PeriodType: "2018-01", MoneyType: "10", AnyMoneyType: "10",
        click.DateTime: "2018-01-15", click.types.IntParamType: "999999", click.IntRange: None}
#: A malformed value of each kind: what a person types by mistake.
BAD = {DateType: ["15.1.2018", "2018-02-30"], PeriodType: ["1/2018", "2018-13"], MoneyType: ["12,345", "abc"],
       AnyMoneyType: ["-1", "1e3"], click.DateTime: ["31.2.2018"], click.types.IntParamType: ["seven"],
       click.IntRange: ["-1", "seven"]}


def good_value(param: click.Parameter, files: dict[str, Path]) -> str:
    kind = type(param.type)
    if kind is click.IntRange:
        return str(param.type.min if param.type.min is not None else 1)
    if kind is click.Choice:
        return str(param.type.choices[0])
    if kind is click.Path:
        return str(files["missing"])
    return GOOD.get(kind, "NO-SUCH-1")


def argv(command: click.Command, made: dict[str, Path], **override: str) -> list[str]:
    """The command's required parameters, each with a well-formed value (an id that does
    not exist, a file that does not exist), ``override`` by parameter name."""
    args: list[str] = []
    for param in command.params:
        if not param.required and param.name not in override:
            continue
        value = override.get(param.name) or good_value(param, made)
        if isinstance(param, click.Option):
            args += [max(param.opts, key=len), value]
        else:
            args.append(value)
    return args


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return initialised(tmp_path_factory.mktemp("every"))


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    made = {"missing": tmp_path / "no-such-file.csv", "latin1": tmp_path / "latin1.csv",
            "empty": tmp_path / "empty.csv", "image": tmp_path / "picture.png"}
    made["latin1"].write_bytes("code;name_fi\nsiivous;Siivous käsin\n".encode("latin-1") + b"\x81\x90\n")
    made["empty"].write_bytes(b"")
    made["image"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return made


def refused(result, *codes: int) -> None:
    assert result.exit_code in codes, f"exit {result.exit_code}\n{result.output}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_refuses_mistakes_without_a_traceback(path, command, template, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a command writes lands here
    db = copy_of(template, tmp_path)
    run = lambda *args: avain(db, *path, *args)  # noqa: E731 (avain asserts: no traceback)
    refused(run("--no-such-option"), 2)
    for param in command.params:
        for kind, values in BAD.items():
            if type(param.type) is kind:
                for value in values:
                    refused(run(*argv(command, files, **{param.name: value})), 2)
    if path in SERVERS or not any(p.required for p in command.params):
        return  # a command that needs nothing runs: its mistakes are the bad values above
    refused(run(*argv(command, files)), *((0, 1, 2) if path in MAKE_NEW else (1, 2)))
    if path not in MAKE_NEW:  # asked for JSON, the refusal is one JSON error document on stdout
        as_json = run(*argv(command, files), "--json")
        refused(as_json, 1, 2)
        document = json.loads(as_json.stdout)
        if path not in REPORTS:
            assert document["error"]["code"] in CODES and document["error"]["reasons"], document
    for param in command.params:
        if type(param.type) is click.Path:
            for name in ("latin1", "empty", "image"):
                refused(run(*argv(command, files, **{param.name: str(files[name])})), 1, 2)


def test_the_walk_reaches_the_plugins_commands():
    paths = {p for p, _ in COMMANDS}
    assert {("catalogue", "import"), ("invoice", "import"), ("eval", "import"), ("psop", "import"),
            ("epassi", "import"), ("demo",), ("init",)} <= paths
    assert len(paths) > 80
