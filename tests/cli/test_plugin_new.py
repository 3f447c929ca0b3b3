"""``avain plugin new``: the scaffolded package installs, avain loads it through its entry
point, and its own test passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from avain.core.cli import cli

AVAIN = "import sys; from avain.core.cli import main; sys.argv[0] = 'avain'; main()"


def test_the_scaffold_writes_a_package_and_refuses_a_bad_name_or_a_taken_folder(tmp_path):
    runner = CliRunner()
    made = runner.invoke(cli, ["plugin", "new", "river_town", "--dir", str(tmp_path), "--json"])
    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    assert data["files"] == ["README.md", "pyproject.toml", "src/avain_river_town/__init__.py",
                             "src/avain_river_town/pilot.toml", "tests/test_river_town.py"]
    pyproject = (tmp_path / "avain-river-town" / "pyproject.toml").read_text()
    assert '[project.entry-points.avain]\nriver_town = "avain_river_town"' in pyproject
    checked = runner.invoke(cli, ["pilot", "check", str(tmp_path / "avain-river-town/src/avain_river_town/pilot.toml")])
    assert checked.exit_code == 1  # the plugin is not installed yet
    assert "no loaded plugin reads [plugins.river_town]" in checked.stderr
    again = runner.invoke(cli, ["plugin", "new", "river_town", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and again.stderr.startswith("error: ") and "exists already" in again.stderr
    bad = runner.invoke(cli, ["plugin", "new", "River-Town", "--dir", str(tmp_path)])
    assert bad.exit_code == 1 and "NAME: 'River-Town' must be" in bad.stderr


def test_an_installed_scaffold_is_loaded_through_its_entry_point_and_its_test_passes(tmp_path):
    made = CliRunner().invoke(cli, ["plugin", "new", "river_town", "--dir", str(tmp_path), "--json"])
    root = json.loads(made.stdout)["path"]
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), root], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "AVAIN_DB": f"sqlite:///{tmp_path / 'avain.db'}"}
    env.pop("AVAIN_LOAD_PLUGINS", None)

    def avain(*args):
        done = subprocess.run([sys.executable, "-c", AVAIN, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    avain("init")
    loaded = {p["name"]: p for p in json.loads(avain("plugin", "list", "--json"))}
    assert loaded["river_town"]["source"] == "entry point avain-river-town 0.1.0"
    assert "avain_check_eligibility" in loaded["river_town"]["hooks"]
    shown = json.loads(avain("pilot", "show", "river-town", "--json"))
    assert "the need assessment says hb_offered=yes" in shown["rules"]
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root,
                         env=env, capture_output=True, text=True)
    assert own.returncode == 0 and "1 passed" in own.stdout, own.stdout + own.stderr
