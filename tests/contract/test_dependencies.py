"""The dependencies are locked: constraints.txt pins every dependency of pyproject.toml
(the test tools too) to a version its bounds allow, each with hashes; the packages whose
internals avain uses have an upper bound; CI installs from the lock with hashes checked."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: What avain uses beyond a package's documented API, or a package before 1.0.
NEEDS_UPPER_BOUND = {"sqlalchemy", "sqlmodel", "pluggy", "alembic"}


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def _lock() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of constraints.txt."""
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8").replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)(.*)", line)
        assert match, f"constraints.txt: {line!r} is not an exact pin"
        pins[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", match[3]))
    return pins


def test_every_dependency_is_pinned_with_hashes_within_its_bounds():
    pins = _lock()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt has no pin for {req.name}"
        version, hashes = pins[name]
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} is outside {req.specifier}"
    assert all(hashes for _version, hashes in pins.values()), [n for n, (_v, h) in pins.items() if not h]


def test_packages_whose_internals_avain_uses_have_an_upper_bound():
    bounds = {canonicalize_name(r.name): r.specifier for r in _requirements()}
    for name in NEEDS_UPPER_BOUND:
        assert any(s.operator in ("<", "<=", "~=", "==") for s in bounds[name]), f"{name}: no upper bound"


def test_ci_installs_the_locked_versions_with_their_hashes():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "--require-hashes -r constraints.txt" in ci
    assert "pip check" in ci
    assert re.search(r"pip install (-q )?(-e |\.)", ci) is None, "CI installs avain only after the lock, --no-deps"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r constraints.txt" in readme
