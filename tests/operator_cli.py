"""Helpers of the operator CLI tests (tests/cli/test_operator_*.py): the command line as
an operator runs it, and a database made once per module with ``avain init``."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner, Result

from avain.core.cli import cli

RUNNER = CliRunner(env={"AVAIN_DB": None, "AVAIN_LOAD_PLUGINS": None})


def avain(db: Path | str, *args) -> Result:
    """``avain --db DB ARGS…``, never ending in a traceback."""
    result = RUNNER.invoke(cli, ["--db", str(db), *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def assert_clean(result: Result, exit_code: int) -> None:
    """The exit code asked for, and never a traceback."""
    assert result.exit_code == exit_code, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def initialised(folder: Path, *setup: tuple[str, ...]) -> Path:
    """A database made with ``avain init`` in ``folder``, then each ``setup`` command run."""
    path = folder / "avain.db"
    assert_clean(avain(path, "init"), 0)
    for args in setup:
        assert_clean(avain(path, *args), 0)
    return path


def copy_of(template: Path, folder: Path) -> Path:
    """A test's own copy of a module's database, with its checkpoint file."""
    path = folder / "avain.db"
    shutil.copy(template, path)
    if template.with_name("avain.db.checkpoints").exists():
        shutil.copy(template.with_name("avain.db.checkpoints"), folder / "avain.db.checkpoints")
    return path
