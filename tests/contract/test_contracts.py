"""Contracts between the code and its promises: the docs say what the code does, the core
stays neutral, every hook is documented and tested, and the built wheel works.

These tests read files and the click tree; none of them touches a database except the
wheel test, which runs ``avain init`` from the built wheel on a temporary SQLite file.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click
import pytest

from avain.core import hookspecs
from avain.core.auth import MATRIX
from avain.core.cli import cli
from avain.core.domain import ROLES

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
PLUGINS = ROOT / "plugins"
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"

KINDS = ("registration", "decision", "checks", "policy", "description", "events")

#: Words that name a pilot (or a pilot's payment system). None may appear in core/.
PILOT_WORDS = ("kainuu", "pori", "tampere", "vantaa", "hameenlinna", "hämeenlinna", "eksote",
               "epassi", "psop")
#: A whole word, also in Finnish genitive (``Porin``, ``Tampereen``), and also inside an
#: identifier (``payment_psop``, ``epassi2``): only a letter next to it makes it another
#: word ("vaporize" does not name Pori).
PILOT_NAME = re.compile(r"(?<![^\W\d_])(" + "|".join(PILOT_WORDS) + r")(?:e?n)?(?![^\W\d_])",
                        re.IGNORECASE)

#: Files in core/ known to break the neutrality rule, with the reason; each is an
#: expected failure that turns into an error (strict) once the file is fixed.
KNOWN_PILOT_NAMES: dict[str, str] = {}


# --- hooks --------------------------------------------------------------------------


def hookspec_functions() -> dict[str, object]:
    """Every function in core/hookspecs.py marked with ``@hookspec``."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name: fn for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, marker)
    }


HOOKS = sorted(hookspec_functions())


def spec_options(name: str) -> dict:
    return getattr(hookspec_functions()[name], f"{hookspecs.PROJECT}_spec")


@cache
def documented_hooks() -> dict[str, dict[str, str]]:
    """The hook sections of docs/hooks.md: ``### `avain_x` ``, then a python block whose
    only line is the signature, then ``**Kind:** <kind>``."""
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    hooks: dict[str, dict[str, str]] = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        m = re.fullmatch(r"`(\w+)`", heading.strip())
        if not m:
            continue
        name = m.group(1)
        assert name not in hooks, f"docs/hooks.md documents {name} twice"
        sig = re.search(r"\A\s*```python\n(.*?)\n```", body, re.DOTALL)
        kind = re.search(r"^\*\*Kind:\*\* (\w+)", body, re.MULTILINE)
        hooks[name] = {
            "signature": sig.group(1) if sig else "",
            "kind": kind.group(1) if kind else "",
            "body": body,
        }
    return hooks


def test_the_hooks_page_parses():
    documented = documented_hooks()
    assert documented, "docs/hooks.md has no ### `avain_…` sections"
    for name, section in documented.items():
        assert section["signature"], f"docs/hooks.md: {name} has no signature block under its heading"
        assert section["kind"] in KINDS, f"docs/hooks.md: {name} has no **Kind:** line naming one of {KINDS}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(name):
    fn = hookspec_functions()[name]
    expected = f"{name}{inspect.signature(fn)}"
    documented = documented_hooks()
    assert name in documented, f"docs/hooks.md has no section ### `{name}`"
    assert documented[name]["signature"] == expected


@pytest.mark.parametrize("name", HOOKS)
def test_every_documented_kind_matches_the_hookspec(name):
    documented = documented_hooks()
    if name not in documented:
        pytest.fail(f"docs/hooks.md has no section ### `{name}`")
    kind = documented[name]["kind"]
    fn = hookspec_functions()[name]
    options = spec_options(name)
    assert bool(options.get("firstresult")) == (kind in ("decision", "policy")), (
        f"{name}: documented as {kind}, but firstresult={options.get('firstresult')}")
    params = inspect.signature(fn).parameters
    if kind == "registration":
        assert not params, f"{name}: a registration hook takes no arguments"
    if kind == "events":
        assert inspect.signature(fn).return_annotation in (None, "None"), f"{name}: events return nothing"
    said = re.search(r"Kind: (\w+)", inspect.getdoc(fn) or "")
    assert said, f"{name}: the hookspec docstring does not say its kind (Kind: …)"
    assert said.group(1).rstrip("s") == kind.rstrip("s"), (
        f"{name}: the docstring says {said.group(1)}, docs/hooks.md says {kind}")


