"""Services speak no CLI: a refusal or notice from a service names no command-line option
and no ``avain`` command, since a web page and the HTTP API present the same refusal.
The CLI adds its options and commands itself (``avain.core.cli.hints``), from the
error's ``field`` and ``code``.

Every string in the code of these modules is read with ``ast``, except docstrings and
comments; operator-setup modules (opening a database, key files, the plugin scaffold),
whose messages only an operator at the command line ever reads, are left out."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import avain.core

CORE = Path(avain.core.__file__).parent

#: The code services run: the services themselves and the domain, access, text, ledger,
#: audit, file and letter modules they call.
SCANNED = sorted(
    [*CORE.glob("services/**/*.py"), *CORE.glob("letters/**/*.py"), *CORE.glob("demo/**/*.py")]
    + [CORE / name for name in ("domain.py", "auth.py", "text.py", "references.py", "outfiles.py",
                                "audit.py", "ledger.py", "demo.py", "errors.py", "sealed.py", "seals.py",
                                "workdays.py", "pilot_config.py", "finvoice.py", "sepa.py", "bankfiles.py",
                                "textfile.py")
       if (CORE / name).exists()])

#: ``--amount``, ```avain …```, ``avain worker list``: what only the command line has.
CLI_WORDS = re.compile(
    r"(?<![\w-])--[a-z][\w-]*"
    r"|`avain\b"
    r"|\bavain (?:audit|budget|catalogue|client|commitment|db|decision|demo|init|invoice|ledger|letter|message"
    r"|pay|pilot|plan|plugin|proposal|provider|worker|eval|epassi|psop)\b")

#: Modules still being rewritten: each must still have a finding (so that the list only
#: shrinks); the list is empty when every service speaks no CLI.
NOT_YET: frozenset[str] = frozenset({
    "auth.py", "demo.py", "domain.py", "letters/__init__.py", "outfiles.py", "references.py", "text.py",
    "audit.py", "services/budget.py", "services/catalogue.py", "services/common.py",
    "services/consent.py", "services/evaluation.py", "services/finance.py", "services/letters.py",
    "services/messages.py", "services/people.py", "services/pilots.py", "services/plans.py",
    "services/provider_bank.py", "services/providers.py", "services/purchases.py", "services/statements.py",
})


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of every bare string statement: docstrings and attribute docstrings."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def cli_words(path: Path) -> list[str]:
    """``line: text`` of every string in ``path`` (docstrings aside) that names an option
    or an avain command."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    return [f"{node.lineno}: {node.value.strip()[:90]!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and CLI_WORDS.search(node.value)]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(CORE).as_posix())
def test_a_service_names_no_option_and_no_command(path: Path):
    found = cli_words(path)
    name = path.relative_to(CORE).as_posix()
    if name in NOT_YET:
        assert found, f"{name} names no option or command any more: take it off NOT_YET"
        return
    assert not found, (f"core/{name} names a command-line option or command; raise with field= and "
                       "code= instead and let avain.core.cli.hints add it:\n" + "\n".join(found))


def test_the_scan_sees_what_it_is_for(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Run `avain init` first."""\n'
                      'def f():\n    raise ValueError("--amount: too much")\n'
                      'def g():\n    return "see `avain worker list`"\n'
                      'def h():\n    return "avain pilot list shows them"\n'
                      'def i():\n    return "a well-formed message -- with a dash"\n', encoding="utf-8")
    assert sorted(int(line.split(":")[0]) for line in cli_words(sample)) == [3, 5, 7]