def test_the_hooks_page_documents_no_hook_that_does_not_exist():
    ghosts = sorted(set(documented_hooks()) - set(HOOKS))
    assert not ghosts, f"docs/hooks.md documents hooks that core/hookspecs.py lacks: {ghosts}"


def test_every_hook_is_prefixed_and_has_a_docstring():
    assert HOOKS, "core/hookspecs.py declares no hooks"
    for name in HOOKS:
        fn = hookspec_functions()[name]
        assert name.startswith("avain_"), f"{name} is not prefixed avain_"
        doc = inspect.getdoc(fn)
        assert doc and len(doc.split()) >= 5, f"{name} has no docstring"
    # A function that looks like a hook but lacks @hookspec would never be called.
    unmarked = [name for name, fn in vars(hookspecs).items()
                if name.startswith("avain_") and inspect.isfunction(fn) and name not in HOOKS]
    assert not unmarked, f"functions in core/hookspecs.py without @hookspec: {unmarked}"


@cache
def names_of_test_functions() -> set[str]:
    names = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name):
    assert f"test_hook_{name}" in names_of_test_functions(), (
        f"no test function test_hook_{name} under tests/: show what a user notices when a "
        "plugin implements it")


# --- a neutral core -------------------------------------------------------------------


def core_files() -> list[Path]:
    return sorted(
        p for p in CORE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def _is_plugins(module: str) -> bool:
    return module == "avain.plugins" or module.startswith("avain.plugins.")


def _plugin_import(node: ast.AST, package: str = "avain.core") -> str | None:
    """The avain.plugins module ``node`` imports, if any; relative imports are resolved
    against ``package`` (the importing module's package)."""
    if isinstance(node, ast.Import):
        return next((a.name for a in node.names if _is_plugins(a.name)), None)
    if not isinstance(node, ast.ImportFrom):
        return None
    if node.level:
        parts = package.split(".")
        base = parts[: len(parts) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if _is_plugins(module):
        return module
    for alias in node.names:
        if _is_plugins(f"{module}.{alias.name}"):
            return f"{module}.{alias.name}"
    return None


def _package_of(path: Path) -> str:
    rel = path.relative_to(CORE).with_suffix("").parts
    parts = ["avain", "core", *rel]
    return ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")


def test_core_never_imports_plugins():
    found = []
    for path in core_files():
        if path.suffix != ".py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            module = _plugin_import(node, _package_of(path))
            if module:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {module}")
    assert not found, "core/ must not import avain.plugins:\n" + "\n".join(found)


def test_the_plugin_import_check_catches_every_spelling():
    def imports_plugins(source: str, package: str) -> bool:
        return any(_plugin_import(n, package) for n in ast.walk(ast.parse(source)))

    for source, package in [
        ("import avain.plugins", "avain.core"),
        ("import avain.plugins.example_pilot as x", "avain.core"),
        ("from avain.plugins import example_pilot", "avain.core"),
        ("from avain import plugins", "avain.core"),
        ("from avain.plugins.example_pilot.rules import eligibility", "avain.core"),
        ("from .. import plugins", "avain.core"),
        ("from ...plugins import example_pilot", "avain.core.cli"),
    ]:
        assert imports_plugins(source, package), source
    for source, package in [
        ("from . import plugins", "avain.core"),
        ("from .plugins import collect", "avain.core"),
        ("from ..plugins import collect", "avain.core.cli"),
        ("import avain.core.plugins", "avain.core"),
        ("from avain.core import plugins", "avain.core"),
    ]:
        assert not imports_plugins(source, package), source
    assert _package_of(CORE / "cli" / "state.py") == "avain.core.cli"
    assert _package_of(CORE / "cli" / "__init__.py") == "avain.core.cli"
    assert _package_of(CORE / "db.py") == "avain.core"


def test_the_pilot_name_check_matches_words_not_parts_of_words():
    for named in ("pilot kainuu-respite", "Pori", "HÄMEENLINNA", "payment_psop", "ePassi",
                  "Tampereen kaupunki", "Porin perusturva", "EKSOTE:n"):
        assert PILOT_NAME.search(named), named
    for innocent in ("temporary", "vaporize", "emporium", "ePassion", "psoped", "tampered"):
        assert not PILOT_NAME.search(innocent), innocent


def _core_file_params():
    params = []
    for path in core_files():
        rel = path.relative_to(ROOT).as_posix()
        marks = ()
        if rel in KNOWN_PILOT_NAMES:
            marks = pytest.mark.xfail(strict=True, reason=KNOWN_PILOT_NAMES[rel])
        params.append(pytest.param(rel, id=rel, marks=marks))
    return params


@pytest.mark.parametrize("rel", _core_file_params())
def test_core_names_no_pilot(rel):
    text = (ROOT / rel).read_bytes().decode("utf-8", errors="replace")
    hits = [f"{rel}:{n}: {m.group(0)!r}"
            for n, line in enumerate(text.splitlines(), 1) for m in PILOT_NAME.finditer(line)]
    assert not hits, "core/ names a pilot:\n" + "\n".join(hits)


# --- packaging --------------------------------------------------------------------------


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def package_dirs() -> dict[str, Path]:
    """Import name → folder, for every folder with an __init__.py under core/ and plugins/."""
    mapping = {}
    for prefix, base in (("avain.core", CORE), ("avain.plugins", PLUGINS)):
        for init in base.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(base).parts
            mapping[".".join((prefix, *rel))] = init.parent
    return mapping


def test_pyproject_lists_every_package():
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"avain.core": "core", "avain.plugins": "plugins"}
    listed = set(setuptools["packages"])
    found = set(package_dirs())
    assert not found - listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert not listed - found, f"listed but no folder with __init__.py: {sorted(listed - found)}"


def test_pyproject_declares_every_data_file():
    """Non-Python files in the packages (pilot.toml, schemas, migration templates) are only
    in the wheel when package-data names them."""
    package_data = pyproject()["tool"]["setuptools"].get("package-data", {})
    dirs = package_dirs()
    missing = []
    for base in (CORE, PLUGINS):
        for path in base.rglob("*"):
            if (not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc")
                    or path.name.startswith(".")):
                continue
            covered = False
            for package, folder in dirs.items():
                if folder not in path.parents:
                    continue
                rel = path.relative_to(folder).as_posix()
                if any(fnmatch(rel, pattern) for pattern in package_data.get(package, ())):
                    covered = True
            if not covered:
                missing.append(path.relative_to(ROOT).as_posix())
    assert not missing, f"not declared in [tool.setuptools.package-data]: {missing}"


def _build_flags() -> list[str]:
    """Build without isolation (no network) when this interpreter has what
    [build-system] requires; otherwise let pip make an isolated build environment."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - pip always vendors packaging
        from pip._vendor.packaging.requirements import Requirement
    for text in pyproject()["build-system"]["requires"]:
        req = Requirement(text)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            return []
        if not req.specifier.contains(have, prereleases=True):
            return []
    return ["--no-build-isolation", "--no-index"]


WHEEL_CHECK = """
import json, sys
from pathlib import Path
import avain.core, avain.plugins.example_pilot
root = Path(sys.argv[1]).resolve()
for module in (avain.core, avain.plugins.example_pilot):
    assert root in Path(module.__file__).resolve().parents, module.__file__
from avain.core.cli import cli
cli.main(["--db", sys.argv[2], "init", "--json"], prog_name="avain", standalone_mode=False)
"""


def test_the_built_wheel_imports_and_initialises_a_database(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", "*.db", "*.db-*"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *_build_flags(), "-q",
         "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("avain-*.whl")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(unpacked)
    assert not [n for n in names if n.split("/")[0] in ("core", "plugins", "tests")], (
        "the wheel installs a generic top-level package")
    env = {k: v for k, v in os.environ.items()
           if k not in ("AVAIN_DB", "AVAIN_LOAD_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(unpacked)
    db = tmp_path / "fresh" / "avain.db"
    db.parent.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", WHEEL_CHECK, str(unpacked), str(db)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads(run.stdout)
    assert data["schema"], data
    assert "example" in data["pilots_loaded"], data
    assert db.exists()


# --- the docs say what the code does ----------------------------------------------------


def roles_table() -> tuple[list[str], dict[str, dict[str, str]]]:
    """The table in docs/roles.md whose header starts ``| action |``."""
    lines = (DOCS / "roles.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*action\s*\|", line))

    def cells(line: str) -> list[str]:
        return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]

    header = cells(lines[start])[1:]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        action, *values = cells(line)
        assert action not in rows, f"docs/roles.md lists {action} twice"
        assert len(values) == len(header), f"docs/roles.md: row {action} has {len(values)} cells"
        rows[action] = dict(zip(header, values, strict=True))
    return header, rows


def test_the_roles_page_shows_the_matrix():
    header, rows = roles_table()
    assert header == list(ROLES)
    assert list(rows) == list(MATRIX), "docs/roles.md: the actions differ from core.auth.MATRIX"
    for action, allowed in MATRIX.items():
        for role in ROLES:
            expected = "yes" if role in allowed else "—"
            assert rows[action][role] == expected, f"docs/roles.md: {action} × {role}"


def test_the_roles_page_says_what_every_action_covers():
    text = (DOCS / "roles.md").read_text(encoding="utf-8")
    matrix_end = text.index("\n\n", text.index("| action | admin"))
    explained = re.findall(r"^\| `([a-z]+\.[a-z]+)` \| [^|]*`avain ", text[matrix_end:], re.MULTILINE)
    assert sorted(explained) == sorted(MATRIX), "docs/roles.md: explain each action with its commands"


@cache
def command_tree() -> dict[str, click.Command]:
    """Every command path of the ``avain`` command line, plugin commands included."""
    paths: dict[str, click.Command] = {}

    def walk(cmd: click.Command, ctx: click.Context, path: str) -> None:
        paths[path] = cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, click.Context(sub, parent=ctx, info_name=name), f"{path} {name}")

    root = click.Context(cli, info_name="avain")
    try:
        walk(cli, root, "avain")
    finally:
        root.close()
    return paths


@cache
def cli_sections() -> dict[str, str]:
    """``#… `avain …` `` headings of docs/cli.md and the text under each."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^#{2,4} `(avain[^`]*)`[ \t]*$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _mentions(text: str, word: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def test_the_cli_page_has_a_section_for_every_command():
    tree = command_tree()
    assert "avain pilot list" in tree and "avain client enroll" in tree
    sections = cli_sections()
    missing = sorted(set(tree) - set(sections))
    assert not missing, f"docs/cli.md has no ### `…` section for: {missing}"
    ghosts = sorted(set(sections) - set(tree))
    assert not ghosts, f"docs/cli.md has sections for commands that do not exist: {ghosts}"


def test_the_cli_page_names_every_option_and_argument():
    sections = cli_sections()
    problems = []
    for path, cmd in command_tree().items():
        text = sections.get(path)
        if text is None:
            continue  # reported by the test above
        for param in cmd.params:
            if isinstance(param, click.Option):
                if "--help" in param.opts:
                    continue
                names = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
                if not any(_mentions(text, n) for n in names):
                    problems.append(f"{path}: {names[0]}")
            else:
                metavar = param.metavar or (param.name or "").upper()
                if not _mentions(text, metavar):
                    problems.append(f"{path}: argument {metavar}")
    assert not problems, "docs/cli.md does not mention:\n" + "\n".join(problems)


def test_the_cli_page_states_the_conventions():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for phrase in ("AVAIN_DB", "./avain.db", "--as ROLE[:ID]", "--json", "exactly one JSON document"):
        assert phrase in text, phrase
    for code in ("0", "1", "2"):
        assert re.search(rf"\|\s*`?{code}`?\s*\|", text), f"exit code {code} not in a table"


def schema_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        keys.append(path)
        if sub.get("type") == "object":
            keys += schema_keys(sub, f"{path}.")
        if sub.get("type") == "array" and isinstance(sub.get("items"), dict):
            keys += schema_keys(sub["items"], f"{path}[].")
    return keys


def test_the_pilot_config_page_names_every_key_of_the_schema():
    schema = json.loads((CORE / "pilot.schema.json").read_text(encoding="utf-8"))
    text = (DOCS / "pilot-config.md").read_text(encoding="utf-8")
    missing = [k for k in schema_keys(schema) if f"`{k}`" not in text]
    assert not missing, f"docs/pilot-config.md does not describe: {missing}"


def test_the_pilot_config_page_examples_are_valid(pm):
    from avain.core import pilot_config
    from avain.core.plugins import collect

    text = (DOCS / "pilot-config.md").read_text(encoding="utf-8")
    complete = [b for b in re.findall(r"```toml\n(.*?)```", text, re.DOTALL) if re.search(r"^id = ", b, re.M)]
    assert complete, "docs/pilot-config.md shows no complete pilot.toml"
    sections = collect(pm, "avain_config_sections")
    for block in complete:
        pilot, _ = pilot_config.parse_text(block, sections, source="docs/pilot-config.md")
        assert pilot.groups
